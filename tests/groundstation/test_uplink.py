"""The ground's uplink choice and request handling, in process: a MemoryBus and fake nodes
(their retained status and heartbeats published by the test), no broker, no node process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
from node_harness import DIGITS, digits_inputs

from flightsw.bus import MemoryBus, Subscription
from flightsw.clock import WallClock
from flightsw.models.cost import analyse
from flightsw.protocol import JobSubmit, NodeState, Status, dump, parse, topics
from groundstation.client import GroundClient
from groundstation.service import GroundStation

T0 = 1_790_000_000.0
OPS = 1e9  # a slow node: a digits job of n items is n * 5.6e3 FLOPs / 1e9 ops/s


def heartbeat(node: str, *, queued_work_s: float = 0.0, models: list[str] | None = None,
              leases: dict[str, int] | None = None) -> NodeState:
    return NodeState(
        node=node, t=T0, soc=0.8, battery_wh=100.0, floor_wh=20.0, temperature_c=20.0,
        throttle_c=80.0, queue_depth=0, queued_work_s=queued_work_s, sunlit=1.0,
        next_eclipse_s=None, eclipse_s=0.0, effective_ops_per_s=OPS, power_w=10.0,
        position_km=[7000.0, 0.0, 0.0], models=models or [], leases=leases or {},
    )


@contextlib.asynccontextmanager
async def ground(tmp_path: Path) -> AsyncIterator[tuple[MemoryBus, GroundStation, GroundClient]]:
    bus = MemoryBus()
    clock = WallClock(epoch=T0, scale=1.0)
    async with (
        GroundStation(bus, clock, tmp_path / "archive", tick_s=0.2) as gs,
        GroundClient(bus, clock, client_id="t", timeout_s=5) as gc,
    ):
        yield bus, gs, gc


async def node_online(bus: MemoryBus, node: str, **state: Any) -> None:
    await bus.publish(topics.status(node), dump(Status(node=node, state="online", t=T0)),
                      retain=True)
    await bus.publish(topics.state(node), dump(heartbeat(node, **state)), qos=0)


async def uplinked(sub: Subscription, n: int) -> dict[str, str]:
    """job_id -> node of the next ``n`` jobs the ground sends."""
    out: dict[str, str] = {}
    while len(out) < n:
        msg = await asyncio.wait_for(sub.get(), 5.0)
        node = topics.node_from_topic(msg.topic)
        assert node is not None
        out[parse(JobSubmit, msg.payload).job_id] = node
    return out


async def test_job_goes_to_the_node_that_can_start_it_soonest(tmp_path: Path) -> None:
    async with ground(tmp_path) as (bus, _gs, gc), bus.subscribe("odc/sat/+/job") as jobs:
        model = await gc.upload_model(DIGITS)
        await node_online(bus, "busy", queued_work_s=600.0, models=[model])
        await node_online(bus, "idle", queued_work_s=0.0, models=[model])
        await asyncio.sleep(0.05)
        job = await gc.submit(model, {"input": digits_inputs(4)})
        assert await uplinked(jobs, 1) == {job: "idle"}


async def test_a_burst_spreads_by_the_work_already_sent(tmp_path: Path) -> None:
    x = digits_inputs(64)
    async with ground(tmp_path) as (bus, gs, gc), bus.subscribe("odc/sat/+/job") as jobs:
        model = await gc.upload_model(DIGITS)
        per_job_s = analyse(DIGITS).flops_per_item * 16 / OPS
        await node_online(bus, "a", models=[model])
        await node_online(bus, "b", models=[model])
        # c is busy for 1.5 jobs' work: it gets a job only once a and b hold two each
        await node_online(bus, "c", queued_work_s=1.5 * per_job_s, models=[model])
        await asyncio.sleep(0.05)
        ids = [await gc.submit(model, {"input": x[i::4]}, job_id=f"j{i}") for i in range(4)]
        sent = await uplinked(jobs, 4)
        assert [sent[j] for j in ids] == ["a", "b", "a", "b"]
        # the heartbeat that lists a job replaces the ground's own count of it
        assert set(gs.nodes["a"].sent_work) == {"j0", "j2"}
        await bus.publish(topics.state("a"),
                          dump(heartbeat("a", queued_work_s=2 * per_job_s, models=[model],
                                         leases={"j0": 0, "j2": 0})), qos=0)
        await asyncio.sleep(0.05)
        assert gs.nodes["a"].sent_work == {}
        assert gs.nodes["a"].backlog_s(gs.clock.now(), gs.lease_s) == 2 * per_job_s
        assert np.isclose(gs.nodes["b"].backlog_s(gs.clock.now(), gs.lease_s), 2 * per_job_s)
        nxt = await gc.submit(model, {"input": x[:16]}, job_id="j4")
        assert await uplinked(jobs, 1) == {nxt: "c"}
