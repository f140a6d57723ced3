"""The ground counts, in each chain candidate's backlog, the pipeline stages planned on it
that have not arrived yet (in process: a MemoryBus and fake nodes whose statuses,
heartbeats and model events the test publishes). Two jobs submitted back to back on equal
idle nodes take disjoint chains; a stage planned on a member stops counting once that
member's heartbeat lists the job (then its reported queue counts it, once); each
micro-batch of a streamed job books its own stages on the members of their one chain."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from node_harness import DIGITS, digits_inputs

from flightsw.bus import MemoryBus
from flightsw.clock import WallClock
from flightsw.models.cost import analyse
from flightsw.models.partition import partition
from flightsw.protocol import JobSubmit, ModelStored, NodeState, Status, dump, parse, topics
from groundstation.client import GroundClient
from groundstation.service import GroundStation, NodeView

T0 = 1_790_000_000.0
OPS = 1e6  # every fake node's effective ops/s
NODES = ("a", "b", "c", "d", "e", "f")


async def beat(bus: MemoryBus, node: str, backlog_s: float, leases: dict[str, int]) -> None:
    st = NodeState(node=node, t=T0, soc=0.8, battery_wh=100.0, floor_wh=20.0,
                   temperature_c=20.0, throttle_c=80.0, queue_depth=len(leases),
                   queued_work_s=backlog_s, sunlit=1.0, next_eclipse_s=None, eclipse_s=0.0,
                   effective_ops_per_s=OPS, power_w=10.0, position_km=[7000.0, 0.0, 0.0],
                   isl_rate_bps=10e9, isl_max_range_km=2000.0, leases=leases)
    await bus.publish(topics.state(node), dump(st), qos=0)


async def until(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Until ``check()`` holds (checked every 20 ms); fails after ``timeout_s``."""
    for _ in range(int(timeout_s / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not so after {timeout_s} s")


def test_a_planned_stage_counts_until_its_time_is_up() -> None:
    v = NodeView("b")
    v.planned_work["p1"] = (100.0, 3.0)
    v.planned_work["p2"] = (50.0, 2.0)
    v.sent_work["p3"] = (0.0, 1.0)
    assert v.backlog_s(40.0, 60.0) == pytest.approx(6.0)
    assert v.backlog_s(70.0, 60.0) == pytest.approx(3.0)  # p2's time and p3's lease are up
    assert v.backlog_s(101.0, 60.0) == 0.0


async def test_back_to_back_jobs_avoid_the_stages_planned_before_them(tmp_path: Path) -> None:
    bus = MemoryBus()
    clock = WallClock(epoch=T0)
    async with (
        GroundStation(bus, clock, tmp_path / "archive", tick_s=0.1, lease_s=30.0) as gs,
        GroundClient(bus, clock, client_id="t", timeout_s=5) as gc,
        bus.subscribe("odc/sat/+/job") as jobs,
        asyncio.TaskGroup() as tg,
    ):
        queued = dict.fromkeys(NODES, 0.0)  # what each heartbeat reports: all idle
        leases: dict[str, dict[str, int]] = {n: {} for n in NODES}
        for node in NODES:
            await bus.publish(topics.status(node), dump(Status(node=node, state="online",
                                                               t=T0)), retain=True)

        async def heartbeats() -> None:
            while True:
                for node in NODES:
                    await beat(bus, node, queued[node], leases[node])
                await asyncio.sleep(0.1)

        beating = tg.create_task(heartbeats())
        plan = partition(DIGITS.read_bytes(), 3)
        stages = [await gc.upload_bytes(s.model) for s in plan.stages]
        for node in NODES:  # every node holds every stage model: only backlogs differ
            for model in stages:
                await bus.publish(topics.event(node),
                                  dump(ModelStored(node=node, t=T0, model=model)))
        await until(lambda: all(set(stages) <= gs.nodes[n].models for n in NODES))
        flops = [analyse(gs.store.path(m), model_hash=m).flops_per_item for m in stages]
        assert min(flops) > 0

        def stage_s(k: int, items: int) -> float:
            return flops[k] * items / OPS

        async def next_job() -> tuple[str, JobSubmit]:
            msg = await asyncio.wait_for(jobs.get(), 5.0)
            node = topics.node_from_topic(msg.topic)
            assert node is not None
            return node, parse(JobSubmit, msg.payload)

        await gc.submit(stages[0], {"input": digits_inputs(8)}, stages=stages, job_id="p1")
        await gc.submit(stages[0], {"input": digits_inputs(8)}, stages=stages, job_id="p2")
        node1, p1 = await next_job()
        node2, p2 = await next_job()
        assert p1.pipeline is not None and p2.pipeline is not None
        assert (node1, p1.pipeline.members) == ("a", ["a", "b", "c"])
        # b and c look idle in their heartbeats, but p1's stages 1 and 2 are on their way
        # to them: p2 takes the three nodes with nothing planned (counting only the job
        # sent to a, it took b, c, d)
        assert (node2, p2.pipeline.members) == ("d", ["d", "e", "f"])
        now = clock.now()
        b, c = gs.nodes["b"], gs.nodes["c"]
        assert b.planned_work["p1"][1] == pytest.approx(stage_s(1, 8))
        assert c.planned_work["p1"][1] == pytest.approx(stage_s(2, 8))
        assert b.backlog_s(now, gs.lease_s) == pytest.approx(stage_s(1, 8))
        assert gs.nodes["a"].backlog_s(now, gs.lease_s) == pytest.approx(stage_s(0, 8))
        # stage 1 reaches b (epoch 1): its heartbeat lists the job and reports its queue;
        # the planned entry is gone, so the stage counts once, in the reported queue
        queued["b"] = stage_s(1, 8) + 0.5
        leases["b"] = {"p1": 1}
        await until(lambda: "p1" not in b.planned_work)
        await until(lambda: b.state is not None and b.state.queued_work_s > 0)
        assert b.backlog_s(clock.now(), gs.lease_s) == pytest.approx(stage_s(1, 8) + 0.5)
        assert "p1" in c.planned_work  # stage 2 has not reached c

        # a job streamed in two micro-batches of 4 items: both go on one chain, and each
        # books its own stages on the members after the first
        await gc.submit(stages[0], {"input": digits_inputs(8)}, stages=stages, job_id="p3",
                        micro_batches=2)
        got = [await next_job(), await next_job()]
        children = {j.job_id: j for _, j in got}
        assert sorted(children) == ["p3.mb000", "p3.mb001"]
        chains = {tuple(j.pipeline.members) for j in children.values() if j.pipeline}
        assert len(chains) == 1
        members = next(iter(chains))
        for k in (1, 2):
            view = gs.nodes[members[k]]
            assert {j: w for j, (_, w) in view.planned_work.items() if j.startswith("p3")} \
                == pytest.approx({j: stage_s(k, 4) for j in children})
        # the job's chain ends (a member gives it back, or it lapses, or its result comes):
        # what it planned is dropped everywhere
        gs._forget_sent("p3.mb000")
        assert all("p3.mb000" not in gs.nodes[n].planned_work for n in NODES)
        assert "p3.mb001" in gs.nodes[members[1]].planned_work
        beating.cancel()
