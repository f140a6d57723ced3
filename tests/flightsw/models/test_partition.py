"""Pipeline stages of an ONNX graph: balanced cuts, small boundaries, and stages that
together give exactly the unsplit model's outputs."""

from __future__ import annotations

import functools
import math
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from flightsw.exceptions import CostModelError
from flightsw.models.cost import analyse, node_costs
from flightsw.models.partition import partition, run_stages

MODELS = Path(__file__).resolve().parents[3] / "examples" / "models"


@functools.cache
def mlp_bytes() -> bytes:
    """A model this feature did not write: a 4-layer MLP trained with scikit-learn on the
    digits and converted with skl2onnx."""
    from skl2onnx import to_onnx
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    x, y = load_digits(return_X_y=True)
    clf = MLPClassifier(hidden_layer_sizes=(96, 64, 32), max_iter=60, random_state=1)
    with warnings.catch_warnings():  # a short training run: convergence is not the point
        warnings.simplefilter("ignore")
        clf.fit(x[:600] / 16.0, y[:600])
    onx = to_onnx(clf, x[:1].astype(np.float32), options={"zipmap": False})
    return onx.SerializeToString()  # type: ignore[no-any-return]


def reference(data: bytes, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds), strict=True))


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_stages_in_order_give_exactly_the_unsplit_outputs(k: int) -> None:
    data = mlp_bytes()
    from sklearn.datasets import load_digits

    x = (load_digits().data[600:650] / 16.0).astype(np.float32)
    want = reference(data, {"X": x})
    plan = partition(data, k)
    assert len(plan.stages) == k
    got = run_stages(plan, {"X": x})
    assert sorted(got) == sorted(want)
    for name, arr in want.items():
        np.testing.assert_array_equal(got[name], arr)
    # each stage is a real model with the graph's dynamic batch
    for stage in plan.stages:
        sess = ort.InferenceSession(stage.model, providers=["CPUExecutionProvider"])
        assert [i.name for i in sess.get_inputs()] == list(stage.inputs)


def test_cuts_balance_the_work_and_count_it_all() -> None:
    data = (MODELS / "embedder.onnx").read_bytes()
    flops = node_costs(data).flops
    total = analyse(data).flops_per_item
    plan = partition(data, 3)
    assert sum(s.flops_per_item for s in plan.stages) == pytest.approx(total)
    assert plan.flops_per_item == pytest.approx(total)
    # no stage exceeds an even share by more than the largest single node
    assert max(s.flops_per_item for s in plan.stages) <= total / 3 + max(flops)
    assert plan.slowest_stage_s_per_item == pytest.approx(
        max(s.flops_per_item for s in plan.stages) / 1e12)
    # a boundary ships the activations of one item: tokens [256, 128] float32 = 131,072 B
    assert plan.boundary_bytes_per_item == (131_072, 131_072)


def test_a_slow_link_moves_the_cut_to_a_smaller_boundary() -> None:
    data = (MODELS / "detector.onnx").read_bytes()
    fast = partition(data, 2, ops_per_s=1e9)
    slow = partition(data, 2, ops_per_s=1e9, link_bps=1e5)
    assert slow.boundary_bytes_per_item[0] < fast.boundary_bytes_per_item[0]
    assert slow.slowest_stage_s_per_item > fast.slowest_stage_s_per_item
    x = np.random.default_rng(3).standard_normal((2, 3, 96, 96)).astype(np.float32)
    want = reference(data, {"image": x})
    for plan in (fast, slow):
        got = run_stages(plan, {"image": x})
        for name, arr in want.items():
            np.testing.assert_array_equal(got[name], arr)


def test_bad_stage_counts_are_named() -> None:
    data = (MODELS / "digits_classifier.onnx").read_bytes()
    with pytest.raises(CostModelError, match="stages: must be at least 1"):
        partition(data, 0)
    n = len(node_costs(data).flops)
    with pytest.raises(CostModelError, match=f"the graph has {n}"):
        partition(data, n + 1)
    assert math.isfinite(partition(data, n).slowest_stage_s_per_item)
