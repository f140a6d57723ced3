"""ONNX cost model: FLOPs and bytes counted by hand on tiny graphs, and the roofline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from flightsw.exceptions import CostModelError
from flightsw.models.cost import (
    ModelCost,
    analyse,
    modelled_energy_j,
    modelled_run,
    roofline,
)

F = TensorProto.FLOAT


def _model(
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    inits: dict[str, np.ndarray] | None = None,
    opsets: dict[str, int] | None = None,
) -> bytes:
    graph = helper.make_graph(
        nodes,
        "g",
        inputs,
        outputs,
        [numpy_helper.from_array(v, k) for k, v in (inits or {}).items()],
    )
    ops = [helper.make_opsetid(d, v) for d, v in (opsets or {"": 17}).items()]
    model = helper.make_model(graph, opset_imports=ops)
    model.ir_version = 8
    return model.SerializeToString()


def _w(*shape: int) -> np.ndarray:
    return np.ones(shape, np.float32)


def test_gemm_flops_bytes_and_weights_by_hand() -> None:
    # Y[N,3] = X[N,4] @ W[3,4]^T + B[3]
    data = _model(
        [helper.make_node("Gemm", ["X", "W", "B"], ["Y"], transB=1)],
        [helper.make_tensor_value_info("X", F, ["N", 4])],
        [helper.make_tensor_value_info("Y", F, ["N", 3])],
        {"W": _w(3, 4), "B": _w(3)},
    )
    cost = analyse(data)
    assert cost.flops_per_item == 2 * 4 * 3 + 3  # multiply-adds, then the bias
    assert cost.bytes_per_item == 4 * 4 + 3 * 4  # X read, Y written
    assert cost.weight_bytes == (12 + 3) * 4
    assert dict(cost.per_op) == {"Gemm": 27.0}
    assert cost.uncounted == ()
    assert cost.complete
    assert [(s.name, s.dtype, s.shape) for s in cost.inputs] == [("X", "float32", (None, 4))]
    assert cost.outputs == ("Y",)


def test_gemm_trans_a() -> None:
    # A is [K=5, M=N] transposed: not batch-major, but counting follows the output shape
    data = _model(
        [helper.make_node("Gemm", ["A", "W"], ["Y"], transA=1)],
        [helper.make_tensor_value_info("A", F, [5, 2])],
        [helper.make_tensor_value_info("Y", F, [2, 7])],
        {"W": _w(5, 7)},
    )
    assert analyse(data).flops_per_item == 2 * 5 * 2 * 7


def test_batched_matmul() -> None:
    data = _model(
        [helper.make_node("MatMul", ["X", "W"], ["Y"])],
        [helper.make_tensor_value_info("X", F, ["N", 2, 5])],
        [helper.make_tensor_value_info("Y", F, ["N", 2, 7])],
        {"W": _w(5, 7)},
    )
    assert analyse(data).flops_per_item == 2 * 5 * (2 * 7)


def test_grouped_strided_padded_conv_by_hand() -> None:
    # X [N,4,7,7], W [6, 4/2, 3, 3], group 2, stride 2, pads 1 -> Y [N,6,4,4]
    data = _model(
        [
            helper.make_node(
                "Conv", ["X", "W", "B"], ["Y"], group=2, strides=[2, 2], pads=[1, 1, 1, 1]
            )
        ],
        [helper.make_tensor_value_info("X", F, ["N", 4, 7, 7])],
        [helper.make_tensor_value_info("Y", F, ["N", 6, 4, 4])],
        {"W": _w(6, 2, 3, 3), "B": _w(6)},
    )
    cost = analyse(data)
    out = 6 * 4 * 4
    assert cost.flops_per_item == 2 * out * (2 * 3 * 3) + out
    assert cost.bytes_per_item == (4 * 7 * 7 + out) * 4
    assert cost.weight_bytes == (6 * 2 * 9 + 6) * 4


def test_elementwise_pool_reduce_softmax_rules() -> None:
    nodes = [
        helper.make_node("Relu", ["X"], ["r"]),  # 96 elements
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["p"], ["g"]),  # 24 in, 6 out
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Sigmoid", ["f"], ["s"]),
        helper.make_node("Clip", ["s"], ["c"]),
        helper.make_node("Softmax", ["c"], ["Y"], axis=-1),
        helper.make_node("ReduceSum", ["X"], ["Z"], keepdims=0),
    ]
    data = _model(
        nodes,
        [helper.make_tensor_value_info("X", F, ["N", 6, 4, 4])],
        [
            helper.make_tensor_value_info("Y", F, ["N", 6]),
            helper.make_tensor_value_info("Z", F, []),
        ],
    )
    cost = analyse(data)
    assert dict(cost.per_op) == {
        "Relu": 96.0,
        "MaxPool": 24 * 4.0,
        "GlobalAveragePool": 24.0 + 6.0,
        "Flatten": 0.0,
        "Sigmoid": 4 * 6.0,
        "Clip": 2 * 6.0,
        "Softmax": 5 * 6.0,
        "ReduceSum": 96.0,
    }
    # Flatten is a view: no bytes; every other node reads its input and writes its output
    expected = (96 + 96) + (96 + 24) + (24 + 6) + (6 + 6) + (6 + 6) + (6 + 6) + (96 + 1)
    assert cost.bytes_per_item == expected * 4


def test_batch_dimension_is_bound_to_one_whatever_it_is_called() -> None:
    def build(batch: str | None) -> bytes:
        return _model(
            [helper.make_node("MatMul", ["X", "W"], ["Y"])],
            [helper.make_tensor_value_info("X", F, [batch, 8])],
            [helper.make_tensor_value_info("Y", F, [batch, 2])],
            {"W": _w(8, 2)},
        )

    assert analyse(build("batch")).flops_per_item == 32
    assert analyse(build(None)).flops_per_item == 32


def test_uncounted_ops_are_reported_not_zero() -> None:
    k = np.array([2], np.int64)
    data = _model(
        [
            helper.make_node("Relu", ["X"], ["r"]),
            helper.make_node("TopK", ["r", "K"], ["values", "indices"]),
            helper.make_node("Mystery", ["r"], ["m"], domain="com.example"),
        ],
        [helper.make_tensor_value_info("X", F, ["N", 5])],
        [
            helper.make_tensor_value_info("values", F, ["N", 2]),
            helper.make_tensor_value_info("indices", TensorProto.INT64, ["N", 2]),
            helper.make_tensor_value_info("m", F, None),
        ],
        {"K": k},
        opsets={"": 17, "com.example": 1},
    )
    cost = analyse(data)
    assert cost.uncounted == ("TopK", "com.example.Mystery")
    assert dict(cost.per_op) == {"Relu": 5.0}
    assert "m" in cost.unknown_shapes
    assert not cost.complete


def test_dynamic_dims_other_than_batch_need_binding() -> None:
    data = _model(
        [helper.make_node("MatMul", ["X", "W"], ["Y"])],
        [helper.make_tensor_value_info("X", F, ["N", "T", 8])],
        [helper.make_tensor_value_info("Y", F, ["N", "T", 2])],
        {"W": _w(8, 2)},
    )
    assert analyse(data).uncounted == ("MatMul",)
    bound = analyse(data, bind={"T": 10})
    assert bound.uncounted == ()
    assert bound.flops_per_item == 2 * 8 * 10 * 2
    with pytest.raises(CostModelError, match=r"bind\['T'\] must be a positive integer"):
        analyse(data, bind={"T": 0})


def test_tree_ensemble_counts_mean_leaf_depth_per_tree() -> None:
    # tree 0: root -> 2 leaves (depth 1); tree 1: root -> leaf, node -> 2 leaves (1, 2, 2)
    node = helper.make_node(
        "TreeEnsembleRegressor",
        ["X"],
        ["Y"],
        domain="ai.onnx.ml",
        n_targets=1,
        nodes_treeids=[0, 0, 0, 1, 1, 1, 1, 1],
        nodes_nodeids=[0, 1, 2, 0, 1, 2, 3, 4],
        nodes_featureids=[0, 0, 0, 1, 0, 2, 0, 0],
        nodes_values=[0.5, 0, 0, 0.5, 0, 0.1, 0, 0],
        nodes_modes=[
            "BRANCH_LEQ",
            "LEAF",
            "LEAF",
            "BRANCH_LEQ",
            "LEAF",
            "BRANCH_LT",
            "LEAF",
            "LEAF",
        ],
        nodes_truenodeids=[1, 0, 0, 1, 0, 3, 0, 0],
        nodes_falsenodeids=[2, 0, 0, 2, 0, 4, 0, 0],
        target_treeids=[0, 0, 1, 1, 1],
        target_nodeids=[1, 2, 1, 3, 4],
        target_ids=[0, 0, 0, 0, 0],
        target_weights=[1.0, 2.0, 3.0, 4.0, 5.0],
    )
    data = _model(
        [node],
        [helper.make_tensor_value_info("X", F, ["N", 3])],
        [helper.make_tensor_value_info("Y", F, ["N", 1])],
        opsets={"": 17, "ai.onnx.ml": 3},
    )
    cost = analyse(data)
    comparisons = 1.0 + (1 + 2 + 2) / 3
    additions = 5 / 5 * 2  # one weight per leaf, one leaf reached per tree
    assert cost.flops_per_item == pytest.approx(comparisons + additions)
    assert cost.uncounted == ()
    assert cost.unknown_shapes == ()  # output shape filled in for ai.onnx.ml ops
    assert cost.bytes_per_item == 3 * 4 + 1 * 4


def test_example_models_span_three_orders_of_magnitude(examples_dir: Path) -> None:
    costs = {p.stem: analyse(p) for p in sorted(examples_dir.glob("*.onnx"))}
    assert set(costs) == {"digits_forest", "digits_classifier", "detector", "embedder"}
    for name, cost in costs.items():
        assert cost.complete, (name, cost.uncounted, cost.unknown_shapes)
    flops = [c.flops_per_item for c in costs.values()]
    assert max(flops) / min(flops) >= 1000
    # hand checks: MLP 64-64-10 and the embedder's 3 blocks of 256 tokens x (128x512 + 512x128)
    assert costs["digits_classifier"].per_op["MatMul"] == 2 * 64 * 64 + 2 * 64 * 10
    assert costs["embedder"].per_op["MatMul"] == 3 * 256 * 2 * (2 * 128 * 512)
    assert costs["embedder"].weight_bytes > 1_500_000
    assert costs["detector"].inputs[0].shape == (None, 3, 96, 96)


def test_analysis_is_cached_by_hash(examples_dir: Path) -> None:
    path = examples_dir / "digits_classifier.onnx"
    first = analyse(path)
    assert analyse(path.read_bytes()) is first
    assert analyse(path, model_hash=first.model_hash) is first
    assert first.to_dict()["flops_per_item"] == first.flops_per_item


def test_not_onnx_is_a_cost_model_error(tmp_path: Path) -> None:
    with pytest.raises(CostModelError, match=r"not an ONNX model|empty graph"):
        analyse(b"\x08\x07garbage")
    with pytest.raises(CostModelError, match="cannot read model"):
        analyse(tmp_path / "missing.onnx")


def _cost(flops: float, bytes_per_item: int, weight_bytes: int) -> ModelCost:
    return ModelCost("0" * 64, flops, bytes_per_item, weight_bytes, {}, (), (), (), (), 0)


def test_roofline_compute_bound_and_memory_bound() -> None:
    cost = _cost(flops=1e9, bytes_per_item=1_000_000, weight_bytes=50_000_000)
    # compute: 1e9 * 10 / 1e12 = 10 ms; memory: (5e7 + 1e7) / 1e12 = 60 us
    assert roofline(cost, 10, 1e12, 1e12) == pytest.approx(0.01)
    # slow memory: (5e7 + 1e7) / 1e9 = 60 ms > 10 ms
    assert roofline(cost, 10, 1e12, 1e9) == pytest.approx(0.06)
    assert roofline(cost, 0, 1e12, 1e9) == 0.0
    assert modelled_energy_j(0.06, 60.0) == pytest.approx(3.6)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((1, 0.0, 1e9), "effective_ops_per_s"),
        ((1, 1e12, -1.0), "memory_bandwidth_bps"),
        ((1, float("nan"), 1e9), "effective_ops_per_s"),
        ((-1, 1e12, 1e9), "items"),
    ],
)
def test_roofline_bad_arguments_name_the_field(args: tuple[int, float, float], field: str) -> None:
    with pytest.raises(CostModelError, match=field):
        roofline(_cost(1.0, 1, 1), *args)


def test_energy_bad_arguments() -> None:
    with pytest.raises(CostModelError, match="watts"):
        modelled_energy_j(1.0, -5.0)
    with pytest.raises(CostModelError, match="latency_s"):
        modelled_energy_j(-1.0, 5.0)


@dataclass(frozen=True)
class _Mode:
    name: str
    watts: float
    throughput: float


@dataclass(frozen=True)
class _Compute:
    memory_bandwidth_bps: float


@dataclass(frozen=True)
class _Profile:
    compute: _Compute
    modes: tuple[_Mode, ...]

    def power_mode(self, name: str) -> _Mode:
        return next(m for m in self.modes if m.name == name)

    def effective_ops_per_s(self, mode: str) -> float:
        return 1e12 * self.power_mode(mode).throughput


def test_modelled_run_on_a_profile() -> None:
    profile = _Profile(_Compute(1e9), (_Mode("max", 60.0, 1.0), _Mode("eco", 15.0, 0.25)))
    cost = _cost(flops=1e9, bytes_per_item=1_000_000, weight_bytes=50_000_000)
    fast = modelled_run(cost, 10, profile, "max")
    assert fast.bound == "memory"
    assert fast.latency_s == pytest.approx(0.06)
    assert fast.energy_j == pytest.approx(0.06 * 60)
    eco = modelled_run(cost, 100, profile, "eco")
    assert eco.bound == "compute"
    assert eco.latency_s == pytest.approx(1e9 * 100 / 2.5e11)
    assert eco.energy_j == pytest.approx(eco.latency_s * 15.0)


def test_modelled_run_on_a_real_hardware_profile(examples_dir: Path) -> None:
    hardware_profiles = pytest.importorskip("hardware_profiles")
    profile = hardware_profiles.load_profile("jetson-agx-orin")
    cost = analyse(examples_dir / "embedder.onnx")
    mode = profile.fastest_mode.name
    run = modelled_run(cost, 32, profile, mode)
    expected = roofline(
        cost, 32, profile.effective_ops_per_s(mode), profile.compute.memory_bandwidth_bps
    )
    assert run.latency_s == pytest.approx(expected)
    assert run.energy_j == pytest.approx(expected * profile.power_mode(mode).watts)
