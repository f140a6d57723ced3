"""msgpack codec and the tensor wire format."""

from __future__ import annotations

import re
from typing import Any

import msgpack
import numpy as np
import pytest

from flightsw.exceptions import ProtocolError
from flightsw.protocol.codec import ALLOWED_DTYPES, decode, decode_tensor, encode, encode_tensor


def _sample(dtype: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray[Any, Any]:
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True)
    return (rng.standard_normal(size=shape) * 1e3).astype(dt)


def _wire(array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Through the whole path: tensor map, msgpack bytes, back."""
    return decode_tensor(decode(encode(encode_tensor(array))))


@pytest.mark.parametrize("dtype", sorted(ALLOWED_DTYPES))
@pytest.mark.parametrize("shape", [(), (0,), (3, 0, 2), (7,), (2, 3, 4)])
def test_round_trip_every_dtype_and_shape(dtype: str, shape: tuple[int, ...]) -> None:
    a = _sample(dtype, shape)
    b = _wire(a)
    assert b.dtype == a.dtype and b.shape == a.shape
    assert np.array_equal(a, b)


def test_wire_map_is_little_endian_c_order() -> None:
    a = np.arange(6, dtype=np.int32).reshape(2, 3)
    t = encode_tensor(a.T)  # a non-contiguous view travels in C order
    assert t["dtype"] == "int32" and t["shape"] == [3, 2]
    assert t["data"] == np.ascontiguousarray(a.T).astype("<i4").tobytes()
    assert t["data"][:8] == bytes([0, 0, 0, 0, 3, 0, 0, 0])


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int16", "int32", "int64",
                                   "uint16", "uint32", "uint64"])
def test_big_endian_input(dtype: str) -> None:
    native = _sample(dtype, (4, 5), seed=3)
    big = native.astype(np.dtype(dtype).newbyteorder(">"))
    t = encode_tensor(big)
    assert t["dtype"] == dtype
    assert t["data"] == native.astype(np.dtype(dtype).newbyteorder("<")).tobytes()
    back = _wire(big)
    assert back.dtype == np.dtype(dtype) and np.array_equal(back, native)


def test_zero_d_tensor() -> None:
    t = encode_tensor(np.float64(2.5) * np.ones(()))
    assert t["shape"] == [] and len(t["data"]) == 8
    back = decode_tensor(t)
    assert back.shape == () and float(back) == 2.5


@pytest.mark.parametrize(
    "array",
    [np.zeros(2, np.complex64), np.array(["ab"]), np.array([object()]),
     np.zeros(2, "datetime64[s]"), np.zeros(2, np.float128 if hasattr(np, "float128") else "V8")],
    ids=["complex64", "str", "object", "datetime64", "longdouble"],
)
def test_encode_refuses_other_dtypes(array: np.ndarray[Any, Any]) -> None:
    with pytest.raises(ProtocolError, match=re.escape(f"tensor dtype {array.dtype.name!r} cannot")):
        encode_tensor(array)


GOOD = {"dtype": "float32", "shape": [2, 2], "data": bytes(16)}


@pytest.mark.parametrize(
    ("obj", "pattern"),
    [
        ([1, 2], r"^inputs\.x: expected a map"),
        ({**GOOD, "dtype": "complex64"}, r"^inputs\.x\.dtype: 'complex64' is not one of"),
        ({**GOOD, "dtype": None}, r"^inputs\.x\.dtype: None"),
        ({**GOOD, "shape": [2, -2]}, r"^inputs\.x\.shape: \[2, -2\] is not a list"),
        ({**GOOD, "shape": [2.0, 2]}, r"^inputs\.x\.shape: "),
        ({**GOOD, "shape": [True, 4]}, r"^inputs\.x\.shape: \[True, 4\] is not a list"),
        ({**GOOD, "shape": "2x2"}, r"^inputs\.x\.shape: "),
        ({**GOOD, "data": "0000"}, r"^inputs\.x\.data: expected bytes, got str"),
        ({**GOOD, "data": bytes(15)},
         r"^inputs\.x\.data: 15 bytes, but dtype float32 and shape \[2, 2\] need 16"),
        ({**GOOD, "shape": [], "data": bytes(8)}, r"^inputs\.x\.data: 8 bytes.* need 4"),
    ],
)
def test_decode_tensor_errors_name_the_field(obj: Any, pattern: str) -> None:
    with pytest.raises(ProtocolError, match=pattern) as err:
        decode_tensor(obj, field="inputs.x")
    assert err.value.code == "schema"
    assert err.value.field == str(err.value).split(":", 1)[0]  # the same path, set where raised


def test_decode_tensor_default_field_name() -> None:
    with pytest.raises(ProtocolError, match=r"^tensor\.data: "):
        decode_tensor({**GOOD, "data": b""})


def test_decode_tensor_accepts_bytearray_and_memoryview() -> None:
    raw = np.arange(4, dtype="<f4").tobytes()
    for data in (bytearray(raw), memoryview(raw)):
        out = decode_tensor({"dtype": "float32", "shape": [4], "data": data})
        assert out.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_encode_decode_plain_structures() -> None:
    obj = {"a": [1, 2.5, "x", None, True], "b": b"\x00\xff", "c": {"d": -3}}
    assert decode(encode(obj)) == obj
    assert decode(encode({1: "int key"})) == {1: "int key"}


@pytest.mark.parametrize("obj", [object(), 2**70, {"k": {1, 2}}])
def test_encode_errors(obj: Any) -> None:
    with pytest.raises(ProtocolError, match="cannot encode message") as err:
        encode(obj)
    assert err.value.code == "unencodable"


@pytest.mark.parametrize(
    "payload",
    [b"", b"\xc1", b"\x92\x01", b"\xd9\x05ab", msgpack.packb(1) + msgpack.packb(2)],
    ids=["empty", "reserved-byte", "truncated-array", "truncated-str", "extra-data"],
)
def test_undecodable_payloads(payload: bytes) -> None:
    with pytest.raises(
        ProtocolError, match=rf"undecodable payload \({len(payload)} bytes\)"
    ) as err:
        decode(payload)
    assert (err.value.code, err.value.field) == ("undecodable", None)


def test_oversize_payload_names_both_sizes() -> None:
    payload = encode({"blob": bytes(1000)})
    assert decode(payload, max_bytes=len(payload)) == {"blob": bytes(1000)}
    with pytest.raises(
        ProtocolError,
        match=rf"payload of {len(payload)} bytes exceeds the limit of {len(payload) - 1} bytes",
    ) as err:
        decode(payload, max_bytes=len(payload) - 1)
    assert (err.value.code, err.value.field) == ("oversize", None)
