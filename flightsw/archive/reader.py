"""Reading an archive: time-range and topic queries through the per-segment index."""

from __future__ import annotations

import fcntl
import itertools
import logging
import math
import os
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import msgpack

from flightsw.archive.format import (
    FRAME_HEADER,
    FRAME_HEADER_SIZE,
    LOCK_NAME,
    ArchiveCorruption,
    HeaderError,
    decode_body,
)
from flightsw.archive.index import (
    DEFAULT_INDEX_EVERY,
    SegmentState,
    frame_at,
    open_segment,
    resync,
    segment_paths,
)
from flightsw.archive.record import Record, node_of
from flightsw.archive.recovery import RecoveryKind, RecoveryReport, log_reports
from flightsw.bus.base import topic_matches
from flightsw.exceptions import ArchiveError

__all__ = ["ArchiveReader", "TopicFilter", "writer_active"]

_log = logging.getLogger("flightsw.archive")

CHUNK_BYTES = 8 * 1024 * 1024

TopicFilter = Callable[[str], bool]

# Record(*x) runs a Python-level __new__; tuple.__new__ builds the same tuple in C. Only
# used on bodies whose CRC matched, i.e. written by ArchiveWriter or validated when indexed.
_new_record: Callable[[type[Record], Any], Record] = tuple.__new__


@dataclass(frozen=True, slots=True)
class _Chunk:
    offset: int
    nbytes: int
    count: int
    check_t: bool


def writer_active(directory: Path) -> bool:
    """Whether an :class:`ArchiveWriter` holds ``directory`` right now (its ``LOCK``)."""
    try:
        fd = os.open(directory / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing also releases the shared lock if we got it
    return False


def _bounds(start: float | None, end: float | None) -> tuple[float, float]:
    lo = -math.inf if start is None else float(start)
    hi = math.inf if end is None else float(end)
    if math.isnan(lo) or math.isnan(hi):
        raise ArchiveError("start/end: NaN is not a mission time")
    if lo >= hi:
        raise ArchiveError(f"start {start!r} must be before end {end!r}")
    return lo, hi


def _matcher(topics: Iterable[str] | None, nodes: Iterable[str] | None) -> TopicFilter | None:
    patterns = None if topics is None else list(topics)
    wanted = None if nodes is None else set(nodes)
    if patterns is None and wanted is None:
        return None
    if isinstance(topics, str) or isinstance(nodes, str):
        raise ArchiveError("topics/nodes: pass a list of strings, not one string")

    def match(topic: str) -> bool:
        if wanted is not None and node_of(topic) not in wanted:
            return False
        return patterns is None or any(topic_matches(p, topic) for p in patterns)

    return match


class ArchiveReader:
    """A read-only view of the archive in ``directory`` as it was when opened.

    Opening loads each segment's index (rebuilding or extending it from the segment when it
    is missing or stale, and saving it unless ``write_index`` is false) and checks what the
    index does not cover. Damage is reported in :attr:`recovery` and logged: a torn tail is
    skipped; a corrupt region in the middle of a segment is skipped and reading resumes at
    the next valid record (*resync*). With ``strict=True`` any damage other than a torn
    tail of the newest segment raises :class:`ArchiveCorruption` instead. While a writer
    holds the archive (:attr:`live`), an incomplete record at the end of the newest segment
    is the one being written: it is left out without a report.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        strict: bool = False,
        write_index: bool = True,
    ) -> None:
        self.directory = Path(directory)
        if not self.directory.exists():
            raise ArchiveError(f"archive {self.directory}: no such directory")
        if not self.directory.is_dir():
            raise ArchiveError(f"archive {self.directory}: not a directory")
        self._strict = strict
        self.live = writer_active(self.directory)
        self._reports: list[RecoveryReport] = []
        self._segments: list[SegmentState] = []
        try:
            paths = list(segment_paths(self.directory))
        except OSError as exc:
            raise ArchiveError(f"archive {self.directory}: cannot list: {exc}") from exc
        for i, (_, path) in enumerate(paths):
            last = i == len(paths) - 1
            try:
                state = open_segment(path, every=DEFAULT_INDEX_EVERY, persist=write_index)
            except HeaderError as exc:
                size = path.stat().st_size
                kind: RecoveryKind = "torn_tail" if exc.torn and last else "bad_header"
                self._report(RecoveryReport(path, 0, size, str(exc), kind), fatal=not last)
                continue
            for gap in state.index.gaps:
                self._report(RecoveryReport(path, gap.offset, gap.length, gap.reason,
                                            "corrupt"), fatal=True)
            if state.tail is not None:
                tail = state.tail
                if last and self.live:
                    # most likely the record a live writer is writing right now
                    _log.debug("%s @ %d: %d bytes of an incomplete record (writer active)",
                               path.name, tail.offset, tail.length)
                else:
                    self._report(RecoveryReport(path, tail.offset, tail.length, tail.reason,
                                                "torn_tail"), fatal=not last)
            self._segments.append(state)
        log_reports(self._reports)

    def _report(self, report: RecoveryReport, *, fatal: bool) -> None:
        if self._strict and fatal:
            raise report.as_error()
        self._reports.append(report)

    # --- queries -----------------------------------------------------------------------

    def records(
        self,
        start: float | None = None,
        end: float | None = None,
        *,
        topics: Iterable[str] | None = None,
        nodes: Iterable[str] | None = None,
    ) -> Iterator[Record]:
        """Records with ``start <= t < end`` in file (reception) order.

        ``topics`` are MQTT topic filters (``odc/sat/+/telemetry``); ``nodes`` keeps only
        ``odc/sat/{node}/...`` topics of those nodes. Both filters must pass.
        """
        lo, hi = _bounds(start, end)
        match = _matcher(topics, nodes)
        return self._iter(lo, hi, match)

    def count(
        self,
        start: float | None = None,
        end: float | None = None,
        *,
        topics: Iterable[str] | None = None,
        nodes: Iterable[str] | None = None,
    ) -> int:
        """How many records :meth:`records` would yield (from the index when it can)."""
        lo, hi = _bounds(start, end)
        match = _matcher(topics, nodes)
        total = 0
        for seg in self._segments:
            wanted, seg_match = self._segment_filter(seg, match)
            if not wanted:
                continue
            if lo == -math.inf and hi == math.inf:
                total += sum(n for topic, n in seg.index.topics.items()
                             if seg_match is None or seg_match(topic))
                continue
            for chunk in self._plan(seg, lo, hi):
                if not chunk.check_t and seg_match is None:
                    total += chunk.count
                else:
                    total += sum(1 for _ in itertools.chain.from_iterable(
                        self._read_chunks(seg, [chunk], lo, hi, seg_match)))
        return total

    def topics(self) -> dict[str, int]:
        """Every topic in the archive with its record count."""
        out: dict[str, int] = {}
        for seg in self._segments:
            for topic, n in seg.index.topics.items():
                out[topic] = out.get(topic, 0) + n
        return dict(sorted(out.items()))

    def nodes(self) -> list[str]:
        """Node ids seen under ``odc/sat/{node}/``, sorted."""
        return sorted({n for t in self.topics() if (n := node_of(t)) is not None})

    def time_range(self) -> tuple[float, float] | None:
        """``(min t, max t)`` over all records, or ``None`` if the archive is empty."""
        ranges = [r for seg in self._segments if (r := seg.index.time_range()) is not None]
        if not ranges:
            return None
        return min(r[0] for r in ranges), max(r[1] for r in ranges)

    @property
    def recovery(self) -> tuple[RecoveryReport, ...]:
        """Damage found while opening or reading (empty if the archive is clean)."""
        return tuple(self._reports)

    @property
    def segments(self) -> list[Path]:
        return [s.path for s in self._segments]

    def __len__(self) -> int:
        return sum(s.index.count for s in self._segments)

    # --- internals ---------------------------------------------------------------------

    @staticmethod
    def _segment_filter(
        seg: SegmentState, match: TopicFilter | None
    ) -> tuple[bool, TopicFilter | None]:
        """(any topic of the segment matches, the filter or ``None`` when all match)."""
        if match is None:
            return True, None
        hits = [match(t) for t in seg.index.topics]
        if not any(hits):
            return False, None
        if all(hits):
            return True, None
        return True, match

    @staticmethod
    def _plan(seg: SegmentState, lo: float, hi: float) -> list[_Chunk]:
        chunks: list[_Chunk] = []
        cur: _Chunk | None = None
        for b in seg.index.blocks:
            if b.t_max < lo or b.t_min >= hi:
                cur = None
                continue
            check = not (b.t_min >= lo and b.t_max < hi)
            if (cur is not None and cur.offset + cur.nbytes == b.offset
                    and cur.check_t == check and cur.nbytes + b.nbytes <= CHUNK_BYTES):
                cur = _Chunk(cur.offset, cur.nbytes + b.nbytes, cur.count + b.count, check)
                chunks[-1] = cur
            else:
                cur = _Chunk(b.offset, b.nbytes, b.count, check)
                chunks.append(cur)
        return chunks

    def _iter(self, lo: float, hi: float, match: TopicFilter | None) -> Iterator[Record]:
        # chain.from_iterable runs in C: one Python generator frame per record, not three
        return itertools.chain.from_iterable(self._chunk_parsers(lo, hi, match))

    def _chunk_parsers(
        self, lo: float, hi: float, match: TopicFilter | None
    ) -> Iterator[Iterator[Record]]:
        for seg in self._segments:
            wanted, seg_match = self._segment_filter(seg, match)
            if not wanted:
                continue
            chunks = self._plan(seg, lo, hi)
            if chunks:
                yield from self._read_chunks(seg, chunks, lo, hi, seg_match)

    def _read_chunks(
        self, seg: SegmentState, chunks: list[_Chunk], lo: float, hi: float,
        match: TopicFilter | None,
    ) -> Iterator[Iterator[Record]]:
        try:
            f = seg.path.open("rb")
        except OSError as exc:
            raise ArchiveError(f"{seg.path}: cannot open: {exc}") from exc
        with f:
            for chunk in chunks:
                f.seek(chunk.offset)
                buf = f.read(chunk.nbytes)
                if len(buf) != chunk.nbytes:
                    raise ArchiveCorruption(
                        f"{seg.path.name}: shorter than its index ({chunk.offset} + "
                        f"{chunk.nbytes} bytes); was it truncated while open?"
                    )
                if not chunk.check_t and match is None:
                    yield self._parse_all(seg.path, chunk.offset, buf)
                else:
                    yield self._parse_filtered(seg.path, chunk.offset, buf,
                                               chunk.check_t, lo, hi, match)

    def _parse_all(self, path: Path, base: int, buf: bytes) -> Iterator[Record]:
        unpack_from = FRAME_HEADER.unpack_from
        crc32 = zlib.crc32
        unpackb = msgpack.unpackb
        new = _new_record
        n = len(buf)
        pos = 0
        while pos < n:
            try:
                length, crc = unpack_from(buf, pos)
                s = pos + FRAME_HEADER_SIZE
                e = s + length
                body = buf[s:e]
                if e > n or crc32(body) != crc:
                    raise ValueError("frame")
                rec = new(Record, unpackb(body))
            except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError,
                    msgpack.StackError):
                yield from self._parse_slow(path, base, buf, pos, False, -math.inf,
                                            math.inf, None)
                return
            yield rec
            pos = e

    def _parse_filtered(
        self, path: Path, base: int, buf: bytes, check_t: bool, lo: float, hi: float,
        match: TopicFilter | None,
    ) -> Iterator[Record]:
        unpack_from = FRAME_HEADER.unpack_from
        crc32 = zlib.crc32
        unpackb = msgpack.unpackb
        new = _new_record
        seen: dict[str, bool] = {}
        n = len(buf)
        pos = 0
        while pos < n:
            try:
                length, crc = unpack_from(buf, pos)
                s = pos + FRAME_HEADER_SIZE
                e = s + length
                body = buf[s:e]
                if e > n or crc32(body) != crc:
                    raise ValueError("frame")
                rec = new(Record, unpackb(body))
            except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError,
                    msgpack.StackError):
                yield from self._parse_slow(path, base, buf, pos, check_t, lo, hi, match)
                return
            pos = e
            if check_t and not lo <= rec[0] < hi:
                continue
            if match is not None:
                ok = seen.get(rec[1])
                if ok is None:
                    ok = seen[rec[1]] = match(rec[1])
                if not ok:
                    continue
            yield rec

    def _parse_slow(
        self, path: Path, base: int, buf: bytes, pos: int, check_t: bool, lo: float,
        hi: float, match: TopicFilter | None,
    ) -> Iterator[Record]:
        """Validate frame by frame from ``pos``, reporting and skipping damage."""
        mv = memoryview(buf)
        n = len(buf)
        while pos < n:
            frame = frame_at(buf, mv, pos, n)
            if isinstance(frame, str):
                nxt = resync(buf, mv, pos, n)
                stop = n if nxt is None else nxt
                self._report(RecoveryReport(
                    path, base + pos, stop - pos, f"{frame} (changed since indexed)",
                    "corrupt"), fatal=True)
                log_reports(self._reports[-1:])
                pos = stop
                continue
            end = frame[0]
            rec = decode_body(mv[pos + FRAME_HEADER_SIZE:end])
            pos = end
            if rec is None:  # frame_at validated it; cannot happen
                continue
            if check_t and not lo <= rec[0] < hi:
                continue
            if match is not None and not match(rec[1]):
                continue
            yield Record(*rec)

    # --- context manager (holds no resources between calls) ----------------------------

    def close(self) -> None:
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
