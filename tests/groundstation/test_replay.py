"""Replay: pacing against a wall clock (real time), exact timing on a virtual clock."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flightsw.archive import ArchiveReader, ArchiveWriter
from flightsw.bus import MemoryBus, Message, Subscription
from flightsw.clock import VirtualClock, WallClock
from flightsw.protocol import dump, topics
from groundstation.exceptions import ReplayError
from groundstation.replay import replay


class _Stamped(Subscription):
    """A subscriber that notes the time each message is delivered (inside ``publish``)."""

    def __init__(self, bus: MemoryBus, stamp: Any) -> None:
        super().__init__(bus, "odc/sat/#", 1)
        self.stamp = stamp
        self.stamps: list[float] = []

    def deliver(self, message: Message) -> None:
        self.stamps.append(self.stamp())
        super().deliver(message)


async def _collect(bus: MemoryBus, stamp: Any, into: list[tuple[float, str, bytes, bool]],
                   ready: asyncio.Event) -> None:
    async with _Stamped(bus, stamp) as sub:
        ready.set()
        async for msg in sub:
            into.append((sub.stamps[len(into)], msg.topic, msg.payload, msg.retain))


def _paced_archive(path: Path, helpers: Any, n: int = 60) -> list[tuple[float, str, bytes]]:
    rng = np.random.default_rng(5)
    gaps = rng.uniform(0.10, 0.30, n - 1)  # mission seconds between receptions
    times = helpers.EPOCH + np.concatenate([[0.0], np.cumsum(gaps)])
    recs = []
    with ArchiveWriter(path) as w:
        for seq, t in enumerate(times):
            node = f"sat-00{seq % 2 + 1}"
            tel = helpers.telemetry(node, "jetson-agx-orin-64gb", seq, float(t))
            rec = (float(t), topics.telemetry(node), dump(tel))
            w.append(*rec)
            recs.append(rec)
    return recs


async def test_replay_at_10x_keeps_spacing_on_a_wall_clock(
    tmp_path: Path, mission_writer: Any
) -> None:
    recs = _paced_archive(tmp_path, mission_writer)
    clock = WallClock(scale=1.0)
    bus = MemoryBus()
    got: list[tuple[float, str, bytes, bool]] = []
    ready = asyncio.Event()
    consumer = asyncio.create_task(_collect(bus, clock.perf_counter, got, ready))
    await ready.wait()
    stats = await replay(ArchiveReader(tmp_path), bus, clock, speed=10.0)
    await clock.sleep(0.01)
    consumer.cancel()
    assert stats.published == len(recs) == len(got)
    assert [(g[1], g[2]) for g in got] == [(r[1], r[2]) for r in recs]
    host = np.array([g[0] for g in got])
    want = (np.array([r[0] for r in recs]) - recs[0][0]) / 10.0
    spacing, want_spacing = np.diff(host), np.diff(want)
    tolerance = np.maximum(0.10 * want_spacing, 0.005)
    within = np.abs(spacing - want_spacing) <= tolerance
    # A real-time test on a shared 2-core host: another process can take the CPU for
    # 10-20 ms now and then, delaying one message (the next one then catches up, since
    # targets are absolute). So: nearly every gap within 10 % or 5 ms, and the schedule
    # as a whole on time.
    assert within.mean() >= 0.9, (spacing - want_spacing)[~within]
    offset = (host - host[0]) - want
    assert np.median(np.abs(offset)) < 0.003
    assert np.median(np.abs(offset[-10:])) < 0.005  # no drift accumulates over the run
    assert stats.archive_span_s == pytest.approx(want[-1] * 10.0)


async def test_replay_on_a_virtual_clock_is_exact(mission: Any) -> None:
    clock = VirtualClock(epoch=2_000_000_000.0)
    bus = MemoryBus()
    got: list[tuple[float, str, bytes, bool]] = []
    ready = asyncio.Event()
    consumer = asyncio.create_task(_collect(bus, clock.now, got, ready))
    await ready.wait()
    speed = 4.0
    stats = await clock.run(replay(ArchiveReader(mission.path), bus, clock, speed=speed))
    await asyncio.sleep(0)
    consumer.cancel()
    assert stats is not None
    assert [(g[1], g[2]) for g in got] == [(r[1], r[2]) for r in mission.records]
    t0 = mission.records[0][0]
    latest = -math.inf
    for (at, *_), (t, _, _) in zip(got, mission.records, strict=True):
        latest = max(latest, (t - t0) / speed)  # a late record goes out at once
        assert at == pytest.approx(2_000_000_000.0 + latest, abs=1e-6)
    assert stats.clock_span_s == pytest.approx(latest, abs=1e-6)
    assert stats.max_lag_s <= 1e-6
    # status messages were published retained: a late subscriber still sees them
    async with bus.subscribe("odc/sat/+/status") as late:
        retained = [late.get_nowait() for _ in range(3)]
    assert all(m is not None and m.retain for m in retained)
    assert sorted(m.topic for m in retained if m) == [
        topics.status(n) for n in ("sat-001", "sat-002", "sat-003")]


async def test_replay_selects_nodes_and_time_range(mission: Any) -> None:
    bus = MemoryBus()
    got: list[tuple[float, str, bytes, bool]] = []
    ready = asyncio.Event()
    clock = VirtualClock(epoch=0.0)
    consumer = asyncio.create_task(_collect(bus, clock.now, got, ready))
    await ready.wait()
    start = mission.records[0][0] + 3600
    end = start + 1800
    stats = await clock.run(replay(ArchiveReader(mission.path), bus, clock, speed=math.inf,
                                   nodes=["sat-003"], start=start, end=end))
    consumer.cancel()
    want = [r for r in mission.records
            if start <= r[0] < end and r[1].startswith("odc/sat/sat-003/")]
    assert stats is not None
    assert stats.published == len(want) > 0
    assert [(g[1], g[2]) for g in got] == [(r[1], r[2]) for r in want]
    assert clock.now() == 0.0  # infinite speed never sleeps


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"speed": 0.0}, "speed: must be > 0"),
        ({"speed": -2.0}, "speed: must be > 0"),
        ({"start": 10.0, "end": 5.0}, "must be before end"),
        ({"start": 3e9}, "misses the archive, which spans 2026-09-21"),
        ({"end": 1.0}, "misses the archive"),
        ({"nodes": ["sat-404"]}, "no archived record matches"),
        ({"start": math.nan}, "start: nan is not a finite"),
    ],
)
async def test_bad_requests_are_replay_errors(
    mission: Any, kw: dict[str, Any], message: str
) -> None:
    with pytest.raises(ReplayError, match=message):
        await replay(ArchiveReader(mission.path), MemoryBus(), VirtualClock(), **kw)


async def test_empty_archive_is_a_replay_error(tmp_path: Path) -> None:
    with ArchiveWriter(tmp_path):
        pass
    with pytest.raises(ReplayError, match="holds no records"):
        await replay(ArchiveReader(tmp_path), MemoryBus(), VirtualClock())


class _RecordingBus(MemoryBus):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, int, bool]] = []

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1,
                      retain: bool = False) -> None:
        self.sent.append((topic, qos, retain))
        await super().publish(topic, payload, qos=qos, retain=retain)


async def test_flags_follow_the_protocol_and_uplink_is_left_out(tmp_path: Path) -> None:
    with ArchiveWriter(tmp_path) as w:
        for i, leaf in enumerate(["status", "telemetry", "state", "result", "job", "cmd",
                                  "model", "event", "handover/sat-2"]):
            w.append(float(i), f"odc/sat/sat-1/{leaf}", b"\x80")
    bus = _RecordingBus()
    await replay(ArchiveReader(tmp_path), bus, VirtualClock(), speed=math.inf)
    assert bus.sent == [
        ("odc/sat/sat-1/status", 1, True),
        ("odc/sat/sat-1/telemetry", 0, False),
        ("odc/sat/sat-1/state", 0, False),
        ("odc/sat/sat-1/result", 1, False),
        ("odc/sat/sat-1/event", 1, False),
        ("odc/sat/sat-1/handover/sat-2", 1, False),
    ]
    everything = _RecordingBus()
    stats = await replay(ArchiveReader(tmp_path), everything, VirtualClock(), speed=math.inf,
                         include_uplink=True, qos=2, retain_leaves=frozenset())
    assert stats.published == 9
    assert {(q, r) for _, q, r in everything.sent} == {(2, False)}
    with pytest.raises(ReplayError, match="uplink job/cmd/model excluded"):
        await replay(ArchiveReader(tmp_path), bus, VirtualClock(),
                     topics=["odc/sat/+/job"])
