"""Re-publish archived messages to their original topics at the original pace or N x faster."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from flightsw.archive import ArchiveReader, Record
from flightsw.bus.base import Bus
from flightsw.clock import Clock
from flightsw.exceptions import ArchiveError
from flightsw.protocol.topics import PREFIX
from flightsw.timeutil import format_iso
from groundstation.exceptions import ReplayError

__all__ = [
    "QOS0_LEAVES",
    "RETAINED_LEAVES",
    "UPLINK_LEAVES",
    "ReplayStats",
    "check_range",
    "replay",
]

# What follows ``odc/sat/{node}/`` (see docs/protocol.md):
#: published retained by the nodes (their status), so replayed retained
RETAINED_LEAVES = frozenset({"status"})
#: published with QoS 0 by the nodes (periodic, superseded by the next one)
QOS0_LEAVES = frozenset({"telemetry", "state"})
#: sent *to* the nodes by the ground or an operator; not replayed unless asked
UPLINK_LEAVES = frozenset({"job", "cmd", "model"})
_NODE_PREFIX = PREFIX + "/"


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


@dataclass(frozen=True, slots=True)
class _Channel:
    """How the nodes publish on a topic (``docs/protocol.md``)."""

    qos: int
    retain: bool
    uplink: bool


def _channel(topic: str, qos: int | None, retain_leaves: frozenset[str]) -> _Channel:
    parts = topic.split("/", 4)
    kind = parts[3] if topic.startswith(_NODE_PREFIX) and len(parts) > 3 else ""
    return _Channel(
        qos=(0 if kind in QOS0_LEAVES else 1) if qos is None else qos,
        retain=kind in retain_leaves,
        uplink=kind in UPLINK_LEAVES,
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
    qos: int | None = None,
    include_uplink: bool = False,
    progress: Callable[[int], None] | None = None,
    confirm_s: float | None = None,
) -> ReplayStats:
    """Publish every selected record on its topic, spaced as archived divided by ``speed``.

    Record *i* goes out at ``c0 + (t_i - t_0) / speed`` on ``clock`` (``c0`` = the clock at
    the first record): targets are absolute, so sleeping late never accumulates drift.
    Records come in archive (reception) order; one whose target has already passed (its
    ``t`` is earlier than a predecessor's) goes out at once. ``speed=math.inf`` publishes
    as fast as the bus takes them.

    Messages go out as the nodes publish them: retained on ``retain_leaves`` topics (the
    status), QoS 0 for telemetry and state, QoS 1 otherwise (``qos`` overrides). Messages
    *to* the nodes that the ground also archived (``job``, ``cmd``, ``model``) are left out
    unless ``include_uplink``: replayed into a live broker they would reach live nodes.
    Raises :class:`ReplayError` when the selection is empty or the range is bad.

    With ``confirm_s``, the first record is published while subscribed to its topic and
    must come back from the broker within ``confirm_s`` host seconds, else
    :class:`ReplayError` and nothing more is sent: an MQTT 3.1.1 broker acknowledges a
    publish its ACL forbids and drops it, so only the echo shows it went through.
    """
    if not speed > 0:
        raise ReplayError(f"speed: must be > 0 (math.inf for as fast as possible), got {speed!r}")
    if qos not in (None, 0, 1, 2):
        raise ReplayError(f"qos: must be 0, 1 or 2, got {qos!r}")
    check_range(reader, start, end)
    channels: dict[str, _Channel] = {}

    def selected() -> Iterator[tuple[Record, _Channel]]:
        for rec in reader.records(start, end, topics=topics, nodes=nodes):
            ch = channels.get(rec.topic)
            if ch is None:
                ch = channels[rec.topic] = _channel(rec.topic, qos, retain_leaves)
            if include_uplink or not ch.uplink:
                yield rec, ch

    try:
        records = selected()
        item = next(records, None)
    except ArchiveError as exc:
        raise ReplayError(str(exc)) from exc
    if item is None:
        raise ReplayError("no archived record matches the node/topic/time selection"
                          + ("" if include_uplink else " (uplink job/cmd/model excluded)"))

    host0 = clock.perf_counter()
    c0 = clock.now()
    t0 = item[0].t
    inv = 0.0 if math.isinf(speed) else 1.0 / speed
    published = 0
    max_lag = 0.0
    last_t = t_hi = t0
    if confirm_s is not None:
        await _confirm(bus, item[0], item[1], confirm_s)
        published = 1
        last_t = item[0].t
        if progress is not None:
            progress(published)
        item = next(records, None)
    while item is not None:
        rec, ch = item
        if inv:
            target = c0 + (rec.t - t0) * inv
            await clock.sleep_until(target)
            if rec.t >= t_hi:  # lateness of records that arrived out of order is expected
                t_hi = rec.t
                max_lag = max(max_lag, clock.now() - target)
        await bus.publish(rec.topic, rec.payload, qos=ch.qos, retain=ch.retain)
        published += 1
        last_t = rec.t
        if progress is not None:
            progress(published)
        item = next(records, None)
    return ReplayStats(published=published, first_t=t0, last_t=last_t,
                       clock_span_s=clock.now() - c0, max_lag_s=max_lag,
                       host_s=clock.perf_counter() - host0)


async def _confirm(bus: Bus, rec: Record, ch: _Channel, timeout_s: float) -> None:
    """Publish ``rec`` and wait for the broker to deliver it back (see :func:`replay`)."""
    async with bus.subscribe(rec.topic, qos=1) as sub:
        await bus.publish(rec.topic, rec.payload, qos=max(ch.qos, 1), retain=ch.retain)

        async def echo() -> None:
            while True:
                msg = await sub.get()
                if msg.payload == rec.payload and not msg.retain:
                    return

        try:
            await asyncio.wait_for(echo(), timeout_s)
        except TimeoutError:
            raise ReplayError(
                f"the broker did not deliver the first message back on {rec.topic} within "
                f"{timeout_s:g} s: this account is most likely not allowed to publish (or to "
                "subscribe) there by the broker's ACL, which drops such messages silently; "
                "nothing else was replayed (--no-confirm skips this check)"
            ) from None
