"""Results go down only inside contact windows (store and forward) at the downlink rate;
while one waits, the heartbeats keep its job's lease."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import numpy as np
from node_harness import (
    DETECTOR,
    DIGITS,
    digits_inputs,
    kind,
    model_hash,
    running_node,
    submit,
    upload,
    wait_for,
)
from profiles import slow_profile

from flightsw.bus import MemoryBus
from flightsw.clock import WallClock
from flightsw.physics.ground import Station, contact_windows
from flightsw.physics.orbit import CircularOrbits
from flightsw.protocol import encode, topics
from flightsw.timeutil import parse_iso

T0 = parse_iso("2026-03-20T00:00:00Z")
SVALBARD = Station("svalbard", 78.23, 15.39, 500.0)


async def test_result_finished_after_los_waits_for_next_pass(tmp_path: Path) -> None:
    orbit = CircularOrbits(550.0, 97.6, 0.0, 0.0, epoch=T0)
    passes = contact_windows(orbit, SVALBARD, T0, T0 + 8 * 3600, min_elevation_deg=10.0)[0]
    p1, p2 = next(
        (a, b)
        for a, b in itertools.pairwise(passes)
        if a.aos > T0 + 60 and a.duration_s > 300
    )
    start = p1.aos + 60.0
    u0 = 360.0 * (start - T0) / float(orbit.period_s[0])
    remaining = p1.los - start
    # the fastest mode needs remaining + 120 s: every mode finishes after LOS, before AOS 2
    flops = 2 * 52.7e6
    ops = flops / (remaining + 120.0)
    clock = WallClock(epoch=start, scale=400)
    bus = MemoryBus()
    await bus.publish(
        topics.GROUND_STATIONS,
        encode(
            {
                "stations": [
                    {"name": "svalbard", "lat_deg": 78.23, "lon_deg": 15.39, "alt_m": 500.0}
                ],
                "min_elevation_deg": 10.0,
            }
        ),
        retain=True,
    )
    received: list[float] = []
    async with (
        bus.subscribe("odc/sat/n1/#") as sub,
        running_node(
            bus,
            clock,
            tmp_path / "n1",
            profile=slow_profile(tmp_path, ops=ops),
            inclination_deg=97.6,
            arg_latitude_deg=u0,
            execute=False,
        ) as node,
    ):
        assert node.in_contact(clock.now())
        h = await upload(bus, "n1", DETECTOR)
        assert h == model_hash(DETECTOR)
        await wait_for(sub, kind("model_stored"))
        img = np.zeros((2, 3, 96, 96), np.float32)
        await submit(bus, "n1", "long", h, {"image": img})
        _, res = await wait_for(sub, kind("result", job_id="long"), timeout=60)
        received.append(clock.now())
        assert node.results_held == 0
    assert p1.los < res["finished_at"] < p2.aos
    assert received[0] >= p2.aos - 15.0  # the node's orbit epoch differs by the start-up time
    assert received[0] <= p2.los


async def test_a_result_held_out_of_contact_keeps_its_lease_in_the_heartbeat(
    tmp_path: Path,
) -> None:
    """A job that finished while no station is in view is no longer in the core, but its
    heartbeats list it at the result's epoch until the result is down; then no longer."""
    bus = MemoryBus()
    async with (
        running_node(bus, WallClock(epoch=T0), tmp_path / "n1", state_period_s=0.1,
                     physics_step_s=0.1) as node,
        bus.subscribe("odc/sat/n1/#") as sub,
        bus.subscribe(topics.state("n1")) as states,
    ):
        h = await upload(bus, "n1", DIGITS)
        await wait_for(sub, kind("model_stored"))
        lat, lon, _ = node.budget.geodetic_of(0)
        far = {"name": "far", "lat_deg": -float(lat),
               "lon_deg": (float(lon) + 360.0) % 360 - 180.0, "alt_m": 0.0}
        await bus.publish(topics.GROUND_STATIONS,
                          encode({"stations": [far], "min_elevation_deg": 10.0}), retain=True)
        await asyncio.sleep(0.2)
        assert not node.in_contact(node.clock.now())
        await submit(bus, "n1", "j1", h, {"input": digits_inputs(4)}, epoch=4)
        for _ in range(100):
            if node.results_held:
                break
            await asyncio.sleep(0.05)
        assert node.results_held == 1 and "j1" not in node.core.leases()
        while states.qsize():
            states.get_nowait()
        _, st = await wait_for(states, kind("node_state"), timeout=2.0)
        assert st["leases"] == {"j1": 4}
        await bus.publish(topics.GROUND_STATIONS, b"", retain=True)  # always in contact
        _, res = await wait_for(sub, kind("result", job_id="j1"), timeout=5.0)
        assert (res["status"], res["epoch"]) == ("done", 4)
        await wait_for(states, kind("node_state"), timeout=2.0)
        _, st = await wait_for(states, kind("node_state"), timeout=2.0)
        assert st["leases"] == {}
