"""Byte layout of archive segment files (see ``docs/archive.md``; all integers little-endian).

A segment file ``seg-NNNNNN.odca`` is a 16-byte header followed by back-to-back frames::

    header  = magic "ODCA" | u16 version (1) | u16 header size (16) | u32 segment number
              | u32 CRC-32 of the 12 bytes before it
    frame   = u32 body length | u32 CRC-32 of body | body
    body    = msgpack array of 3: [float64 t, str topic, bin payload]

CRC-32 is the IEEE 802.3 polynomial (``zlib.crc32``). ``t`` is mission time (POSIX seconds,
UTC) at reception; ``payload`` is the message exactly as received.
"""

from __future__ import annotations

import math
import re
import struct
import zlib
from pathlib import Path
from typing import Any

import msgpack

from flightsw.exceptions import ArchiveError

__all__ = [
    "FRAME_HEADER",
    "FRAME_HEADER_SIZE",
    "HEADER_SIZE",
    "INDEX_SUFFIX",
    "LOCK_NAME",
    "MAGIC",
    "MAX_BODY_BYTES",
    "MIN_BODY_BYTES",
    "SEGMENT_SUFFIX",
    "VERSION",
    "ArchiveCorruption",
    "HeaderError",
    "decode_body",
    "encode_frame",
    "encode_header",
    "index_path",
    "parse_header",
    "segment_name",
    "segment_number",
]

MAGIC = b"ODCA"
VERSION = 1
HEADER_SIZE = 16
_HEADER = struct.Struct("<4sHHI")  # followed by u32 CRC of these 12 bytes
_U32 = struct.Struct("<I")

FRAME_HEADER = struct.Struct("<II")  # body length, CRC-32 of body
FRAME_HEADER_SIZE = FRAME_HEADER.size
# fixarray(3) + float64 (9) + fixstr "" (1) + bin8 b"" (2)
MIN_BODY_BYTES = 13
# an MQTT payload is at most 256 MiB; leave room for the topic and msgpack overhead
MAX_BODY_BYTES = 256 * 1024 * 1024 + 70_000

SEGMENT_SUFFIX = ".odca"
LOCK_NAME = "LOCK"  # the writer holds an exclusive flock on it
INDEX_SUFFIX = ".odci"
_SEGMENT_RE = re.compile(r"^seg-(\d{6,})\.odca$")

_packb = msgpack.Packer(use_bin_type=True, autoreset=True).pack


class ArchiveCorruption(ArchiveError):
    """A segment holds a record whose framing or CRC is wrong (reported, never hidden)."""


class HeaderError(ArchiveError):
    """A segment header is missing, torn or not ours; ``torn`` when it is merely short."""

    def __init__(self, message: str, *, torn: bool) -> None:
        super().__init__(message)
        self.torn = torn


def segment_name(number: int) -> str:
    return f"seg-{number:06d}{SEGMENT_SUFFIX}"


def segment_number(path: Path) -> int | None:
    """The number in ``seg-NNNNNN.odca``, or ``None`` if ``path`` is not a segment."""
    m = _SEGMENT_RE.match(path.name)
    return int(m.group(1)) if m else None


def index_path(segment: Path) -> Path:
    return segment.with_suffix(INDEX_SUFFIX)


def encode_header(number: int) -> bytes:
    head = _HEADER.pack(MAGIC, VERSION, HEADER_SIZE, number)
    return head + _U32.pack(zlib.crc32(head))


def parse_header(data: bytes, *, where: str) -> int:
    """The segment number in a header; :class:`HeaderError` if it is short or invalid."""
    if len(data) < HEADER_SIZE:
        raise HeaderError(
            f"{where}: header torn ({len(data)} of {HEADER_SIZE} bytes)", torn=True
        )
    magic, version, size, number = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise HeaderError(f"{where}: not an archive segment (magic {magic!r})", torn=False)
    (crc,) = _U32.unpack_from(data, 12)
    if crc != zlib.crc32(data[:12]):
        raise HeaderError(f"{where}: header CRC mismatch", torn=False)
    if version != VERSION:
        raise ArchiveError(
            f"{where}: segment format version {version} is not supported (this reader: "
            f"{VERSION})"
        )
    if size != HEADER_SIZE:
        raise HeaderError(f"{where}: header size {size}, expected {HEADER_SIZE}", torn=False)
    return int(number)


def encode_frame(t: float, topic: str, payload: bytes) -> bytes:
    """One framed record (length, CRC, msgpack body)."""
    body: bytes = _packb((float(t), topic, payload))
    return FRAME_HEADER.pack(len(body), zlib.crc32(body)) + body


def decode_body(body: bytes | memoryview) -> tuple[float, str, bytes] | None:
    """Validated ``(t, topic, payload)`` of a body, or ``None`` if it is not a record."""
    try:
        obj: Any = msgpack.unpackb(body, raw=False)
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError,
            msgpack.StackError):
        return None
    if not isinstance(obj, list) or len(obj) != 3:
        return None
    t, topic, payload = obj
    if isinstance(t, bool) or not isinstance(t, float | int) or not math.isfinite(t):
        return None
    if not isinstance(topic, str) or not isinstance(payload, bytes):
        return None
    return float(t), topic, payload
