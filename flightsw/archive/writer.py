"""Append-only, buffered archive writer with size-based segment rotation."""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import zlib
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import msgpack

from flightsw.archive.format import (
    FRAME_HEADER,
    FRAME_HEADER_SIZE,
    HEADER_SIZE,
    LOCK_NAME,
    MAX_BODY_BYTES,
    HeaderError,
    encode_header,
    segment_name,
)
from flightsw.archive.index import (
    DEFAULT_INDEX_EVERY,
    BlockBuilder,
    SegmentIndex,
    open_segment,
    save_index,
    segment_paths,
)
from flightsw.archive.recovery import RecoveryReport, log_reports
from flightsw.exceptions import ArchiveError

__all__ = ["DEFAULT_SEGMENT_BYTES", "ArchiveWriter"]

DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
MIN_SEGMENT_BYTES = 4096
MAX_SEGMENT_BYTES = 1024 * 1024 * 1024


def _as_time(t: Any) -> float:
    if isinstance(t, bool | str | bytes) or not hasattr(t, "__float__"):
        raise ArchiveError(f"t: expected a number (mission seconds), got {t!r}")
    try:
        value = float(t)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ArchiveError(f"t: expected a number (mission seconds), got {t!r}") from exc
    if not math.isfinite(value):
        raise ArchiveError(f"t: must be finite, got {value!r}")
    return value


class ArchiveWriter:
    """Appends ``(t, topic, payload)`` records to the archive in ``directory``.

    Records are framed and kept in a memory buffer of ``buffer_bytes``; :meth:`flush`
    hands them to the OS (so they survive a killed process), :meth:`sync` also fsyncs
    (so they survive a power loss). A segment is closed when it reaches
    ``segment_bytes`` and the next one is started. Only one writer may hold a directory
    (an advisory ``flock`` on ``LOCK``). Opening an existing archive recovers it: a torn
    tail left by a crash is cut from the last segment before appending, and what was found
    is in :attr:`recovery` (and logged).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        index_every: int = DEFAULT_INDEX_EVERY,
        buffer_bytes: int = 1024 * 1024,
        fsync: bool = False,
    ) -> None:
        if not MIN_SEGMENT_BYTES <= segment_bytes <= MAX_SEGMENT_BYTES:
            raise ArchiveError(
                f"segment_bytes: must be between {MIN_SEGMENT_BYTES} and "
                f"{MAX_SEGMENT_BYTES}, got {segment_bytes}"
            )
        if index_every < 1:
            raise ArchiveError(f"index_every: must be >= 1, got {index_every}")
        if buffer_bytes < 0:
            raise ArchiveError(f"buffer_bytes: must be >= 0, got {buffer_bytes}")
        self.directory = Path(directory)
        self._segment_bytes = segment_bytes
        self._every = index_every
        self._buffer_bytes = buffer_bytes
        self._fsync = fsync
        self._pack = msgpack.Packer(use_bin_type=True, autoreset=True).pack
        self._buf: list[bytes] = []
        self._buffered = 0
        self._fd = -1
        self._lock_fd = -1
        self._failed: str | None = None
        self._reports: list[RecoveryReport] = []
        self.records_written = 0
        if self.directory.exists() and not self.directory.is_dir():
            raise ArchiveError(f"archive {self.directory}: not a directory")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ArchiveError(f"archive {self.directory}: cannot create: {exc}") from exc
        self._lock()
        try:
            self._open_last()
        except BaseException:
            self._release()
            raise
        log_reports(self._reports)

    # --- opening ------------------------------------------------------------------------

    def _lock(self) -> None:
        path = self.directory / LOCK_NAME
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ArchiveError(f"archive {self.directory}: cannot open lock: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise ArchiveError(
                f"archive {self.directory}: already open by another writer"
            ) from exc
        self._lock_fd = fd

    def _open_last(self) -> None:
        segments = list(segment_paths(self.directory))
        if not segments:
            self._start_segment(1)
            return
        number, path = segments[-1]
        try:
            state = open_segment(path, every=self._every, persist=False)
        except HeaderError as exc:
            size = path.stat().st_size
            if exc.torn:  # killed right after creating the segment
                self._reports.append(RecoveryReport(
                    path, 0, size, str(exc), "torn_tail", repaired=True))
                self._start_segment(number, path)
            else:
                self._reports.append(RecoveryReport(
                    path, 0, size, f"{exc}; left as is, writing to the next segment",
                    "bad_header"))
                self._start_segment(number + 1)
            return
        index = state.index
        self._reports.extend(
            RecoveryReport(path, g.offset, g.length, g.reason, "corrupt") for g in index.gaps
        )
        if state.tail is not None:
            self._reports.append(RecoveryReport(
                path, state.tail.offset, state.tail.length, state.tail.reason, "torn_tail",
                repaired=True))
        try:
            fd = os.open(path, os.O_WRONLY)
            try:
                if state.tail is not None:
                    os.ftruncate(fd, index.covered)
                    os.fsync(fd)
            except OSError:
                os.close(fd)
                raise
        except OSError as exc:
            raise ArchiveError(f"{path}: cannot open for appending: {exc}") from exc
        self._fd = fd
        self._path = path
        self._index = index
        self._pos = index.covered
        self._builder = BlockBuilder(index.blocks, self._every)
        self._saved_blocks = -1
        os.lseek(fd, self._pos, os.SEEK_SET)
        self._save_index()
        if self._pos >= self._segment_bytes:
            self._rotate()

    def _start_segment(self, number: int, path: Path | None = None) -> None:
        path = path or self.directory / segment_name(number)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as exc:
            raise ArchiveError(f"{path}: cannot create segment: {exc}") from exc
        self._fd = fd
        self._path = path
        self._index = SegmentIndex(number, HEADER_SIZE)
        self._pos = HEADER_SIZE
        self._builder = BlockBuilder(self._index.blocks, self._every)
        self._saved_blocks = -1
        self._write(encode_header(number))

    # --- appending ----------------------------------------------------------------------

    def append(self, t: float, topic: str, payload: bytes | bytearray | memoryview) -> None:
        """Add one record (``t`` mission seconds at reception, the raw MQTT payload)."""
        if self._fd < 0:
            raise ArchiveError(self._failed or "archive writer is closed")
        if t.__class__ is not float or t - t != 0.0:
            t = _as_time(t)
        if topic.__class__ is not str:
            raise ArchiveError(f"topic: expected str, got {type(topic).__name__}")
        if payload.__class__ is not bytes:
            if not isinstance(payload, bytearray | memoryview):
                raise ArchiveError(f"payload: expected bytes, got {type(payload).__name__}")
            payload = bytes(payload)
        body = self._pack((t, topic, payload))
        size = len(body)
        if size > MAX_BODY_BYTES:
            raise ArchiveError(f"payload: {len(payload)} bytes exceeds the record limit")
        pos = self._pos
        end = pos + FRAME_HEADER_SIZE + size
        self._buf.append(FRAME_HEADER.pack(size, zlib.crc32(body)))
        self._buf.append(body)
        self._buffered += end - pos
        self._pos = end
        self._builder.add(pos, end, t)
        topics = self._index.topics
        topics[topic] = topics.get(topic, 0) + 1
        self.records_written += 1
        if self._buffered >= self._buffer_bytes:
            self._write_buffer()
        if end >= self._segment_bytes:
            self._rotate()

    def append_many(self, records: Iterable[tuple[float, str, bytes]]) -> int:
        """Append every ``(t, topic, payload)``; returns how many."""
        n = 0
        append = self.append
        for t, topic, payload in records:
            append(t, topic, payload)
            n += 1
        return n

    # --- writing ------------------------------------------------------------------------

    def _write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        try:
            while view:
                done = os.write(self._fd, view)
                view = view[done:]
        except OSError as exc:
            self._failed = f"{self._path}: write failed ({exc}); reopen the archive to recover"
            os.close(self._fd)
            self._fd = -1
            raise ArchiveError(self._failed) from exc

    def _write_buffer(self) -> None:
        if self._buf:
            data = b"".join(self._buf)
            self._buf.clear()
            self._buffered = 0
            self._write(data)

    def _snapshot(self) -> SegmentIndex:
        blocks = list(self._index.blocks)
        current = self._builder.current()
        if current is not None:
            blocks.append(current)
        return SegmentIndex(self._index.number, self._pos, blocks, list(self._index.gaps),
                            dict(self._index.topics))

    def _save_index(self) -> None:
        try:
            save_index(self._path, self._snapshot())
        except OSError as exc:
            raise ArchiveError(f"{self._path}: cannot write index: {exc}") from exc
        self._saved_blocks = len(self._index.blocks)

    def _rotate(self) -> None:
        self._write_buffer()
        self._builder.close()
        if self._fsync:
            os.fsync(self._fd)
        self._save_index()
        os.close(self._fd)
        self._fd = -1
        self._start_segment(self._index.number + 1)

    def flush(self) -> None:
        """Hand buffered records to the OS; refresh the index if a block was completed."""
        if self._fd < 0:
            if self._failed:
                raise ArchiveError(self._failed)
            return
        self._write_buffer()
        if self._fsync:
            os.fsync(self._fd)
        if len(self._index.blocks) != self._saved_blocks:
            self._save_index()

    def sync(self) -> None:
        """:meth:`flush`, fsync the segment and write the index."""
        self.flush()
        if self._fd >= 0:
            os.fsync(self._fd)
            self._save_index()

    def close(self) -> None:
        """Flush, write the index and release the archive (idempotent)."""
        try:
            if self._fd >= 0:
                self._write_buffer()
                if self._fsync:
                    os.fsync(self._fd)
                self._save_index()
        finally:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            self._release()

    def _release(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    # --- state --------------------------------------------------------------------------

    @property
    def recovery(self) -> tuple[RecoveryReport, ...]:
        """What opening found damaged (empty if the archive was clean)."""
        return tuple(self._reports)

    @property
    def segment(self) -> Path:
        """The segment being written."""
        return self._path

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # like a buffered file: hand what is buffered to the OS, give back descriptors
        if getattr(self, "_fd", -1) >= 0:
            with contextlib.suppress(ArchiveError):
                self._write_buffer()
            if self._fd >= 0:
                os.close(self._fd)
        if getattr(self, "_lock_fd", -1) >= 0:
            os.close(self._lock_fd)
