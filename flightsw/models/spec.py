"""What a model takes and gives: tensor specs read from the ONNX graph.

Dynamic dimensions are ``None`` in :attr:`TensorSpec.shape`; their symbolic names (when the
graph gives one, e.g. ``"N"``) are kept in :attr:`TensorSpec.dim_names` so inputs that share
a named dimension can be checked for agreement.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from flightsw.exceptions import InferenceError

__all__ = [
    "TensorSpec",
    "dtype_name",
    "format_shape",
    "graph_inputs",
    "graph_outputs",
    "read_graph_inputs",
]


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output.

    ``dtype`` is a numpy dtype name (``"float32"``) for tensors, or the ONNX type text for
    non-tensor values (``"seq(map(int64,tensor(float)))"``), in which case ``is_tensor`` is
    False. ``shape`` is None when the rank is unknown.
    """

    name: str
    dtype: str
    shape: tuple[int | None, ...] | None
    dim_names: tuple[str | None, ...] | None = None
    is_tensor: bool = True

    def describe(self) -> str:
        """Human text such as ``float32 [N, 64]``."""
        if self.shape is None:
            return f"{self.dtype} [any shape]"
        return f"{self.dtype} {format_shape(self.shape, self.dim_names)}"


def format_shape(
    shape: tuple[int | None, ...], dim_names: tuple[str | None, ...] | None = None
) -> str:
    """``[N, 64]``: fixed sizes as numbers, dynamic ones by name (``?`` when unnamed)."""
    parts = []
    for i, dim in enumerate(shape):
        if dim is not None:
            parts.append(str(dim))
        elif dim_names is not None and dim_names[i]:
            parts.append(str(dim_names[i]))
        else:
            parts.append("N" if i == 0 else "?")
    return "[" + ", ".join(parts) + "]"


def dtype_name(elem_type: int) -> str:
    """numpy dtype name of an ONNX tensor element type."""
    try:
        return str(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)))
    except (KeyError, TypeError, ValueError):
        return str(onnx.TensorProto.DataType.Name(elem_type)).lower()


def _type_text(tp: onnx.TypeProto) -> str:
    kind = tp.WhichOneof("value")
    if kind == "tensor_type":
        return f"tensor({dtype_name(tp.tensor_type.elem_type)})"
    if kind == "sequence_type":
        return f"seq({_type_text(tp.sequence_type.elem_type)})"
    if kind == "map_type":
        key = dtype_name(tp.map_type.key_type)
        return f"map({key},{_type_text(tp.map_type.value_type)})"
    if kind == "optional_type":
        return f"optional({_type_text(tp.optional_type.elem_type)})"
    return str(kind)


def _spec(vi: onnx.ValueInfoProto) -> TensorSpec:
    tp = vi.type
    if tp.WhichOneof("value") != "tensor_type":
        return TensorSpec(vi.name, _type_text(tp), None, None, is_tensor=False)
    tt = tp.tensor_type
    dtype = dtype_name(tt.elem_type)
    if not tt.HasField("shape"):
        return TensorSpec(vi.name, dtype, None, None)
    dims: list[int | None] = []
    names: list[str | None] = []
    for d in tt.shape.dim:
        if d.HasField("dim_value") and d.dim_value >= 0:
            dims.append(int(d.dim_value))
            names.append(None)
        else:
            dims.append(None)
            names.append(d.dim_param or None)
    return TensorSpec(vi.name, dtype, tuple(dims), tuple(names))


def graph_inputs(model: onnx.ModelProto) -> tuple[TensorSpec, ...]:
    """Inputs a caller must feed: graph inputs that are not initializers."""
    weights = {init.name for init in model.graph.initializer}
    return tuple(_spec(vi) for vi in model.graph.input if vi.name not in weights)


def graph_outputs(model: onnx.ModelProto) -> tuple[TensorSpec, ...]:
    """Graph outputs, in order."""
    return tuple(_spec(vi) for vi in model.graph.output)


def read_graph_inputs(path: Path, label: str) -> tuple[TensorSpec, ...]:
    """:func:`graph_inputs` of the ONNX file at ``path`` (the graph only, no external
    weights); :class:`InferenceError` naming ``label`` if it cannot be read."""
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise InferenceError(f"model {label}: cannot read graph: {exc}") from exc
    return graph_inputs(model)
