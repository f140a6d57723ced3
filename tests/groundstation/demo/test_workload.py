from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from flightsw.exceptions import ConfigError
from groundstation.demo.workload import KINDS, JobKind, Workload

MODELS = Path(__file__).resolve().parents[3] / "examples" / "models"


def session(kind: JobKind) -> ort.InferenceSession:
    return ort.InferenceSession(str(MODELS / kind.model_file), providers=["CPUExecutionProvider"])


def test_digits_are_the_held_out_quarter() -> None:
    from sklearn.datasets import load_digits

    wl = Workload(seed=0)
    assert wl.images.shape == (450, 64) and wl.images.dtype == np.float32
    assert wl.images.min() >= 0.0 and wl.images.max() <= 1.0
    assert np.bincount(wl.labels, minlength=10).min() >= 43  # stratified: each digit 43-46 times
    # each held-out image is a real data-set image with its true label
    x, y = load_digits(return_X_y=True)
    lookup = {row.tobytes(): label for row, label in zip((x / 16.0).astype(np.float32), y,
                                                          strict=True)}
    assert all(lookup[img.tobytes()] == lab for img, lab in zip(wl.images, wl.labels,
                                                                strict=True))


def test_shipped_digits_are_scikit_learns_split_exactly() -> None:
    """The file the demo ships is the test split of make_models.py, image for image and
    in order (so the demo needs no scikit-learn at run time)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (np.asarray(x) / 16.0).astype(np.float32)
    _, x_test, _, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    wl = Workload(seed=0)
    np.testing.assert_array_equal(wl.images, x_test)
    np.testing.assert_array_equal(wl.labels, y_test)


def test_classifier_labels_the_submitted_digits() -> None:
    wl = Workload(seed=3)
    kind = KINDS["classifier"]
    sess = session(kind)
    right = total = 0
    for _ in range(60):  # 60 jobs of 4-12 images: more than the 450 held out, so it cycles
        sub = wl.make(kind)
        assert sub.labels is not None
        assert kind.batch[0] <= sub.items <= kind.batch[1]
        label = sess.run(["label"], sub.inputs)[0]
        right += int(np.sum(label == sub.labels))
        total += sub.items
    assert total > 450
    # README of examples/models: 97.11 % on the held-out quarter
    assert 0.94 <= right / total <= 1.0


@pytest.mark.parametrize("name", ["detector", "embedder"])
def test_heavy_inputs_fit_their_models(name: str) -> None:
    kind = KINDS[name]
    sub = Workload(seed=1).make(kind)
    (arr,) = sub.inputs.values()
    assert list(sub.inputs) == [kind.input_name] and arr.dtype == np.float32
    assert arr.shape[0] == sub.items and sub.labels is None
    outs = session(kind).run(None, sub.inputs)
    assert all(o.shape[0] == sub.items and np.isfinite(o).all() for o in outs)


def test_streams_are_seeded_per_kind() -> None:
    a, b = Workload(seed=7), Workload(seed=7)
    # different interleavings of kinds give the same per-kind stream
    a_cls = [a.make(KINDS["classifier"]) for _ in range(3)]
    b.make(KINDS["embedder"])
    b.make(KINDS["detector"])
    b_cls = [b.make(KINDS["classifier"]) for _ in range(3)]
    for x, y in zip(a_cls, b_cls, strict=True):
        assert np.array_equal(x.inputs["input"], y.inputs["input"])
        assert x.labels is not None and y.labels is not None
        assert np.array_equal(x.labels, y.labels)
    other = Workload(seed=8).make(KINDS["classifier"])
    assert not np.array_equal(other.inputs["input"][:4], a_cls[0].inputs["input"][:4])


def test_unknown_kind_is_refused() -> None:
    bogus = JobKind("segmenter", "x.onnx", "x", (1, 1), 1, 1.0, 1.0, 1.0)
    with pytest.raises(ConfigError, match="kind"):
        Workload().make(bogus)
