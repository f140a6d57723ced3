"""Suspending a run at an item boundary and what its resumption costs (pre-emption).

A job is a batch of items; between two items the run holds nothing but the outputs so far
and the index of the next item, so it can be suspended there and resumed later, here or on
another node, without redoing the items done. The item in progress when the suspension is
asked for is lost (its time and energy are spent for nothing). Suspending writes the
checkpoint (``SUSPEND_S`` at the run's watts); resuming loads the model and the checkpoint
again (``RESUME_S``, paid by the next run before its first item).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from flightsw.node.effects import Run

__all__ = ["RESUME_S", "SUSPEND_S", "Checkpoint", "checkpoint"]

SUSPEND_S = 1.0  # estimate: flush outputs so far and the item index to memory/flash
RESUME_S = 3.0  # estimate: reload the model (engine deserialisation on an Orin is seconds)


class Checkpoint(NamedTuple):
    """Where a suspended run stands: items done in all, the share of work left, and the
    energy its run spent (the suspension's own cost included)."""

    done: int
    left_frac: float
    spent_j: float


def checkpoint(r: Run, now: float) -> Checkpoint | None:
    """The checkpoint of run ``r`` suspended at ``now``; ``None`` when no item boundary is
    left before its end (a one-item job, or its last item under way)."""
    q, d = r.q, r.d
    left = q.items - q.done
    if left <= 1:
        return None
    work_s = d.latency_s - q.overhead_s  # the items' own time in this run
    ran = max(0.0, now - r.start - q.overhead_s)
    per_item = work_s / left if left else math.inf
    k = int(ran // per_item) if per_item > 0 else 0
    if k >= left - 1:
        return None
    spent = min(max(0.0, now - r.start), d.latency_s) * d.mode.watts + SUSPEND_S * d.mode.watts
    return Checkpoint(q.done + k, (left - k) / left, spent)
