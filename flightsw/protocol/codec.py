"""msgpack encoding of messages and numpy tensors.

A tensor travels as a msgpack map ``{"dtype": str, "shape": [int, ...], "data": bin}``
with ``data`` the C-order little-endian bytes, so any language can decode it.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np
import numpy.typing as npt

from flightsw.exceptions import ProtocolError

__all__ = ["ALLOWED_DTYPES", "decode", "decode_tensor", "encode", "encode_tensor"]

ALLOWED_DTYPES = frozenset(
    {
        "float16",
        "float32",
        "float64",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "bool",
    }
)


def encode_tensor(array: npt.NDArray[Any]) -> dict[str, Any]:
    arr = np.asarray(array, order="C")  # ascontiguousarray would make a 0-d array 1-d
    if arr.dtype.name not in ALLOWED_DTYPES:
        raise ProtocolError(
            f"tensor dtype {arr.dtype.name!r} cannot travel; use one of {sorted(ALLOWED_DTYPES)}",
            code="unencodable",
        )
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return {"dtype": arr.dtype.name, "shape": list(arr.shape), "data": arr.tobytes()}


def decode_tensor(obj: Any, *, field: str = "tensor") -> npt.NDArray[Any]:
    if not isinstance(obj, dict):
        raise ProtocolError(f"{field}: expected a map with dtype, shape, data", field=field)
    dtype = obj.get("dtype")
    shape = obj.get("shape")
    data = obj.get("data")
    if not isinstance(dtype, str) or dtype not in ALLOWED_DTYPES:
        raise ProtocolError(
            f"{field}.dtype: {dtype!r} is not one of {sorted(ALLOWED_DTYPES)}",
            field=f"{field}.dtype",
        )
    if not isinstance(shape, list | tuple) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise ProtocolError(
            f"{field}.shape: {shape!r} is not a list of non-negative ints", field=f"{field}.shape"
        )
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ProtocolError(
            f"{field}.data: expected bytes, got {type(data).__name__}", field=f"{field}.data"
        )
    dt = np.dtype(dtype).newbyteorder("<")
    count = int(np.prod(shape)) if shape else 1
    if len(data) != count * dt.itemsize:
        raise ProtocolError(
            f"{field}.data: {len(data)} bytes, but dtype {dtype} and shape {list(shape)} "
            f"need {count * dt.itemsize}",
            field=f"{field}.data",
        )
    arr = np.frombuffer(bytes(data), dtype=dt).reshape(shape)
    return arr.astype(arr.dtype.newbyteorder("="), copy=False)


def encode(obj: Any) -> bytes:
    """msgpack bytes of a plain structure (maps, lists, numbers, str, bytes)."""
    try:
        out: bytes = msgpack.packb(obj, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ProtocolError(f"cannot encode message: {exc}", code="unencodable") from exc
    return out


def decode(payload: bytes, *, max_bytes: int | None = None) -> Any:
    """Plain structure from msgpack bytes; :class:`ProtocolError` if undecodable."""
    if max_bytes is not None and len(payload) > max_bytes:
        raise ProtocolError(
            f"payload of {len(payload)} bytes exceeds the limit of {max_bytes} bytes",
            code="oversize",
        )
    try:
        return msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except (
        msgpack.ExtraData,
        msgpack.FormatError,
        msgpack.StackError,
        ValueError,
        TypeError,
    ) as exc:
        raise ProtocolError(
            f"undecodable payload ({len(payload)} bytes): {exc}", code="undecodable"
        ) from exc
