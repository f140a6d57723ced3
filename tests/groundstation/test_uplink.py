"""The ground's uplink choice and request handling, in process: a MemoryBus and fake nodes
(their retained status and heartbeats published by the test), no broker, no node process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from node_harness import DIGITS, digits_inputs, model_hash

from flightsw.bus import MemoryBus, Subscription
from flightsw.clock import WallClock
from flightsw.models.cost import analyse
from flightsw.physics.ground import Station
from flightsw.protocol import (
    GroundStations,
    JobSubmit,
    ModelChunk,
    ModelMissing,
    ModelStored,
    NodeState,
    Status,
    Tensor,
    dump,
    parse,
    topics,
)
from groundstation.client import GroundClient
from groundstation.exceptions import GroundError
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


async def test_a_0d_input_gets_a_clear_error_and_the_service_keeps_serving(
    tmp_path: Path,
) -> None:
    async with ground(tmp_path) as (_bus, _gs, gc):
        model = await gc.upload_model(DIGITS)
        with pytest.raises(GroundError, match=r"input 'input': rank 0 \(shape \[\]\), expected "
                                              r"rank 2 \[N, 64\]"):
            await gc.submit(model, {"input": np.array(1.0, np.float32)})
        with pytest.raises(GroundError, match=r"^inputs: batch sizes differ"):
            await gc.submit(model, {"a": np.zeros((2, 64), np.float32),
                                    "b": np.zeros((3, 64), np.float32)})
        with pytest.raises(GroundError, match=r"^inputs: input 'input' has a batch of zero"):
            await gc.submit(model, {"input": np.zeros((0, 64), np.float32)})
        x = Tensor.from_array(digits_inputs(1)).model_dump()
        with pytest.raises(GroundError, match=r"^job\.priority: "):  # typed submit args
            await gc.request("submit", {"job": {"job_id": "p", "model": model,
                                                "inputs": {"input": x}, "priority": 11}})
        with pytest.raises(GroundError, match=r"^job\.deadline: Extra inputs"):
            await gc.request("submit", {"job": {"job_id": "p", "model": model,
                                                "inputs": {"input": x}, "deadline": 5.0}})
        job = await gc.submit(model, {"input": digits_inputs(3)})
        assert (await gc.job(job)).items == 3
        assert [r.job_id for r in await gc.jobs()] == [job]


async def test_an_unexpected_error_in_a_handler_is_answered_and_survived(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with ground(tmp_path) as (_bus, gs, gc):
        real = gs.desk.handle
        calls = iter([ZeroDivisionError("division by zero")])

        def flaky(req: Any) -> dict[str, Any]:
            err = next(calls, None)
            if err is not None:
                raise err
            return real(req)

        monkeypatch.setattr(gs.desk, "handle", flaky)
        with pytest.raises(GroundError, match=r"^internal error in jobs: ZeroDivisionError"):
            await gc.jobs()
        assert await gc.jobs() == []  # still serving
    assert "Traceback" in caplog.text and "request 't-0' (jobs) failed" in caplog.text


async def test_typed_model_events_and_station_announcement(tmp_path: Path) -> None:
    station = Station("svalbard", 78.23, 15.39, 500.0)
    bus = MemoryBus()
    clock = WallClock(epoch=T0, scale=1.0)
    async with (
        GroundStation(bus, clock, tmp_path / "archive", stations=[station],
                      min_elevation_deg=5.0) as gs,
        GroundClient(bus, clock, client_id="t", timeout_s=5) as gc,
        bus.subscribe(topics.GROUND_STATIONS) as announced,
        bus.subscribe(topics.model("n1")) as chunks,
    ):
        ann = parse(GroundStations, (await asyncio.wait_for(announced.get(), 1.0)).payload)
        assert [s.to_station() for s in ann.stations] == [station]
        assert ann.min_elevation_deg == 5.0
        model = await gc.upload_model(DIGITS)
        await bus.publish(topics.event("n1"), dump(ModelStored(node="n1", t=T0, model=model)))
        await asyncio.sleep(0.05)
        assert model in gs.nodes["n1"].models
        # the node lost it (or never had it): it asks, and the ground sends it again
        await bus.publish(topics.event("n1"),
                          dump(ModelMissing(node="n1", t=T0, model=model, job_id="j")))
        first = parse(ModelChunk, (await asyncio.wait_for(chunks.get(), 2.0)).payload)
        assert first.model == model == model_hash(DIGITS) and first.index == 0
        assert model not in gs.nodes["n1"].models


async def test_exit_cancels_its_own_tasks_only(tmp_path: Path) -> None:
    bystander = asyncio.create_task(asyncio.sleep(30), name="ground:not-the-service's")
    async with ground(tmp_path) as (_bus, gs, _gc):
        mine = set(gs._tasks)
        assert {t.get_name() for t in mine} >= {"ground:ingest", "ground:requests",
                                                "ground:uplink", "ground:flush"}
    assert all(t.done() for t in mine)
    assert not bystander.done()
    bystander.cancel()
