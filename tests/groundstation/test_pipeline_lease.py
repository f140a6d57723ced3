"""A stage return held out of contact keeps the job's lease: a real node (in process, on the
memory bus) gives a pipeline job back after stage 0 while it sees no ground station, so
the return waits in its downlink for longer than the ground's lease time; the ground,
which hears the node's heartbeats (they list the waiting return's job), does not lapse
the job, takes the return when the node is back in contact and has stage 1 alone run:
stage 0 runs once, and the result is the whole model's."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
from node_harness import DIGITS, digits_inputs, kind, running_node, wait_for

from flightsw.bus import MemoryBus
from flightsw.clock import WallClock
from flightsw.models.partition import partition, run_stages
from flightsw.node.service import Node
from flightsw.protocol import (
    JobSubmit,
    ModelChunk,
    ModelStored,
    NodeState,
    Status,
    dump,
    encode,
    parse,
    topics,
)
from groundstation.client import GroundClient
from groundstation.service import GroundStation

T0 = 1_790_000_000.0
LEASE_S = 1.0


async def beat_near(bus: MemoryBus, node: Node, peer: str) -> None:
    """``peer``'s heartbeat 200 km across ``node``'s orbit (linked over a 580 km terminal)."""
    here = node.budget.position_of(0)
    side = np.cross(here, [0.0, 0.0, 1.0])
    there = here + 200.0 * side / np.linalg.norm(side)
    st = NodeState(node=peer, t=node.clock.now(), soc=0.9, battery_wh=50.0, floor_wh=5.0,
                   temperature_c=20.0, throttle_c=80.0, queue_depth=0, queued_work_s=0.0,
                   sunlit=1.0, next_eclipse_s=None, eclipse_s=0.0,
                   effective_ops_per_s=1e12, power_w=10.0,
                   position_km=[float(v) for v in there], isl_rate_bps=20e6,
                   isl_max_range_km=580.0)
    await bus.publish(topics.state(peer), dump(st), qos=0)


async def test_a_return_held_longer_than_the_lease_is_taken_and_no_stage_runs_again(
    tmp_path: Path,
) -> None:
    bus = MemoryBus()
    clock = WallClock(epoch=T0)
    pl = partition(DIGITS.read_bytes(), 2)
    x = digits_inputs(4)
    async with (
        GroundStation(bus, clock, tmp_path / "archive", tick_s=0.1, lease_s=LEASE_S) as gs,
        GroundClient(bus, clock, client_id="t", timeout_s=5) as gc,
        running_node(bus, clock, tmp_path / "n1", policy="least-loaded",
                     state_period_s=0.1, physics_step_s=0.1) as n1,
        bus.subscribe(topics.job("n1")) as jobs,
    ):
        stages = [await gc.upload_bytes(s.model) for s in pl.stages]
        # n1 holds stage 0's model, n2 (heard, linked) stage 1's
        async with bus.subscribe(topics.event("n1")) as events:
            data = pl.stages[0].model
            await bus.publish(topics.model("n1"), dump(ModelChunk(
                model=stages[0], index=0, total=1, size=len(data), data=data)))
            await wait_for(events, kind("model_stored", model=stages[0]))
        await bus.publish(topics.status("n2"), dump(Status(node="n2", state="online", t=T0)),
                          retain=True)
        await bus.publish(topics.event("n2"), dump(ModelStored(node="n2", t=T0,
                                                               model=stages[1])))
        for _ in range(3):
            await beat_near(bus, n1, "n2")
            await asyncio.sleep(0.1)
        # n1 sees no ground station (the only one is on the far side of the Earth)
        lat, lon, _ = n1.budget.geodetic_of(0)
        far = {"name": "far", "lat_deg": -float(lat),
               "lon_deg": (float(lon) + 360.0) % 360 - 180.0, "alt_m": 0.0}
        await bus.publish(topics.GROUND_STATIONS,
                          encode({"stations": [far], "min_elevation_deg": 10.0}), retain=True)
        # n2 falls silent: the ground may still place it (heard within the lease time), n1
        # finds it silent for more than 3 of its state periods when stage 0 ends
        await asyncio.sleep(0.5)
        await gc.submit(stages[0], {"input": x}, stages=stages, job_id="p1")
        first = parse(JobSubmit, (await asyncio.wait_for(jobs.get(), 5.0)).payload)
        assert first.pipeline is not None and first.pipeline.members == ["n1", "n2"]
        for _ in range(100):
            if n1.results_held:
                break
            await asyncio.sleep(0.05)
        assert n1.results_held == 1  # the return waits for a contact window
        await asyncio.sleep(3 * LEASE_S)  # longer than the lease time
        rec = await gc.job("p1")  # still as the node's last event (stage 0 running) left it
        assert (rec.state, rec.epoch, rec.attempts, rec.replans) == ("running", 0, 1, 0), rec
        assert jobs.qsize() == 0  # not re-run from stage 0
        # back in contact: the return goes down and is taken, stage 1 alone goes (to n1,
        # the only node heard: it is sent stage 1's model first)
        await bus.publish(topics.GROUND_STATIONS, b"", retain=True)
        again = parse(JobSubmit, (await asyncio.wait_for(jobs.get(), 10.0)).payload)
        p = again.pipeline
        assert p is not None and (again.epoch, p.stage, p.start) == (1, 1, 1)
        rec = await gc.wait("p1", timeout_s=10)
        assert (rec.state, rec.epoch, rec.replans, rec.attempts) == ("done", 1, 1, 2)
        assert gs.stale == 0 and jobs.qsize() == 0  # stage 0 ran once
        want = run_stages(pl, {"input": x})
        assert rec.outputs is not None
        for name, arr in want.items():
            assert np.array_equal(rec.outputs[name].to_array(), arr), name
