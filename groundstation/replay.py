"""Re-publish archived messages to their original topics at the original pace or N x faster."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from flightsw.bus.base import Bus
from flightsw.clock import Clock
from flightsw.timeutil import format_iso
from groundstation.archive import ArchiveReader, Record
from groundstation.exceptions import ArchiveError, ReplayError

__all__ = ["RETAINED_LEAVES", "ReplayStats", "check_range", "replay"]

#: Topic leaves the nodes publish retained (``odc/sat/{node}/status``); replayed retained too.
RETAINED_LEAVES = frozenset({"status"})


@dataclass(frozen=True, slots=True)
class ReplayStats:
    """What a replay did. Times named ``clock`` are on the replay clock (mission seconds)."""

    published: int
    first_t: float
    last_t: float
    clock_span_s: float
    max_lag_s: float
    host_s: float

    @property
    def archive_span_s(self) -> float:
        """Archive mission time from the first to the last replayed record."""
        return self.last_t - self.first_t


def check_range(reader: ArchiveReader, start: float | None, end: float | None) -> None:
    """:class:`ReplayError` if ``[start, end)`` is inverted or misses the archive."""
    for name, value in (("start", start), ("end", end)):
        if value is not None and not math.isfinite(value):
            raise ReplayError(f"{name}: {value!r} is not a finite mission time")
    if start is not None and end is not None and start >= end:
        raise ReplayError(f"start ({start!r}) must be before end ({end!r})")
    span = reader.time_range()
    if span is None:
        raise ReplayError(f"archive {reader.directory} holds no records")
    if (start is not None and start > span[1]) or (end is not None and end <= span[0]):
        raise ReplayError(
            f"time range misses the archive, which spans "
            f"{format_iso(span[0], timespec='milliseconds')} .. "
            f"{format_iso(span[1], timespec='milliseconds')}"
        )


async def replay(
    reader: ArchiveReader,
    bus: Bus,
    clock: Clock,
    *,
    speed: float = 1.0,
    nodes: Iterable[str] | None = None,
    start: float | None = None,
    end: float | None = None,
    topics: Iterable[str] | None = None,
    retain_leaves: frozenset[str] = RETAINED_LEAVES,
    qos: int = 1,
    progress: Callable[[int], None] | None = None,
) -> ReplayStats:
    """Publish every selected record on its topic, spaced as archived divided by ``speed``.

    Record *i* goes out at ``c0 + (t_i - t_0) / speed`` on ``clock`` (``c0`` = the clock at
    the first record): targets are absolute, so sleeping late never accumulates drift.
    Records come in archive (reception) order; one whose target has already passed (its
    ``t`` is earlier than a predecessor's) goes out at once. ``speed=math.inf`` publishes
    as fast as the bus takes them. Messages on ``retain_leaves`` topics (the nodes' status)
    are published retained, as the nodes published them. Raises :class:`ReplayError` when
    the selection is empty or the range is bad.
    """
    if not speed > 0:
        raise ReplayError(f"speed: must be > 0 (math.inf for as fast as possible), got {speed!r}")
    if qos not in (0, 1, 2):
        raise ReplayError(f"qos: must be 0, 1 or 2, got {qos!r}")
    check_range(reader, start, end)
    try:
        records = reader.records(start, end, topics=topics, nodes=nodes)
        first = next(records, None)
    except ArchiveError as exc:
        raise ReplayError(str(exc)) from exc
    if first is None:
        raise ReplayError("no archived record matches the node/topic/time selection")

    host0 = clock.perf_counter()
    c0 = clock.now()
    t0 = first.t
    inv = 0.0 if math.isinf(speed) else 1.0 / speed
    published = 0
    max_lag = 0.0
    last_t = t_hi = t0
    rec: Record | None = first
    while rec is not None:
        if inv:
            target = c0 + (rec.t - t0) * inv
            await clock.sleep_until(target)
            if rec.t >= t_hi:  # lateness of records that arrived out of order is expected
                t_hi = rec.t
                lag = clock.now() - target
                max_lag = max(max_lag, lag)
        await bus.publish(rec.topic, rec.payload, qos=qos,
                          retain=rec.topic.rpartition("/")[2] in retain_leaves)
        published += 1
        last_t = rec.t
        if progress is not None:
            progress(published)
        rec = next(records, None)
    return ReplayStats(published=published, first_t=t0, last_t=last_t,
                       clock_span_s=clock.now() - c0, max_lag_s=max_lag,
                       host_s=clock.perf_counter() - host0)
