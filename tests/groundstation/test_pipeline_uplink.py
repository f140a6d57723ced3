"""The ground's uplink of a pipeline job, in process (a MemoryBus and fake nodes whose
statuses, heartbeats and model events the test publishes): the group leaves out a node
whose heartbeat is stale, each member gets its stage model, stage 0 goes with the group;
when the holder goes offline the whole pipeline is re-planned, holders of stage models
first; when a member gives the job back after its stage (the next member throttled), the
stages left are re-planned on the usable nodes from its outputs, once; a return with
another model than its stage's, or of no stage past the chain's start, is refused, and one
after the end is a duplicate."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from node_harness import DIGITS, digits_inputs
from onnx import TensorProto, helper

from flightsw.bus import MemoryBus, Subscription
from flightsw.clock import WallClock
from flightsw.models.cost import analyse
from flightsw.models.partition import partition
from flightsw.node.pipeline import next_stage
from flightsw.protocol import (
    JobEvent,
    JobResult,
    JobSubmit,
    ModelChunk,
    ModelStored,
    NodeState,
    Status,
    Tensor,
    dump,
    parse,
    topics,
)
from flightsw.protocol.messages import StageReturn
from groundstation.client import GroundClient
from groundstation.service import GroundStation

T0 = 1_790_000_000.0


async def beat(bus: MemoryBus, node: str, backlog_s: float, temperature_c: float = 20.0) -> None:
    st = NodeState(node=node, t=T0, soc=0.8, battery_wh=100.0, floor_wh=20.0,
                   temperature_c=temperature_c, throttle_c=80.0, queue_depth=0,
                   queued_work_s=backlog_s, sunlit=1.0, next_eclipse_s=None, eclipse_s=0.0,
                   effective_ops_per_s=1e9, power_w=10.0, position_km=[7000.0, 0.0, 0.0],
                   isl_rate_bps=10e9, isl_max_range_km=2000.0)  # all close: all linked
    await bus.publish(topics.state(node), dump(st), qos=0)


async def status(bus: MemoryBus, node: str, state: str) -> None:
    await bus.publish(topics.status(node), dump(Status(node=node, state=state, t=T0)),  # type: ignore[arg-type]
                      retain=True)


async def stored(bus: MemoryBus, node: str, model: str) -> None:
    await bus.publish(topics.event(node), dump(ModelStored(node=node, t=T0, model=model)))


async def models_sent(sub: Subscription, want: set[tuple[str, str]]) -> None:
    """Until every (node, model) of ``want`` has had a chunk."""
    seen: set[tuple[str, str]] = set()
    while not want <= seen:
        msg = await asyncio.wait_for(sub.get(), 5.0)
        node = topics.node_from_topic(msg.topic)
        assert node is not None
        seen.add((node, parse(ModelChunk, msg.payload).model))


async def test_the_group_skips_stale_nodes_and_is_replanned_when_the_holder_goes(
    tmp_path: Path,
) -> None:
    bus = MemoryBus()
    clock = WallClock(epoch=T0)
    async with (
        GroundStation(bus, clock, tmp_path / "archive", tick_s=0.1, lease_s=1.0) as gs,
        GroundClient(bus, clock, client_id="t", timeout_s=5) as gc,
        bus.subscribe("odc/sat/+/job") as jobs,
        bus.subscribe("odc/sat/+/model") as chunks,
        asyncio.TaskGroup() as tg,
    ):
        await status(bus, "a0", "online")
        await beat(bus, "a0", 0.0)  # the best by backlog and name, but it falls silent
        await asyncio.sleep(1.3)
        live = {"a": 50.0, "b": 0.0, "c": 10.0, "e": 20.0}  # node -> backlog s
        for node in live:
            await status(bus, node, "online")

        async def heartbeats() -> None:
            while True:
                for node, backlog in list(live.items()):
                    await beat(bus, node, backlog)
                await asyncio.sleep(0.2)

        beating = tg.create_task(heartbeats())  # cancelled by the group if the test fails
        plan = partition(DIGITS.read_bytes(), 3)
        stages = [await gc.upload_bytes(s.model) for s in plan.stages]
        await gc.submit(stages[0], {"input": digits_inputs(4)}, stages=stages, job_id="p1")
        # least backlog first: b, c, e; each is sent its stage model, and nothing goes
        # before stage 0's node holds its model
        await models_sent(chunks, {("b", stages[0]), ("c", stages[1]), ("e", stages[2])})
        assert jobs.qsize() == 0
        await stored(bus, "c", stages[1])
        await stored(bus, "e", stages[2])
        await stored(bus, "b", stages[0])
        msg = await asyncio.wait_for(jobs.get(), 5.0)
        job = parse(JobSubmit, msg.payload)
        assert topics.node_from_topic(msg.topic) == "b"
        assert job.pipeline is not None and job.model == stages[0] and job.epoch == 0
        assert job.pipeline.members == ["b", "c", "e"] and job.pipeline.stage == 0
        rec = await gc.job("p1")
        assert (rec.state, rec.node, rec.stages, rec.attempts) == ("uplinked", "b", 3, 1)
        # the holder goes offline: re-planned from stage 0 with epoch 1; c and e hold their
        # stage models and keep their stages, stage 0 goes to a, which gets its model first
        del live["b"]
        await status(bus, "b", "offline")
        await models_sent(chunks, {("a", stages[0])})
        await stored(bus, "a", stages[0])
        msg = await asyncio.wait_for(jobs.get(), 5.0)
        again = parse(JobSubmit, msg.payload)
        assert topics.node_from_topic(msg.topic) == "a"
        assert again.pipeline is not None and again.epoch == 1
        assert again.pipeline.members == ["a", "c", "e"]
        assert again.inputs == job.inputs  # the original inputs again
        rec = await gc.job("p1")
        assert (rec.state, rec.node, rec.epoch, rec.attempts) == ("uplinked", "a", 1, 2)
        assert gs.nodes["a0"].state is not None  # a0 is known, only stale
        beating.cancel()


async def test_a_job_given_back_after_a_stage_is_replanned_from_its_outputs_once(
    tmp_path: Path,
) -> None:
    bus = MemoryBus()
    clock = WallClock(epoch=T0)
    async with (
        GroundStation(bus, clock, tmp_path / "archive", tick_s=0.1, lease_s=5.0) as gs,
        GroundClient(bus, clock, client_id="t", timeout_s=5) as gc,
        bus.subscribe("odc/sat/+/job") as jobs,
        bus.subscribe("odc/sat/+/model") as chunks,
        asyncio.TaskGroup() as tg,
    ):
        live = {"a": 50.0, "b": 0.0, "c": 10.0, "e": 20.0}  # node -> backlog s
        hot: set[str] = set()
        for node in live:
            await status(bus, node, "online")

        async def heartbeats() -> None:
            while True:
                for node, backlog in list(live.items()):
                    await beat(bus, node, backlog, 95.0 if node in hot else 20.0)
                await asyncio.sleep(0.1)

        beating = tg.create_task(heartbeats())
        plan = partition(DIGITS.read_bytes(), 3)
        stages = [await gc.upload_bytes(s.model) for s in plan.stages]
        await gc.submit(stages[0], {"input": digits_inputs(4)}, stages=stages, job_id="p1")
        await models_sent(chunks, {("b", stages[0]), ("c", stages[1]), ("e", stages[2])})
        for node, k in (("c", 1), ("e", 2), ("b", 0)):
            await stored(bus, node, stages[k])
        job = parse(JobSubmit, (await asyncio.wait_for(jobs.get(), 5.0)).payload)
        assert job.pipeline is not None and job.pipeline.members == ["b", "c", "e"]
        # c, which holds stage 1's model, runs hot: b finishes stage 0 and gives it back
        hot.add("c")
        await asyncio.sleep(0.3)
        acts = {"h": Tensor.from_array(np.arange(8, dtype=np.float32).reshape(4, 2))}
        back = StageReturn(node="b", epoch=0, t=T0, reason="stage 0 done; next member c "
                           "throttled (95.0 C > 80.0 C)", job=next_stage(job, acts, 1.5, 2.0,
                                                                          T0, T0 + 1))
        # first a return whose job carries another model than the plan's stage 1: refused,
        # naming the field, and counted; nothing is stored or uplinked
        wrong = back.model_copy(update={"job": back.job.model_copy(
            update={"model": stages[2]})})
        await bus.publish(topics.result("b"), dump(wrong))
        await asyncio.sleep(0.3)
        rec = await gc.job("p1")
        assert (gs.rejected, rec.replans, rec.epoch, jobs.qsize()) == (1, 0, 0, 0)
        await bus.publish(topics.result("b"), dump(back))
        # stages 1-2 re-planned without c: stage 1 on b (least backlog, in contact), stage
        # 2 stays on e (it holds the model); b gets stage 1's model first
        await models_sent(chunks, {("b", stages[1])})
        await stored(bus, "b", stages[1])
        msg = await asyncio.wait_for(jobs.get(), 5.0)
        again = parse(JobSubmit, msg.payload)
        assert topics.node_from_topic(msg.topic) == "b"
        p = again.pipeline
        assert p is not None and (again.epoch, again.model) == (1, stages[1])
        assert (p.stage, p.start, p.members) == (1, 1, ["b", "b", "e"])
        assert again.inputs == acts  # stage 0's outputs: stage 0 is not run again
        assert (p.spent_s, p.spent_j, p.accepted_at) == (1.5, 2.0, T0)
        rec = await gc.job("p1")
        assert (rec.state, rec.epoch, rec.attempts, rec.replans) == ("uplinked", 1, 2, 1)
        # b gives back stage 1 it was just given, not run (no stage past the chain's
        # start, 1): refused, counted, nothing sent
        assert again.pipeline is not None
        idle = StageReturn(node="b", epoch=1, t=T0, reason="stage 0 done; next member b "
                           "in safe mode", job=again.model_copy(update={"epoch": 2}))
        await bus.publish(topics.result("b"), dump(idle))
        await asyncio.sleep(0.3)
        rec = await gc.job("p1")
        assert (gs.rejected, rec.replans, rec.epoch, jobs.qsize()) == (2, 1, 1, 0)
        # the same return again, late, and a result at the old epoch: stale, nothing sent
        await bus.publish(topics.result("b"), dump(back))
        late = JobResult(job_id="p1", epoch=0, node="b", status="done", outputs=acts)
        await bus.publish(topics.result("b"), dump(late))
        await asyncio.sleep(0.5)
        assert jobs.qsize() == 0 and gs.stale == 2
        # b runs stage 1 and hands it to e, whose result ends the job once
        await bus.publish(topics.event("b"), dump(JobEvent(
            job_id="p1", epoch=1, node="b", state="handed_over", t=T0, target="e")))
        done = JobResult(job_id="p1", epoch=2, node="e", status="done", outputs=acts)
        await bus.publish(topics.result("e"), dump(done))
        await bus.publish(topics.result("e"), dump(done))
        rec = await gc.wait("p1", timeout_s=5)
        assert (rec.state, rec.epoch, rec.node, rec.replans) == ("done", 2, "e", 1)
        await asyncio.sleep(0.2)
        rec = await gc.job("p1")
        assert rec.duplicates == 1 and jobs.qsize() == 0
        # a return after the end counts as a duplicate, as a result would (judge_result)
        await bus.publish(topics.result("b"), dump(back))
        await asyncio.sleep(0.2)
        rec = await gc.job("p1")
        assert (rec.duplicates, gs.duplicates, gs.stale, rec.replans) == (2, 2, 2, 1)
        assert jobs.qsize() == 0
        beating.cancel()


async def test_a_stage_model_that_cannot_be_analysed_is_tried_and_warned_about_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The ground analyses each stage model's cost once per model for its uplink passes:
    one whose graph is empty is remembered as such (one analysis, one warning over many
    passes); one not in the store yet is tried again once it is there."""
    calls: list[str] = []

    def counted(source: Any, **kw: Any) -> Any:
        calls.append(str(kw.get("model_hash")))
        return analyse(source, **kw)

    monkeypatch.setattr("groundstation.service.analyse", counted)
    # a valid ONNX model (the store takes it) whose graph is empty: no cost model
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    empty = helper.make_model(helper.make_graph([], "empty", [x], [x])).SerializeToString()
    bus = MemoryBus()
    async with GroundStation(bus, WallClock(epoch=T0), tmp_path / "archive", tick_s=0.1) as gs:
        bad = gs.store.put(empty)
        good_bytes = partition(DIGITS.read_bytes(), 2).stages[1].model
        good = hashlib.sha256(good_bytes).hexdigest()
        with caplog.at_level(logging.INFO, logger="groundstation"):
            for _ in range(3):  # three uplink passes over a job with these stages
                bounds, _ = gs._pipeline_figures([bad, good], 4, [])
                assert bounds == [0]
            assert gs.store.put(good_bytes) == good
            bounds, _ = gs._pipeline_figures([bad, good], 4, [])
        assert bounds[0] > 0  # stage 1's inputs for 4 items, now that it can be read
        warned = [r for r in caplog.records if r.levelno == logging.WARNING
                  and "no cost model of stage" in r.getMessage()]
        assert len(warned) == 1 and bad[:12] in warned[0].getMessage()
        assert calls.count(bad) == 1 and calls.count(good) == 1
