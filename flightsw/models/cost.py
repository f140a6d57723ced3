"""FLOPs and bytes moved per item, counted from an ONNX graph; roofline latency and energy.

The host running the emulator is not the satellite's accelerator, so the onboard cost of a
job is modelled: :func:`analyse` binds the batch dimension of every input to 1, runs ONNX
shape inference and counts, node by node, the arithmetic operations and the activation bytes
read and written. :func:`roofline` turns that into seconds on a given compute rate and memory
bandwidth, and :func:`modelled_energy_j` into joules. The counting rules are listed in
``docs/models.md``; op types the rules do not cover are reported in
:attr:`ModelCost.uncounted`, never silently counted as zero.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, Protocol

import numpy as np
import onnx
from google.protobuf.message import DecodeError

from flightsw.exceptions import CostModelError
from flightsw.models.spec import TensorSpec, graph_inputs, graph_outputs
from flightsw.models.store import sha256_bytes

__all__ = [
    "ModelCost",
    "ModelledRun",
    "NodeCosts",
    "ProfileLike",
    "analyse",
    "clear_cache",
    "modelled_energy_j",
    "modelled_run",
    "node_costs",
    "roofline",
]

ML_DOMAIN = "ai.onnx.ml"
_CACHE_SIZE = 64
_INT_ATTR_BYTES = 8
_FLOAT_ATTR_BYTES = 4


@dataclass(frozen=True)
class ModelCost:
    """Modelled cost of one item (batch dimension = 1) through a model.

    ``flops_per_item`` counts arithmetic operations of any precision (a multiply-add is 2);
    ``bytes_per_item`` counts activation bytes each node reads and writes (weights excluded);
    ``weight_bytes`` counts initializers, Constant nodes and parameters held in attributes
    (tree ensembles, linear classifiers). ``uncounted`` lists op types at least one node of
    which could not be counted (no rule, or shapes unknown); ``unknown_shapes`` names tensors
    whose size shape inference could not give, so their bytes are missing. The mappings are
    read-only: a cost is cached and shared.
    """

    model_hash: str
    flops_per_item: float
    bytes_per_item: int
    weight_bytes: int
    per_op: Mapping[str, float]
    uncounted: tuple[str, ...]
    unknown_shapes: tuple[str, ...]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[str, ...]
    nodes: int

    @property
    def complete(self) -> bool:
        """True if every node was counted and every tensor size known."""
        return not self.uncounted and not self.unknown_shapes

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (for telemetry, reports and ``--json`` output)."""
        return {
            "model_hash": self.model_hash,
            "flops_per_item": self.flops_per_item,
            "bytes_per_item": self.bytes_per_item,
            "weight_bytes": self.weight_bytes,
            "per_op": dict(self.per_op),
            "uncounted": list(self.uncounted),
            "unknown_shapes": list(self.unknown_shapes),
            "inputs": [
                {
                    "name": s.name,
                    "dtype": s.dtype,
                    "shape": None if s.shape is None else list(s.shape),
                }
                for s in self.inputs
            ],
            "outputs": list(self.outputs),
            "nodes": self.nodes,
        }


# --------------------------------------------------------------------------- tensor facts


@dataclass
class _Graph:
    """Shapes and dtypes of every tensor of the batch-bound, shape-inferred graph."""

    shapes: dict[str, tuple[int | None, ...] | None] = field(default_factory=dict)
    itemsize: dict[str, int] = field(default_factory=dict)
    weights: set[str] = field(default_factory=set)
    unknown: set[str] = field(default_factory=set)

    def shape(self, name: str) -> tuple[int, ...] | None:
        shape = self.shapes.get(name)
        if shape is None or any(d is None for d in shape):
            return None
        return tuple(int(d) for d in shape if d is not None)

    def numel(self, name: str) -> int | None:
        shape = self.shape(name)
        return None if shape is None else math.prod(shape)

    def nbytes(self, name: str) -> int | None:
        n = self.numel(name)
        size = self.itemsize.get(name)
        if n is None or size is None:
            return None
        return n * size


def _itemsize(elem_type: int) -> int | None:
    try:
        return int(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).itemsize)
    except (KeyError, TypeError, ValueError):
        return None


def _record(g: _Graph, vi: onnx.ValueInfoProto) -> None:
    tp = vi.type
    if tp.WhichOneof("value") != "tensor_type":
        return
    tt = tp.tensor_type
    size = _itemsize(tt.elem_type) if tt.elem_type else None
    if size is not None:
        g.itemsize[vi.name] = size
    if tt.HasField("shape"):
        g.shapes[vi.name] = tuple(
            int(d.dim_value) if d.HasField("dim_value") else None for d in tt.shape.dim
        )


def _bind_batch(model: onnx.ModelProto, bind: Mapping[str, int]) -> onnx.ModelProto:
    """Copy of ``model`` with dim 0 of each fed input (and named dims in ``bind``) fixed."""
    bound = onnx.ModelProto()
    bound.CopyFrom(model)
    weights = {init.name for init in bound.graph.initializer}
    del bound.graph.value_info[:]
    batch_names: set[str] = set()
    for vi in bound.graph.input:
        if vi.name in weights or vi.type.WhichOneof("value") != "tensor_type":
            continue
        tt = vi.type.tensor_type
        if not tt.HasField("shape"):
            continue
        for i, dim in enumerate(tt.shape.dim):
            if dim.HasField("dim_value"):
                continue
            if dim.dim_param and dim.dim_param in bind:
                value = bind[dim.dim_param]
            elif i == 0:
                value = 1
                if dim.dim_param:
                    batch_names.add(dim.dim_param)
            else:
                continue
            dim.Clear()
            dim.dim_value = value
    # outputs declared with the same symbolic batch name would contradict the bound value
    names = batch_names | set(bind)
    for vi in bound.graph.output:
        if vi.type.WhichOneof("value") != "tensor_type":
            continue
        for dim in vi.type.tensor_type.shape.dim:
            if dim.dim_param in names:
                dim.Clear()
    return bound


def _graph_facts(model: onnx.ModelProto) -> _Graph:
    g = _Graph()
    for vi in (*model.graph.input, *model.graph.value_info, *model.graph.output):
        _record(g, vi)
    for init in model.graph.initializer:
        g.weights.add(init.name)
        g.shapes[init.name] = tuple(int(d) for d in init.dims)
        size = _itemsize(init.data_type)
        if size is not None:
            g.itemsize[init.name] = size
    for node in model.graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            g.weights.update(o for o in node.output if o)
    return g


def _ml_output_shapes(model: onnx.ModelProto, g: _Graph) -> dict[str, tuple[int, ...]]:
    """Output shapes ONNX shape inference leaves open for ai.onnx.ml ops, as onnxruntime
    produces them (label [rows], scores [rows, classes], same-shape transforms)."""
    fixes: dict[str, tuple[int, ...]] = {}
    for node in model.graph.node:
        if node.domain != ML_DOMAIN or not node.input:
            continue
        x = g.shape(node.input[0])
        if x is None:
            continue
        rows = x[0] if len(x) == 2 else 1
        op = node.op_type
        shapes: list[tuple[int, ...]] = []
        if op == "ArrayFeatureExtractor" and len(node.input) > 1:
            k = g.numel(node.input[1])
            if k is not None:
                shapes = [(1, k) if len(x) == 1 else (*x[:-1], k)]
        elif op == "TreeEnsembleClassifier":
            labels = _attr(node, "classlabels_int64s") or _attr(node, "classlabels_strings") or []
            shapes = [(rows,), (rows, len(labels))]
        elif op == "TreeEnsembleRegressor":
            shapes = [(rows, int(_attr(node, "n_targets", 1)))]
        elif op == "LinearRegressor":
            shapes = [(rows, int(_attr(node, "targets", 1)))]
        elif op in ("Normalizer", "Scaler", "Binarizer", "Imputer"):
            shapes = [x]
        for name, shape in zip(node.output, shapes, strict=False):
            if name and g.shape(name) is None:
                fixes[name] = shape
    return fixes


def _apply_shapes(model: onnx.ModelProto, fixes: Mapping[str, tuple[int, ...]]) -> None:
    for vi in (*model.graph.value_info, *model.graph.output):
        shape = fixes.get(vi.name)
        if shape is None or vi.type.WhichOneof("value") != "tensor_type":
            continue
        tt = vi.type.tensor_type
        tt.ClearField("shape")
        for d in shape:
            tt.shape.dim.add().dim_value = d


# --------------------------------------------------------------------------- counting rules

# Operations per output element of elementwise ops (see docs/models.md).
_ELEMENTWISE: dict[str, float] = {
    **dict.fromkeys(
        (
            "Add",
            "Sub",
            "Mul",
            "Div",
            "Neg",
            "Abs",
            "Relu",
            "Pow",
            "Sqrt",
            "Reciprocal",
            "Exp",
            "Log",
            "Tanh",
            "Erf",
            "Floor",
            "Ceil",
            "Round",
            "Sign",
            "Mod",
            "Sin",
            "Cos",
            "Tan",
            "Asin",
            "Acos",
            "Atan",
            "Sinh",
            "Cosh",
            "Asinh",
            "Acosh",
            "Atanh",
            "Equal",
            "Less",
            "Greater",
            "LessOrEqual",
            "GreaterOrEqual",
            "Not",
            "And",
            "Or",
            "Xor",
            "Where",
            "IsNaN",
            "IsInf",
            "BitShift",
            "BitwiseAnd",
            "BitwiseOr",
            "BitwiseXor",
            "BitwiseNot",
            "ThresholdedRelu",
            "Shrink",
        ),
        1.0,
    ),
    **dict.fromkeys(("Clip", "LeakyRelu", "PRelu", "Softsign", "Celu"), 2.0),
    **dict.fromkeys(("Elu", "Selu", "HardSigmoid", "Softplus", "Mish"), 3.0),
    **dict.fromkeys(("Sigmoid", "HardSwish"), 4.0),
    "Gelu": 8.0,
    "BatchNormalization": 2.0,
    "Softmax": 5.0,
    "LogSoftmax": 5.0,
    "Hardmax": 2.0,
    "LayerNormalization": 7.0,
    "InstanceNormalization": 7.0,
    "GroupNormalization": 7.0,
}
# Variadic elementwise ops: one operation per output element per extra operand.
_VARIADIC = frozenset({"Sum", "Max", "Min", "Mean"})
# Reductions: (operations per input element, operations per output element).
_REDUCE: dict[str, tuple[float, float]] = {
    "ReduceSum": (1.0, 0.0),
    "ReduceMax": (1.0, 0.0),
    "ReduceMin": (1.0, 0.0),
    "ReduceProd": (1.0, 0.0),
    "ReduceMean": (1.0, 1.0),
    "ReduceL1": (2.0, 0.0),
    "ReduceL2": (2.0, 1.0),
    "ReduceSumSquare": (2.0, 0.0),
    "ReduceLogSum": (1.0, 1.0),
    "ReduceLogSumExp": (2.0, 1.0),
    "GlobalAveragePool": (1.0, 1.0),
    "GlobalMaxPool": (1.0, 0.0),
    "ArgMax": (1.0, 0.0),
    "ArgMin": (1.0, 0.0),
}
# No arithmetic: data movement, type conversion, shape queries.
_MOVE = frozenset(
    {
        "Reshape",
        "Flatten",
        "Squeeze",
        "Unsqueeze",
        "Identity",
        "Transpose",
        "Concat",
        "Split",
        "Slice",
        "Gather",
        "GatherElements",
        "GatherND",
        "ScatterElements",
        "ScatterND",
        "Expand",
        "Tile",
        "Pad",
        "Shape",
        "Size",
        "Constant",
        "ConstantOfShape",
        "Dropout",
        "Cast",
        "CastLike",
        "DepthToSpace",
        "SpaceToDepth",
        "Range",
        "OneHot",
        "EyeLike",
        "Compress",
        "NonZero",
        "ReverseSequence",
    }
)
# Views: onnxruntime does not copy data for these, so they move no bytes either.
_VIEW = frozenset(
    {
        "Reshape",
        "Flatten",
        "Squeeze",
        "Unsqueeze",
        "Identity",
        "Shape",
        "Size",
        "Constant",
        "Dropout",
    }
)
_ML_MOVE = frozenset({"ZipMap", "ArrayFeatureExtractor", "CastMap", "FeatureVectorizer"})
_ML_VIEW = frozenset({"ZipMap"})
# ai.onnx.ml post transforms: operations per output value.
_POST_TRANSFORM: dict[str, float] = {
    "NONE": 0.0,
    "SOFTMAX": 5.0,
    "SOFTMAX_ZERO": 5.0,
    "LOGISTIC": 4.0,
    "PROBIT": 10.0,
}

_Rule = Callable[[onnx.NodeProto, _Graph], float | None]


def _attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _inputs(node: onnx.NodeProto) -> list[str]:
    return [n for n in node.input if n]


def _out_numel(node: onnx.NodeProto, g: _Graph) -> int | None:
    return g.numel(node.output[0]) if node.output else None


def _matmul(node: onnx.NodeProto, g: _Graph) -> float | None:
    a = g.shape(node.input[0])
    out = _out_numel(node, g)
    if a is None or out is None or not a:
        return None
    return 2.0 * a[-1] * out


def _gemm(node: onnx.NodeProto, g: _Graph) -> float | None:
    a = g.shape(node.input[0])
    out = _out_numel(node, g)
    if a is None or out is None or len(a) != 2:
        return None
    k = a[0] if _attr(node, "transA", 0) else a[1]
    flops = 2.0 * k * out
    if len(_inputs(node)) > 2:
        flops += out
    return flops


def _conv(node: onnx.NodeProto, g: _Graph) -> float | None:
    w = g.shape(node.input[1])
    out = _out_numel(node, g)
    if w is None or out is None or len(w) < 2:
        return None
    # W is [C_out, C_in / group, k1, k2, ...]; each output element sums C_in/group * prod(k)
    flops = 2.0 * out * math.prod(w[1:])
    if len(_inputs(node)) > 2 and node.op_type == "Conv":
        flops += out
    return flops


def _conv_transpose(node: onnx.NodeProto, g: _Graph) -> float | None:
    x = g.numel(node.input[0])
    w = g.shape(node.input[1])
    out = _out_numel(node, g)
    if x is None or w is None or out is None or len(w) < 2:
        return None
    # W is [C_in, C_out / group, k...]; every input element scatters into C_out/group * prod(k)
    flops = 2.0 * x * math.prod(w[1:])
    if len(_inputs(node)) > 2:
        flops += out
    return flops


def _elementwise(node: onnx.NodeProto, g: _Graph) -> float | None:
    out = _out_numel(node, g)
    return None if out is None else _ELEMENTWISE[node.op_type] * out


def _variadic(node: onnx.NodeProto, g: _Graph) -> float | None:
    out = _out_numel(node, g)
    if out is None:
        return None
    extra = max(len(_inputs(node)) - 1, 0) + (1 if node.op_type == "Mean" else 0)
    return float(extra * out)


def _reduce(node: onnx.NodeProto, g: _Graph) -> float | None:
    x = g.numel(node.input[0])
    out = _out_numel(node, g)
    if x is None or out is None:
        return None
    per_in, per_out = _REDUCE[node.op_type]
    return per_in * x + per_out * out


def _pool(node: onnx.NodeProto, g: _Graph) -> float | None:
    out = _out_numel(node, g)
    kernel = _attr(node, "kernel_shape")
    if out is None or not kernel:
        return None
    flops = float(out * math.prod(kernel))
    if node.op_type == "AveragePool":
        flops += out
    return flops


def _zero(node: onnx.NodeProto, g: _Graph) -> float | None:
    return 0.0


def _rows(node: onnx.NodeProto, g: _Graph) -> int | None:
    """Rows (items) of a 2-D ai.onnx.ml input; a 1-D input is one row."""
    x = g.shape(node.input[0])
    if x is None:
        return None
    return x[0] if len(x) == 2 else 1


def _tree_depths(node: onnx.NodeProto) -> dict[int, float]:
    """Mean leaf depth of each tree of a TreeEnsemble{Classifier,Regressor} node."""
    tree_ids = list(_attr(node, "nodes_treeids", []))
    node_ids = list(_attr(node, "nodes_nodeids", []))
    modes = [m.decode() if isinstance(m, bytes) else str(m) for m in _attr(node, "nodes_modes", [])]
    true_ids = list(_attr(node, "nodes_truenodeids", []))
    false_ids = list(_attr(node, "nodes_falsenodeids", []))
    if not tree_ids or not len(tree_ids) == len(node_ids) == len(modes):
        raise CostModelError(
            f"{node.op_type} node {node.name!r}: nodes_treeids/nodes_nodeids/nodes_modes "
            "missing or of different lengths"
        )
    trees: dict[int, dict[int, tuple[int, int] | None]] = {}
    for i, (t, n, mode) in enumerate(zip(tree_ids, node_ids, modes, strict=True)):
        trees.setdefault(t, {})[n] = None if mode == "LEAF" else (true_ids[i], false_ids[i])
    depths: dict[int, float] = {}
    for tree, children in sorted(trees.items()):
        referenced = {c for kids in children.values() if kids for c in kids}
        roots = [n for n in children if n not in referenced]
        leaf_depths: list[int] = []
        stack = [(min(roots) if roots else min(children), 0)]
        seen: set[int] = set()
        while stack:
            n, depth = stack.pop()
            if n in seen or n not in children:
                continue
            seen.add(n)
            kids = children[n]
            if kids is None:
                leaf_depths.append(depth)
            else:
                stack.extend((k, depth + 1) for k in kids)
        depths[tree] = sum(leaf_depths) / len(leaf_depths) if leaf_depths else 0.0
    return depths


def _tree_ensemble(node: onnx.NodeProto, g: _Graph) -> float | None:
    rows = _rows(node, g)
    if rows is None:
        return None
    depths = _tree_depths(node)
    prefix = "class" if node.op_type == "TreeEnsembleClassifier" else "target"
    weight_trees = list(_attr(node, f"{prefix}_treeids", []))
    leaves = sum(1 for m in _attr(node, "nodes_modes", []) if m in (b"LEAF", "LEAF"))
    # one comparison per level walked, one addition per leaf weight accumulated
    adds = len(weight_trees) / max(leaves, 1) * len(depths)
    if node.op_type == "TreeEnsembleClassifier":
        labels = _attr(node, "classlabels_int64s") or _attr(node, "classlabels_strings") or []
        outputs = len(labels)
    else:
        outputs = int(_attr(node, "n_targets", 1))
    post = _post_transform(node) * outputs
    return rows * (sum(depths.values()) + adds + post)


def _post_transform(node: onnx.NodeProto) -> float:
    raw = _attr(node, "post_transform", b"NONE")
    name = raw.decode() if isinstance(raw, bytes) else str(raw)
    return _POST_TRANSFORM.get(name, 5.0)


def _linear(node: onnx.NodeProto, g: _Graph) -> float | None:
    x = g.shape(node.input[0])
    rows = _rows(node, g)
    coefficients = _attr(node, "coefficients", [])
    if x is None or rows is None:
        return None
    features = x[-1]
    outputs = len(coefficients) // max(features, 1)
    return rows * (2.0 * len(coefficients) + outputs * (1.0 + _post_transform(node)))


def _normalizer(node: onnx.NodeProto, g: _Graph) -> float | None:
    x = g.numel(node.input[0])
    rows = _rows(node, g)
    if x is None or rows is None:
        return None
    raw = _attr(node, "norm", b"MAX")
    norm = raw.decode() if isinstance(raw, bytes) else str(raw)
    per_element = 2.0 if norm == "MAX" else 3.0
    return per_element * x + (rows if norm == "L2" else 0)


def _ml_elementwise(cost: float) -> _Rule:
    def rule(node: onnx.NodeProto, g: _Graph) -> float | None:
        out = _out_numel(node, g)
        return None if out is None else cost * out

    return rule


_RULES: dict[tuple[str, str], _Rule] = {
    ("", "MatMul"): _matmul,
    ("", "MatMulInteger"): _matmul,
    ("", "QLinearMatMul"): _matmul,
    ("", "Gemm"): _gemm,
    ("", "Conv"): _conv,
    ("", "ConvInteger"): _conv,
    ("", "QLinearConv"): _conv,
    ("", "ConvTranspose"): _conv_transpose,
    ("", "MaxPool"): _pool,
    ("", "AveragePool"): _pool,
    **{("", op): _elementwise for op in _ELEMENTWISE},
    **{("", op): _variadic for op in _VARIADIC},
    **{("", op): _reduce for op in _REDUCE},
    **{("", op): _zero for op in _MOVE},
    ("ai.onnx.ml", "TreeEnsembleClassifier"): _tree_ensemble,
    ("ai.onnx.ml", "TreeEnsembleRegressor"): _tree_ensemble,
    ("ai.onnx.ml", "LinearClassifier"): _linear,
    ("ai.onnx.ml", "LinearRegressor"): _linear,
    ("ai.onnx.ml", "Normalizer"): _normalizer,
    ("ai.onnx.ml", "Scaler"): _ml_elementwise(2.0),
    ("ai.onnx.ml", "Binarizer"): _ml_elementwise(1.0),
    ("ai.onnx.ml", "Imputer"): _ml_elementwise(1.0),
    **{("ai.onnx.ml", op): _zero for op in _ML_MOVE},
}


def _attribute_bytes(node: onnx.NodeProto) -> int:
    """Parameters held in attributes (tree nodes, linear coefficients) of ai.onnx.ml ops."""
    if node.domain != ML_DOMAIN:
        return 0
    total = 0
    for a in node.attribute:
        if a.type == onnx.AttributeProto.INTS:
            total += _INT_ATTR_BYTES * len(a.ints)
        elif a.type == onnx.AttributeProto.FLOATS:
            total += _FLOAT_ATTR_BYTES * len(a.floats)
        elif a.type == onnx.AttributeProto.TENSOR:
            total += len(a.t.raw_data)
    return total


def _tensor_bytes(t: onnx.TensorProto) -> int:
    size = _itemsize(t.data_type) or 0
    return math.prod(int(d) for d in t.dims) * size


def _count(model: onnx.ModelProto, g: _Graph) -> tuple[dict[str, float], set[str], int, int]:
    per_op: dict[str, float] = {}
    uncounted: set[str] = set()
    bytes_moved = 0
    weight_bytes = sum(_tensor_bytes(t) for t in model.graph.initializer)
    for node in model.graph.node:
        domain = "" if node.domain == "ai.onnx" else node.domain
        op = node.op_type if domain in ("", ML_DOMAIN) else f"{domain}.{node.op_type}"
        weight_bytes += _attribute_bytes(node)
        if op == "Constant":
            value = _attr(node, "value")
            if isinstance(value, onnx.TensorProto):
                weight_bytes += _tensor_bytes(value)
        rule = _RULES.get((domain, node.op_type))
        has_subgraph = any(
            a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
            for a in node.attribute
        )
        flops = None if rule is None or has_subgraph else rule(node, g)
        if flops is None:
            uncounted.add(op)
        else:
            per_op[op] = per_op.get(op, 0.0) + flops
        view = node.op_type in (_VIEW if domain == "" else _ML_VIEW if domain == ML_DOMAIN else ())
        if view:
            continue
        for name in (*_inputs(node), *(o for o in node.output if o)):
            if name in g.weights:
                continue
            nbytes = g.nbytes(name)
            if nbytes is None:
                g.unknown.add(name)
            else:
                bytes_moved += nbytes
    return per_op, uncounted, bytes_moved, weight_bytes


# --------------------------------------------------------------------------- analysis + cache

_cache: OrderedDict[tuple[str, tuple[tuple[str, int], ...]], ModelCost] = OrderedDict()
_cache_lock = threading.Lock()


def clear_cache() -> None:
    """Forget every cached :class:`ModelCost`."""
    with _cache_lock:
        _cache.clear()


def _load(source: Path | str | bytes) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise CostModelError(f"cannot read model {source}: {exc}") from exc


def analyse(
    source: Path | str | bytes,
    *,
    model_hash: str | None = None,
    bind: Mapping[str, int] | None = None,
) -> ModelCost:
    """Count FLOPs and bytes per item of an ONNX model (a path or the file's bytes).

    Dim 0 of every fed input is the batch and is bound to 1. Other dynamic dimensions stay
    unknown unless named in ``bind`` (``{"seq_len": 128}``); nodes depending on them are
    reported in :attr:`ModelCost.uncounted`. Results are cached by model hash (pass
    ``model_hash`` when the caller already knows it, e.g. a file from the model store).
    """
    bind = dict(bind or {})
    for name, value in bind.items():
        if not isinstance(value, int) or value < 1:
            raise CostModelError(f"bind[{name!r}] must be a positive integer, got {value!r}")
    data = b"" if model_hash is not None and not isinstance(source, bytes) else _load(source)
    if model_hash is None:
        model_hash = sha256_bytes(data)
    key = (model_hash, tuple(sorted(bind.items())))
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
    if not data:
        data = _load(source)
    cost = _analyse_bytes(data, model_hash, bind)
    with _cache_lock:
        _cache[key] = cost
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return cost


def _inferred(
    data: bytes, model_hash: str, bind: Mapping[str, int]
) -> tuple[onnx.ModelProto, onnx.ModelProto, _Graph]:
    """The model, its batch-bound shape-inferred copy and that copy's tensor facts."""
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError) as exc:
        raise CostModelError(f"model {model_hash[:12]} is not an ONNX model: {exc}") from exc
    if not model.graph.node:
        raise CostModelError(f"model {model_hash[:12]} has an empty graph")
    try:
        inferred = onnx.shape_inference.infer_shapes(
            _bind_batch(model, bind), check_type=False, strict_mode=False, data_prop=True
        )
    except (onnx.shape_inference.InferenceError, RuntimeError, ValueError) as exc:
        raise CostModelError(f"model {model_hash[:12]}: shape inference failed: {exc}") from exc
    g = _graph_facts(inferred)
    fixes = _ml_output_shapes(inferred, g)
    if fixes:
        _apply_shapes(inferred, fixes)
        try:
            inferred = onnx.shape_inference.infer_shapes(
                inferred, check_type=False, strict_mode=False, data_prop=True
            )
        except (onnx.shape_inference.InferenceError, RuntimeError, ValueError) as exc:
            raise CostModelError(f"model {model_hash[:12]}: shape inference failed: {exc}") from exc
        g = _graph_facts(inferred)
    return model, inferred, g


@dataclass(frozen=True)
class NodeCosts:
    """Per node of a graph (in graph order), FLOPs per item (0 where no rule counts it),
    and the bytes per item of every activation tensor (None where a shape is unknown)."""

    model: onnx.ModelProto
    flops: tuple[float, ...]
    tensor_bytes: Mapping[str, int | None]
    weights: frozenset[str]


def node_costs(data: bytes, *, bind: Mapping[str, int] | None = None) -> NodeCosts:
    """FLOPs per item of each node of an ONNX model's bytes, and its tensors' bytes per
    item, by the counting rules of :func:`analyse` (for partitioning a graph)."""
    model, inferred, g = _inferred(data, sha256_bytes(data), dict(bind or {}))
    flops = []
    for node in inferred.graph.node:
        rule = _RULES.get(("" if node.domain == "ai.onnx" else node.domain, node.op_type))
        value = None if rule is None else rule(node, g)
        flops.append(float(value or 0.0))
    names = {n for node in inferred.graph.node for n in (*node.input, *node.output) if n}
    names |= {i.name for i in inferred.graph.input}
    return NodeCosts(
        model=model,
        flops=tuple(flops),
        tensor_bytes=MappingProxyType({n: g.nbytes(n) for n in names if n not in g.weights}),
        weights=frozenset(g.weights),
    )


def _analyse_bytes(data: bytes, model_hash: str, bind: Mapping[str, int]) -> ModelCost:
    model, inferred, g = _inferred(data, model_hash, bind)
    inputs = graph_inputs(model)
    outputs = tuple(s.name for s in graph_outputs(model))
    try:
        per_op, uncounted, bytes_moved, weight_bytes = _count(inferred, g)
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise CostModelError(f"model {model_hash[:12]}: cannot count: {exc}") from exc
    return ModelCost(
        model_hash=model_hash,
        flops_per_item=float(sum(per_op.values())),
        bytes_per_item=bytes_moved,
        weight_bytes=weight_bytes,
        per_op=MappingProxyType(dict(sorted(per_op.items()))),
        uncounted=tuple(sorted(uncounted)),
        unknown_shapes=tuple(sorted(g.unknown)),
        inputs=inputs,
        outputs=outputs,
        nodes=len(inferred.graph.node),
    )


# --------------------------------------------------------------------------- roofline


def _positive(name: str, value: float) -> float:
    if not value > 0 or not math.isfinite(value):
        raise CostModelError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def roofline(
    cost: ModelCost, items: int, effective_ops_per_s: float, memory_bandwidth_bps: float
) -> float:
    """Modelled seconds to run ``items`` items: the larger of compute time and memory time.

    compute = flops_per_item x items / effective_ops_per_s;
    memory = (weight_bytes + bytes_per_item x items) / memory_bandwidth_bps
    (weights are read once per batch, activations once per item).
    """
    if items < 0:
        raise CostModelError(f"items must be >= 0, got {items}")
    ops = _positive("effective_ops_per_s", effective_ops_per_s)
    bw = _positive("memory_bandwidth_bps", memory_bandwidth_bps)
    if items == 0:
        return 0.0
    compute_s = cost.flops_per_item * items / ops
    memory_s = (cost.weight_bytes + cost.bytes_per_item * items) / bw
    return max(compute_s, memory_s)


def modelled_energy_j(latency_s: float, watts: float) -> float:
    """Energy of running for ``latency_s`` at a power mode drawing ``watts``."""
    if latency_s < 0 or not math.isfinite(latency_s):
        raise CostModelError(f"latency_s must be a non-negative finite number, got {latency_s!r}")
    if watts < 0 or not math.isfinite(watts):
        raise CostModelError(f"watts must be a non-negative finite number, got {watts!r}")
    return latency_s * watts


class _PowerModeLike(Protocol):
    @property
    def watts(self) -> float: ...


class _ComputeLike(Protocol):
    @property
    def memory_bandwidth_bps(self) -> float: ...


class ProfileLike(Protocol):
    """The part of a hardware profile the roofline needs (see ``hardware_profiles``)."""

    @property
    def compute(self) -> _ComputeLike: ...

    def power_mode(self, name: str) -> _PowerModeLike: ...

    def effective_ops_per_s(self, mode: str) -> float: ...


@dataclass(frozen=True)
class ModelledRun:
    """Roofline figures of one batch on one power mode."""

    latency_s: float
    energy_j: float
    bound: Literal["compute", "memory", "none"]
    ops_per_s: float
    memory_bandwidth_bps: float
    watts: float


def modelled_run(cost: ModelCost, items: int, profile: ProfileLike, mode: str) -> ModelledRun:
    """Roofline latency and energy of ``items`` items on ``profile`` at power mode ``mode``."""
    ops = profile.effective_ops_per_s(mode)
    bw = profile.compute.memory_bandwidth_bps
    watts = profile.power_mode(mode).watts
    latency = roofline(cost, items, ops, bw)
    bound: Literal["compute", "memory", "none"] = "none"
    if items > 0:
        compute_s = cost.flops_per_item * items / ops
        bound = "compute" if compute_s >= latency else "memory"
    return ModelledRun(latency, modelled_energy_j(latency, watts), bound, ops, bw, watts)
