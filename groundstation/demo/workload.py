"""The demo's job stream: real digits for the classifier, heavier image and token batches.

* ``classifier``: handwritten digits (the UCI optical digits as scikit-learn's
  ``load_digits`` gives them, 8x8 images of 0-16 grey levels) for
  ``digits_classifier.onnx`` (input ``input``, float32 [N, 64], pixels scaled to [0, 1]).
  Only the 450 images the model was *not* trained on are sent (the 25 % stratified split
  of ``examples/models/make_models.py``: ``random_state=0``), so the accuracy the demo
  reports is a held-out figure. They ship with the package
  (``groundstation/demo/data/digits_heldout.npz``, 12 kB: ``pixels`` uint8 [450, 64],
  ``labels`` uint8), so the demo needs no scikit-learn (and its scipy) at run time; a test
  checks the file against scikit-learn's split. The true labels stay here.
* ``detector``: seeded synthetic scenes (bright rectangles on noise) for ``detector.onnx``
  (input ``image``, float32 [N, 3, 96, 96]).
* ``embedder``: seeded token batches for ``embedder.onnx`` (input ``tokens``,
  float32 [N, 256, 128]), the heavy batch job.

Deadlines and values follow the kind of work: quick-look classification is urgent and cheap
(tight deadline, high priority), batch embedding is valuable but can wait.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

from flightsw.exceptions import ConfigError

__all__ = ["KINDS", "JobKind", "Submission", "Workload", "heldout_digits"]

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class JobKind:
    """One kind of job: its model, input and service terms."""

    name: str
    model_file: str
    input_name: str
    batch: tuple[int, int]  # items per job, inclusive range
    priority: int
    deadline_s: float  # mission seconds after submission
    value: float
    every_s: float  # host seconds between submissions of this kind


KINDS: dict[str, JobKind] = {
    k.name: k
    for k in (
        JobKind("classifier", "digits_classifier.onnx", "input", (4, 12), 8, 1800.0, 1.0, 1.2),
        JobKind("detector", "detector.onnx", "image", (2, 6), 5, 3 * 3600.0, 3.0, 3.5),
        JobKind("embedder", "embedder.onnx", "tokens", (1, 4), 3, 6 * 3600.0, 5.0, 5.0),
    )
}


@dataclass(frozen=True, slots=True)
class Submission:
    """One job to submit: inputs, and the true labels of classifier images."""

    kind: JobKind
    inputs: dict[str, npt.NDArray[Any]]
    labels: npt.NDArray[np.int64] | None
    items: int


def heldout_digits() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """The held-out digits shipped with the package: pixels (0-16) [450, 64], labels."""
    data = resources.files("groundstation.demo") / "data" / "digits_heldout.npz"
    try:
        with data.open("rb") as f, np.load(f, allow_pickle=False) as z:
            return np.asarray(z["pixels"], np.uint8), np.asarray(z["labels"], np.uint8)
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigError(f"the demo's digits ({data}) cannot be read: {exc}") from exc


class Workload:
    """Seeded generator of submissions; the held-out digits are sent in a shuffled cycle."""

    def __init__(self, seed: int = 0) -> None:
        pixels, labels = heldout_digits()
        self.images: F32 = np.ascontiguousarray(pixels / 16.0, dtype=np.float32)
        self.labels: npt.NDArray[np.int64] = labels.astype(np.int64)
        # one generator per kind: each kind's stream is the same whatever the interleaving
        self._rngs = {
            name: np.random.default_rng([seed, i]) for i, name in enumerate(sorted(KINDS))
        }
        self._digit_rng = np.random.default_rng([seed, len(KINDS)])
        self._order = self._digit_rng.permutation(len(self.labels))
        self._next = 0

    def _digits(self, n: int) -> tuple[F32, npt.NDArray[np.int64]]:
        idx = []
        for _ in range(n):
            if self._next >= len(self._order):
                self._order = self._digit_rng.permutation(len(self.labels))
                self._next = 0
            idx.append(int(self._order[self._next]))
            self._next += 1
        return self.images[idx], self.labels[idx]

    @staticmethod
    def _scenes(rng: np.random.Generator, n: int) -> F32:
        img = rng.normal(0.2, 0.05, size=(n, 3, 96, 96)).astype(np.float32)
        for i in range(n):
            for _ in range(int(rng.integers(1, 4))):
                h, w = (int(v) for v in rng.integers(8, 32, size=2))
                r, c = int(rng.integers(0, 96 - h)), int(rng.integers(0, 96 - w))
                img[i, :, r : r + h, c : c + w] += rng.uniform(0.4, 0.8, size=(3, 1, 1))
        return np.clip(img, 0.0, 1.0)

    def make(self, kind: JobKind) -> Submission:
        rng = self._rngs.get(kind.name)
        if rng is None:
            raise ConfigError(f"kind: unknown job kind {kind.name!r}")
        lo, hi = kind.batch
        n = int(rng.integers(lo, hi + 1))
        labels = None
        if kind.name == "classifier":
            x, labels = self._digits(n)
        elif kind.name == "detector":
            x = self._scenes(rng, n)
        else:
            x = rng.standard_normal((n, 256, 128), dtype=np.float32)
        return Submission(kind=kind, inputs={kind.input_name: x}, labels=labels, items=n)
