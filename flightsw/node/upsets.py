"""What radiation upsets do to a job: hits in its memory, mitigations, silent corruption.

Upsets happen to the whole memory (``Budget`` draws them per step, raised in the South
Atlantic Anomaly). A job is hit by the share of them that lands in its footprint: its
weights and activations out of all memory bits. Mitigations of the profile decide what a
hit does:

* ``ecc`` corrects any single upset (weights and activations);
* ``weight_checksum`` and ``scrubbing`` catch upsets in the weights (reload before use);
* ``dual_execution`` runs the job twice and compares: any hit is detected and the job is
  re-run (the job always costs twice the work, paid at admission).

An unmitigated hit flips one bit of one output element: the silent data corruption the
Suncatcher radiation tests measured, made real in the outputs. The result reports it
(``corrupted``) because the emulator knows; flight software would not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Hits", "corrupt_one_bit", "draw_hits", "work_factor"]


@dataclass(frozen=True, slots=True)
class Hits:
    weights: int
    activations: int
    mitigated: int
    silent: int


def work_factor(mitigation: Sequence[str]) -> float:
    """Dual execution doubles every job's work."""
    return 2.0 if "dual_execution" in mitigation else 1.0


def draw_hits(
    rng: np.random.Generator,
    upsets: int,
    weight_bits: float,
    activation_bits: float,
    memory_bits: float,
    mitigation: Sequence[str],
) -> Hits:
    if upsets <= 0 or memory_bits <= 0:
        return Hits(0, 0, 0, 0)
    pw = min(1.0, weight_bits / memory_bits)
    pa = min(1.0 - pw, activation_bits / memory_bits)
    w, a, _ = rng.multinomial(upsets, [pw, pa, 1.0 - pw - pa])
    caught_w = (
        w if {"ecc", "weight_checksum", "scrubbing", "dual_execution"} & set(mitigation) else 0
    )
    caught_a = a if {"ecc", "dual_execution"} & set(mitigation) else 0
    silent = int(w - caught_w + a - caught_a)
    return Hits(int(w), int(a), int(caught_w + caught_a), silent)


def corrupt_one_bit(
    outputs: dict[str, npt.NDArray[Any]], rng: np.random.Generator
) -> dict[str, npt.NDArray[Any]]:
    """A copy of ``outputs`` with one bit flipped in one element of one tensor."""
    names = [k for k, v in outputs.items() if v.size > 0]
    if not names:
        return outputs
    name = names[int(rng.integers(len(names)))]
    arr = np.array(outputs[name], copy=True)
    raw = arr.reshape(-1).view(np.uint8)
    byte = int(rng.integers(raw.size))
    raw[byte] ^= np.uint8(1 << int(rng.integers(8)))
    out = dict(outputs)
    out[name] = arr
    return out
