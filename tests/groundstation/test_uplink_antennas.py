"""The ground station's antennas over a real mosquitto broker: a station with N antennas
sends to at most N satellites at once (the simulator's rule, flightsw.protocol.antennas).

Three fake nodes on one orbit (their status carries it, their heartbeats an uplink rate) sit
over the station; the test submits jobs and times each job message as it arrives at the
broker. A message holds an antenna for its modelled uplink time (its bytes at the node's
rate) before it is published, so the arrival times tell how many were on their way at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from node_harness import DIGITS, digits_inputs

from flightsw.bus.memory import MemoryBus
from flightsw.bus.mqtt import MqttBus
from flightsw.clock import VirtualClock, WallClock
from flightsw.exceptions import ConfigError
from flightsw.orbitdesc import orbits_from_info
from flightsw.physics import ecef_to_geodetic, eci_to_ecef
from flightsw.physics.ground import Station
from flightsw.physics.orbit import CircularOrbits
from flightsw.protocol import CircularOrbitInfo, NodeState, Status, dump, topics
from groundstation.client import GroundClient
from groundstation.service import GroundStation

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_790_000_000.0
NODES = ("n0", "n1", "n2")
RATE_BPS = 64_000.0  # a digits job of 64 items (about 17 kB on the wire): about 2 s
N_JOBS = 6
SLACK_S = 0.25  # host scheduling and broker latency allowed at each end of a message


def _orbit(k: int) -> CircularOrbitInfo:
    return CircularOrbitInfo(altitude_km=550.0, inclination_deg=53.0, raan_deg=0.0,
                             arg_latitude_deg=0.2 * k, epoch=T0)


def _station_below() -> Station:
    orb = CircularOrbits(550.0, 53.0, 0.0, 0.0, T0, ["x"])
    lat, lon, _ = ecef_to_geodetic(eci_to_ecef(orb.positions(T0), T0))
    return Station("below", float(np.asarray(lat)[0]), float(np.asarray(lon)[0]))


def _state(node: str, model: str) -> NodeState:
    return NodeState(
        node=node, t=T0, soc=0.8, battery_wh=100.0, floor_wh=20.0, temperature_c=20.0,
        throttle_c=80.0, queue_depth=0, queued_work_s=0.0, sunlit=1.0, next_eclipse_s=None,
        eclipse_s=0.0, effective_ops_per_s=1e9, power_w=10.0,
        position_km=[7000.0, 0.0, 0.0], models=[model], leases={},
        uplink_rate_bps=RATE_BPS, alt_km=550.0,
    )


@contextlib.asynccontextmanager
async def _ground(url: str, tmp: Path, antennas: int
                  ) -> AsyncIterator[tuple[MqttBus, GroundStation, GroundClient]]:
    clock = WallClock(epoch=T0, scale=1.0)
    async with (
        MqttBus(url, client_id="gs", clean_start=True) as gbus,
        GroundStation(gbus, clock, tmp / "archive", stations=[_station_below()],
                      antennas=antennas, tick_s=0.2) as gs,
        MqttBus(url, client_id="fleet", clean_start=True) as bus,
        GroundClient(bus, clock, client_id="t", timeout_s=10) as gc,
    ):
        yield bus, gs, gc


async def _arrivals(url: str, tmp: Path, antennas: int) -> list[tuple[float, float, str]]:
    """(start, end, node) of each job message: its arrival, less its modelled uplink."""
    loop = asyncio.get_running_loop()
    async with _ground(url, tmp, antennas) as (bus, gs, gc), bus.subscribe(
            "odc/sat/+/job", qos=1) as jobs:
        model = await gc.upload_model(DIGITS)
        for k, node in enumerate(NODES):
            await bus.publish(topics.status(node), dump(Status(
                node=node, state="online", t=T0, orbit=_orbit(k))), qos=1, retain=True)
            await bus.publish(topics.state(node), dump(_state(node, model)), qos=1)
        for _ in range(100):
            if all(n in gs.nodes and gs.placeable(gs.nodes[n], gs.clock.now())
                   and gs.in_view(gs.nodes[n], gs.clock.now()) for n in NODES):
                break
            await asyncio.sleep(0.05)
        x = digits_inputs(64)
        for j in range(N_JOBS):
            await gc.submit(model, {"input": x}, job_id=f"j{j}")
        out = []
        for _ in range(N_JOBS):
            msg = await asyncio.wait_for(jobs.get(), 30.0)
            t = loop.time()
            to = topics.node_from_topic(msg.topic)
            assert to is not None
            out.append((t - 8.0 * len(msg.payload) / RATE_BPS, t, to))
        await bus.publish(topics.status("n0"), b"", retain=True)
        return out


def _most_at_once(spans: list[tuple[float, float, str]]) -> int:
    """Messages on their way together, each span shrunk by the slack at both ends."""
    edges = sorted([(a + SLACK_S, 1) for a, _, _ in spans]
                   + [(b - SLACK_S, -1) for _, b, _ in spans])
    now = most = 0
    for _, d in edges:
        now += d
        most = max(most, now)
    return most


@pytest.mark.parametrize("antennas", [1, 2])
async def test_a_station_sends_to_as_many_nodes_at_once_as_it_has_antennas(
    mosquitto: object, tmp_path: Path, antennas: int
) -> None:
    spans = await _arrivals(mosquitto.url, tmp_path, antennas)  # type: ignore[attr-defined]
    assert len(spans) == N_JOBS
    assert _most_at_once(spans) == antennas
    # one node's messages never overlap (it holds one antenna)
    for node in NODES:
        mine = sorted((a, b) for a, b, n in spans if n == node)
        assert all(nxt[0] >= prev[1] - SLACK_S for prev, nxt in itertools.pairwise(mine))
    first = min(a for a, _, _ in spans)
    last = max(b for _, b, _ in spans)
    per_msg = spans[0][1] - spans[0][0]
    # the queue drains N antennas at a time: 6 messages in about 6 / N uplink times
    assert last - first == pytest.approx(N_JOBS / antennas * per_msg, rel=0.25)


def test_bad_antenna_counts_are_refused_naming_the_field(tmp_path: Path) -> None:
    from flightsw.bus import MemoryBus

    clock = WallClock(epoch=T0, scale=1.0)
    for bad, where in ((0, "antennas"), (-1, "antennas"), (True, "antennas"),
                       ([1, 2], "antennas: give one count, or one per station (1)"),
                       ([0], "antennas[0]")):
        with pytest.raises(ConfigError, match=r"antennas") as err:
            GroundStation(MemoryBus(), clock, tmp_path / "a", stations=[_station_below()],
                          antennas=bad)  # type: ignore[arg-type]
        assert where in str(err.value)
    res = subprocess.run(
        [sys.executable, "-m", "groundstation.cli", "serve", "--archive", str(tmp_path / "b"),
         "--station", "x=10,20", "--antennas", "0"],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert res.returncode != 0
    assert "--antennas: a station needs at least 1 antenna, got 0" in res.stderr
    res = subprocess.run(
        [sys.executable, "-m", "groundstation.cli", "serve", "--archive", str(tmp_path / "b"),
         "--antennas", "two"],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert res.returncode != 0
    assert "--antennas" in res.stderr and "two" in res.stderr


async def test_an_antenna_is_taken_for_when_it_sends_not_while_the_node_waits(
        tmp_path: Path) -> None:
    """Two one-antenna stations see two nodes. n0 gets two messages: the first on station 0,
    the second after it. Asked for at its own start, the second stays on station 0 (its
    antenna is free then), so station 1 serves n1 at once. Asked for at the time of the
    request, it took station 1's antenna from then, idle until n0's first message was out,
    and n1 waited for station 0."""
    here = _station_below()
    stations = [here, Station("beside", here.lat_deg + 0.5, here.lon_deg)]
    clock = VirtualClock(T0)
    async with MemoryBus() as bus, GroundStation(bus, clock, tmp_path / "archive",
                                                  stations=stations, antennas=1) as gs:
        views = []
        for k, node in enumerate(("n0", "n1")):
            v = gs._view(node)
            v.state = _state(node, "m")
            v.orbits = orbits_from_info(_orbit(k), node)
            assert gs.in_view(v, T0) == [0, 1]
            views.append(v)
        payload = b"x" * 16_000  # 2 s at 64 kbit/s
        d = gs.uplink_delay_s(views[0], len(payload))
        gs._uplink_send(views[0], topics.job(views[0].node), payload)
        gs._uplink_send(views[0], topics.job(views[0].node), payload)
        assert views[0].uplink_until - T0 == pytest.approx(2 * d)
        gs._uplink_send(views[1], topics.job(views[1].node), payload)
        assert views[1].uplink_until - T0 == pytest.approx(d)  # at once, on station 1
