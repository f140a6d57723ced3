"""The simulation's telemetry archive, in the format the ground station archives in.

Records are the same protocol messages the emulated nodes publish (``Telemetry``,
``JobResult``, ``Status``, ``JobEvent``, msgpack via :func:`flightsw.protocol.dump`) on the
same topics, appended with :class:`flightsw.archive.ArchiveWriter` under
``DIR/archive/telemetry``, so ``groundstation replay`` and ``groundstation report`` read a
simulated run like an emulated one. Record time is the mission time the ground would have
received the message (results: when they were delivered).
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Self

from flightsw.archive import ArchiveWriter
from flightsw.protocol import JobEvent, JobResult, Status, Telemetry, dump, topics

__all__ = ["SimArchive"]


class SimArchive:
    """Writes protocol messages to ``directory`` (an archive directory)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.writer = ArchiveWriter(directory)
        self.records = 0

    def telemetry(self, msg: Telemetry) -> None:
        self.writer.append(msg.t, topics.telemetry(msg.node), dump(msg))
        self.records += 1

    def result(self, t: float, msg: JobResult) -> None:
        self.writer.append(t, topics.result(msg.node), dump(msg))
        self.records += 1

    def status(self, msg: Status) -> None:
        self.writer.append(msg.t, topics.status(msg.node), dump(msg))
        self.records += 1

    def event(self, msg: JobEvent) -> None:
        self.writer.append(msg.t, topics.event(msg.node), dump(msg))
        self.records += 1

    def close(self) -> None:
        self.writer.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
