"""Segment header and record framing, checked against the layout in docs/archive.md."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import msgpack
import pytest

from flightsw.archive.format import (
    HEADER_SIZE,
    HeaderError,
    decode_body,
    encode_frame,
    encode_header,
    parse_header,
    segment_name,
    segment_number,
)
from flightsw.exceptions import ArchiveError


def test_header_layout_matches_the_documented_bytes() -> None:
    head = encode_header(42)
    assert len(head) == HEADER_SIZE
    magic, version, size, number, crc = struct.unpack("<4sHHII", head)
    assert (magic, version, size, number) == (b"ODCA", 1, 16, 42)
    assert crc == zlib.crc32(head[:12])
    assert parse_header(head, where="x") == 42


def test_short_header_is_torn_and_foreign_header_is_not() -> None:
    with pytest.raises(HeaderError, match="torn") as torn:
        parse_header(encode_header(1)[:7], where="seg")
    assert torn.value.torn
    with pytest.raises(HeaderError, match="magic") as foreign:
        parse_header(b"PK\x03\x04" + bytes(12), where="seg")
    assert not foreign.value.torn
    bad_crc = bytearray(encode_header(1))
    bad_crc[8] ^= 0xFF
    with pytest.raises(HeaderError, match="CRC"):
        parse_header(bytes(bad_crc), where="seg")


def test_newer_format_version_is_refused_clearly() -> None:
    head = struct.pack("<4sHHI", b"ODCA", 9, 16, 1)
    head += struct.pack("<I", zlib.crc32(head))
    with pytest.raises(ArchiveError, match="version 9 is not supported"):
        parse_header(head, where="seg-000001.odca")


def test_frame_is_length_crc_and_msgpack_triple() -> None:
    payload = bytes(range(256)) * 3
    frame = encode_frame(1_790_000_000.125, "odc/sat/sat-001/telemetry", payload)
    length, crc = struct.unpack_from("<II", frame)
    body = frame[8:]
    assert length == len(body)
    assert crc == zlib.crc32(body)
    # an independent encoder following the documented layout produces the same bytes
    expected = msgpack.packb([1_790_000_000.125, "odc/sat/sat-001/telemetry", payload],
                             use_bin_type=True)
    assert body == expected
    assert body[0] == 0x93
    assert body[1] == 0xCB
    assert decode_body(body) == (1_790_000_000.125, "odc/sat/sat-001/telemetry", payload)


@pytest.mark.parametrize(
    "obj",
    [
        [1.0, "topic"],
        [1.0, b"topic", b"payload"],
        [1.0, "topic", "payload-as-str"],
        ["1.0", "topic", b""],
        [float("nan"), "topic", b""],
        [True, "topic", b""],
        {"t": 1.0},
    ],
)
def test_decode_body_rejects_what_is_not_a_record(obj: object) -> None:
    assert decode_body(msgpack.packb(obj, use_bin_type=True)) is None


def test_decode_body_rejects_garbage_and_trailing_bytes() -> None:
    good = msgpack.packb([1.0, "a", b"b"], use_bin_type=True)
    assert decode_body(good + b"\x00") is None
    assert decode_body(b"\xc1\xc1\xc1") is None
    assert decode_body(msgpack.packb([5, "a", b"b"], use_bin_type=True)) == (5.0, "a", b"b")


def test_segment_names() -> None:
    name = segment_name(7)
    assert name == "seg-000007.odca"
    assert segment_number(Path("/x") / name) == 7
    assert segment_number(Path("seg-1234567.odca")) == 1234567
    assert segment_number(Path("seg-000007.odci")) is None
    assert segment_number(Path("notes.txt")) is None
