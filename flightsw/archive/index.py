"""Per-segment index by mission time, its sidecar file, and the recovering segment scanner.

A segment's records are grouped in *blocks* of consecutive frames (``index_every`` records
or 1 MiB, whichever comes first). Each block keeps its byte range, record count and the
minimum and maximum ``t`` of its records, so a time-range query is correct even though
records arrive only nearly in ``t`` order: a block is read when ``[t_min, t_max]``
overlaps the query. The sidecar ``seg-NNNNNN.odci`` (layout in ``docs/archive.md``) also
keeps the corrupt regions found in the middle of the segment and the topic table with
counts. A missing, damaged or stale sidecar is rebuilt by scanning the segment; a sidecar
that covers only the start of a segment that grew since is extended by scanning the rest.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from flightsw.archive.format import (
    FRAME_HEADER,
    FRAME_HEADER_SIZE,
    HEADER_SIZE,
    MAX_BODY_BYTES,
    MIN_BODY_BYTES,
    decode_body,
    index_path,
    parse_header,
    segment_number,
)
from flightsw.exceptions import ArchiveError

__all__ = [
    "BLOCK_MAX_BYTES",
    "DEFAULT_INDEX_EVERY",
    "Block",
    "BlockBuilder",
    "Gap",
    "SegmentIndex",
    "SegmentState",
    "frame_at",
    "load_index",
    "open_segment",
    "resync",
    "save_index",
    "scan_frames",
    "segment_paths",
]

_log = logging.getLogger("flightsw.archive")

DEFAULT_INDEX_EVERY = 1024
BLOCK_MAX_BYTES = 1024 * 1024

_IMAGIC = b"ODCI"
_IVERSION = 1
_IHEAD = struct.Struct("<4sHHIQIII")  # magic, version, 0, segment, covered, blocks, gaps, topics
_IBLOCK = struct.Struct("<QQIIdd")  # offset, nbytes, count, 0, t_min, t_max
_IGAP = struct.Struct("<QQI")  # offset, length, reason length (reason utf-8 follows)
_ITOPIC = struct.Struct("<QH")  # count, topic length (topic utf-8 follows)
_U32 = struct.Struct("<I")


@dataclass(slots=True)
class Block:
    """Consecutive frames ``[offset, offset + nbytes)`` holding ``count`` records."""

    offset: int
    nbytes: int
    count: int
    t_min: float
    t_max: float

    @property
    def end(self) -> int:
        return self.offset + self.nbytes


@dataclass(frozen=True, slots=True)
class Gap:
    """Bytes ``[offset, offset + length)`` that are not a valid record."""

    offset: int
    length: int
    reason: str


@dataclass(slots=True)
class SegmentIndex:
    """What a segment holds up to byte ``covered`` (the end of its last valid record)."""

    number: int
    covered: int
    blocks: list[Block] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    topics: dict[str, int] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(b.count for b in self.blocks)

    def time_range(self) -> tuple[float, float] | None:
        if not self.blocks:
            return None
        return min(b.t_min for b in self.blocks), max(b.t_max for b in self.blocks)


class BlockBuilder:
    """Groups frames into blocks as they are written or scanned."""

    __slots__ = ("blocks", "count", "end", "every", "max_bytes", "offset", "t_max", "t_min")

    def __init__(self, blocks: list[Block], every: int = DEFAULT_INDEX_EVERY,
                 max_bytes: int = BLOCK_MAX_BYTES) -> None:
        self.blocks = blocks
        self.every = every
        self.max_bytes = max_bytes
        self.count = 0
        self.offset = 0
        self.end = 0
        self.t_min = 0.0
        self.t_max = 0.0

    def add(self, offset: int, end: int, t: float) -> None:
        if self.count and offset != self.end:
            self.close()
        if not self.count:
            self.offset = offset
            self.t_min = self.t_max = t
        elif t < self.t_min:
            self.t_min = t
        elif t > self.t_max:
            self.t_max = t
        self.count += 1
        self.end = end
        if self.count >= self.every or end - self.offset >= self.max_bytes:
            self.close()

    def current(self) -> Block | None:
        """The open block, if it holds records (not yet in ``blocks``)."""
        if not self.count:
            return None
        return Block(self.offset, self.end - self.offset, self.count, self.t_min, self.t_max)

    def close(self) -> None:
        block = self.current()
        if block is not None:
            self.blocks.append(block)
        self.count = 0


# --- scanning --------------------------------------------------------------------------


def frame_at(buf: bytes, mv: memoryview, pos: int, n: int) -> tuple[int, float, str] | str:
    """``(end, t, topic)`` of a valid frame at ``pos``, else why it is not one."""
    if n - pos < FRAME_HEADER_SIZE:
        return f"frame header torn ({n - pos} of {FRAME_HEADER_SIZE} bytes)"
    length, crc = FRAME_HEADER.unpack_from(buf, pos)
    if length < MIN_BODY_BYTES or length > MAX_BODY_BYTES:
        return f"implausible record length {length}"
    end = pos + FRAME_HEADER_SIZE + length
    if end > n:
        return (f"record truncated: {length}-byte body, only "
                f"{n - pos - FRAME_HEADER_SIZE} bytes present")
    body = mv[pos + FRAME_HEADER_SIZE:end]
    if zlib.crc32(body) != crc:
        return "CRC mismatch"
    rec = decode_body(body)
    if rec is None:
        return "body is not a msgpack [t, topic, payload] record"
    return end, rec[0], rec[1]


def resync(buf: bytes, mv: memoryview, pos: int, n: int) -> int | None:
    """Offset of the next valid frame after ``pos`` (bodies start with 0x93), or None."""
    q = pos + 1
    while True:
        i = buf.find(b"\x93", q + FRAME_HEADER_SIZE)
        if i < 0:
            return None
        cand = i - FRAME_HEADER_SIZE
        if not isinstance(frame_at(buf, mv, cand, n), str):
            return cand
        q = cand + 1


def scan_frames(
    buf: bytes, base: int, builder: BlockBuilder, topics: dict[str, int], gaps: list[Gap]
) -> tuple[int, Gap | None]:
    """Index every valid frame in ``buf`` (file bytes from offset ``base`` to EOF).

    Corrupt regions followed by a valid frame are appended to ``gaps``; returns the file
    offset after the last valid frame and the torn tail (bytes after it), if any.
    """
    mv = memoryview(buf)
    n = len(buf)
    pos = 0
    last_end = 0
    with mv:
        while pos < n:
            frame = frame_at(buf, mv, pos, n)
            if isinstance(frame, str):
                nxt = resync(buf, mv, pos, n)
                if nxt is None:
                    return base + last_end, Gap(base + pos, n - pos, frame)
                gaps.append(Gap(base + pos, nxt - pos, frame))
                pos = nxt
                continue
            end, t, topic = frame
            builder.add(base + pos, base + end, t)
            topics[topic] = topics.get(topic, 0) + 1
            pos = last_end = end
    return base + last_end, None


# --- sidecar file ----------------------------------------------------------------------


def encode_index(index: SegmentIndex) -> bytes:
    parts = [
        _IHEAD.pack(_IMAGIC, _IVERSION, 0, index.number, index.covered, len(index.blocks),
                    len(index.gaps), len(index.topics))
    ]
    parts.extend(
        _IBLOCK.pack(b.offset, b.nbytes, b.count, 0, b.t_min, b.t_max) for b in index.blocks
    )
    for g in index.gaps:
        reason = g.reason.encode()
        parts.append(_IGAP.pack(g.offset, g.length, len(reason)) + reason)
    for topic, count in index.topics.items():
        raw = topic.encode()
        parts.append(_ITOPIC.pack(count, len(raw)) + raw)
    data = b"".join(parts)
    return data + _U32.pack(zlib.crc32(data))


def decode_index(data: bytes) -> SegmentIndex:
    """Parse a sidecar; ``ValueError`` (with the reason) if it is damaged."""
    if len(data) < _IHEAD.size + 4:
        raise ValueError("too short")
    if zlib.crc32(data[:-4]) != _U32.unpack_from(data, len(data) - 4)[0]:
        raise ValueError("CRC mismatch")
    magic, version, _, number, covered, nb, ng, nt = _IHEAD.unpack_from(data)
    if magic != _IMAGIC or version != _IVERSION:
        raise ValueError(f"magic {magic!r} version {version}")
    pos = _IHEAD.size
    blocks = [Block(o, s, c, lo, hi) for o, s, c, _, lo, hi in
              _IBLOCK.iter_unpack(data[pos:pos + nb * _IBLOCK.size])]
    pos += nb * _IBLOCK.size
    gaps = []
    for _ in range(ng):
        off, length, rlen = _IGAP.unpack_from(data, pos)
        pos += _IGAP.size
        gaps.append(Gap(off, length, data[pos:pos + rlen].decode()))
        pos += rlen
    topics = {}
    for _ in range(nt):
        count, tlen = _ITOPIC.unpack_from(data, pos)
        pos += _ITOPIC.size
        topics[data[pos:pos + tlen].decode()] = count
        pos += tlen
    if pos != len(data) - 4:
        raise ValueError("length does not match its tables")
    return SegmentIndex(number, covered, blocks, gaps, topics)


def save_index(segment: Path, index: SegmentIndex) -> None:
    """Write the sidecar atomically (temporary file + rename)."""
    target = index_path(segment)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_bytes(encode_index(index))
    os.replace(tmp, target)


def load_index(segment: Path, number: int, size: int) -> SegmentIndex | None:
    """The sidecar of ``segment`` if present and consistent with a file of ``size`` bytes."""
    path = index_path(segment)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        _log.info("%s: unreadable (%s); rebuilding", path.name, exc)
        return None
    try:
        index = decode_index(data)
    except (ValueError, UnicodeDecodeError, struct.error) as exc:
        _log.info("%s: damaged index (%s); rebuilding", path.name, exc)
        return None
    problem = None
    if index.number != number:
        problem = f"indexes segment {index.number}"
    elif not HEADER_SIZE <= index.covered <= size:
        problem = f"covers {index.covered} bytes of a {size}-byte segment"
    elif index.blocks and index.blocks[-1].end != index.covered:
        problem = "last block does not end where the index ends"
    elif not index.blocks and index.covered != HEADER_SIZE:
        problem = "no blocks but covers records"
    if problem is not None:
        _log.info("%s: stale index (%s); rebuilding", path.name, problem)
        return None
    return index


# --- opening a segment -----------------------------------------------------------------


@dataclass(slots=True)
class SegmentState:
    """A segment as found on open: its index (up to the last valid record) and torn tail."""

    path: Path
    size: int
    index: SegmentIndex
    tail: Gap | None


def open_segment(
    path: Path, *, every: int = DEFAULT_INDEX_EVERY, persist: bool = True
) -> SegmentState:
    """Load or rebuild the index of ``path``; raises :class:`HeaderError` on a bad header.

    Only the part of the segment the sidecar does not cover is scanned. A rebuilt or
    extended index is saved (``persist``) unless the directory is read-only. Torn tails are
    never saved in the sidecar: a live writer may still complete them.
    """
    try:
        with path.open("rb") as f:
            head = f.read(HEADER_SIZE)
            number = parse_header(head, where=path.name)
            size = os.fstat(f.fileno()).st_size
            index = load_index(path, number, size)
            if index is not None and index.covered == size:
                return SegmentState(path, size, index, None)
            if index is None:
                index = SegmentIndex(number, HEADER_SIZE)
            f.seek(index.covered)
            rest = f.read(size - index.covered)
    except OSError as exc:
        raise ArchiveError(f"{path}: cannot read segment: {exc}") from exc
    size = index.covered + len(rest)
    builder = BlockBuilder(index.blocks, every)
    covered, tail = scan_frames(rest, index.covered, builder, index.topics, index.gaps)
    builder.close()
    changed = covered != index.covered
    index.covered = covered
    if persist and changed:
        try:
            save_index(path, index)
        except OSError as exc:
            _log.debug("%s: index not saved (%s)", path.name, exc)
    return SegmentState(path, size, index, tail)


def segment_paths(directory: Path) -> Iterable[tuple[int, Path]]:
    """``(number, path)`` of every segment file in ``directory``, in number order."""
    found = []
    for p in directory.iterdir():
        num = segment_number(p)
        if num is not None and p.is_file():
            found.append((num, p))
    return sorted(found)
