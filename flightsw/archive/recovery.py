"""What opening an archive found wrong and what was done about it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from flightsw.archive.format import ArchiveCorruption

__all__ = ["RecoveryKind", "RecoveryReport", "log_reports"]

RecoveryKind = Literal["torn_tail", "corrupt", "bad_header"]

_log = logging.getLogger("flightsw.archive")


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """One damaged region of one segment.

    ``kind`` is ``"torn_tail"`` (the end of a segment holds an incomplete or invalid record
    and no valid record after it: what a crash mid-write leaves), ``"corrupt"`` (bytes in
    the middle fail their CRC or framing while valid records follow: skipped, reading
    resumes at the next valid record) or ``"bad_header"`` (the segment header is torn or
    not an archive header: the segment is skipped). ``repaired`` is true when a writer cut
    the bytes from the file; readers never modify segments.
    """

    segment: Path
    offset: int
    bytes_cut: int
    reason: str
    kind: RecoveryKind
    repaired: bool = False

    def __str__(self) -> str:
        action = "cut from the file" if self.repaired else "skipped"
        return (
            f"{self.segment.name} @ {self.offset}: {self.kind.replace('_', ' ')}, "
            f"{self.bytes_cut} bytes {action} ({self.reason})"
        )

    def as_error(self) -> ArchiveCorruption:
        """The same information as an exception (for strict readers and callers)."""
        return ArchiveCorruption(str(self))


def log_reports(reports: tuple[RecoveryReport, ...] | list[RecoveryReport]) -> None:
    for report in reports:
        _log.warning("archive recovery: %s", report)
