"""Micro-batch streaming of a pipeline job at the ground (groundstation.microbatch).

The split and the join on their own; the refused submissions (the field named); and in
process (a MemoryBus, fake nodes whose statuses, heartbeats, events and results the test
publishes): a job of 4 micro-batches becomes a parent row and 4 child pipeline jobs, all
uplinked on one chain in one pass; the parent ends once, done when the last child is,
with the children's outputs joined in order; a failed child fails it, naming the child;
and a ground restarted between a child's result and its parent's end ends the parent then,
once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from node_harness import DIGITS, digits_inputs

from flightsw.bus import MemoryBus, Subscription
from flightsw.clock import WallClock
from flightsw.models.partition import partition
from flightsw.protocol import (
    JobEvent,
    JobResult,
    JobSubmit,
    ModelStored,
    NodeState,
    Status,
    decode,
    dump,
    parse,
    topics,
)
from flightsw.protocol.messages import arrays_to_tensors
from flightsw.protocol.warrant import inputs_sha256
from groundstation.client import GroundClient
from groundstation.exceptions import GroundError, RequestError
from groundstation.jobtable import JobTable
from groundstation.microbatch import (
    check_micro_batches,
    child_id,
    join_results,
    split_inputs,
)
from groundstation.protocol import JobRecord, Reply, Request, SubmitJob, job_topic
from groundstation.service import GroundStation

T0 = 1_790_000_000.0
NODES = {"a": 30.0, "b": 0.0, "c": 10.0, "e": 20.0}  # node -> backlog s


# -- the split and the join --------------------------------------------------------------
def test_split_cuts_every_input_along_the_first_axis_in_order() -> None:
    x = np.arange(10 * 3, dtype=np.float32).reshape(10, 3)
    ids = np.arange(10, dtype=np.int64)
    parts = split_inputs({"x": x, "ids": ids}, 4)
    assert [len(p["x"]) for p in parts] == [3, 3, 2, 2]  # numpy.array_split's sizes
    assert np.array_equal(np.concatenate([p["x"] for p in parts]), x)
    assert np.array_equal(np.concatenate([p["ids"] for p in parts]), ids)
    assert [int(p["ids"][0]) for p in parts] == [0, 3, 6, 8]
    assert all(p["x"].flags.c_contiguous for p in parts)


def _result(job_id: str, out: npt.NDArray[Any], finished: float, **kw: Any) -> JobResult:
    return JobResult(job_id=job_id, epoch=2, node=kw.pop("node", "e"), status="done",
                     outputs=arrays_to_tensors({"y": out, "label": out[:, 0].astype(np.int64)}),
                     items=len(out), finished_at=finished, **kw)


def test_join_concatenates_in_order_and_sums_the_figures() -> None:
    parent = JobSubmit(job_id="p", model="0" * 64,
                       inputs=arrays_to_tensors({"x": np.zeros((5, 2), np.float32)}),
                       submitted_at=100.0, value=2.0)
    y = np.arange(10, dtype=np.float32).reshape(5, 2)
    results = [
        _result("p.mb000", y[:3], 150.0, modelled_energy_j=2.0, host_wall_s=0.5,
                accepted_at=101.0, started_at=102.0, node="c"),
        _result("p.mb001", y[3:], 170.0, modelled_energy_j=3.0, host_wall_s=0.25,
                accepted_at=104.0, started_at=110.0, migrations=1),
    ]
    res = join_results(parent, results)
    got = res.arrays()
    assert np.array_equal(got["y"], y) and got["y"].dtype == np.float32
    assert np.array_equal(got["label"], y[:, 0].astype(np.int64))
    assert (res.job_id, res.status, res.items, res.node) == ("p", "done", 5, "e")
    assert res.modelled_latency_s == 70.0  # the parent's submission to the last end
    assert (res.modelled_energy_j, res.host_wall_s, res.migrations) == (5.0, 0.75, 1)
    assert (res.accepted_at, res.started_at, res.finished_at) == (101.0, 102.0, 170.0)
    assert (res.submitted_at, res.value) == (100.0, 2.0)


def test_join_refuses_outputs_that_do_not_join_naming_the_output() -> None:
    parent = JobSubmit(job_id="p", model="0" * 64,
                       inputs=arrays_to_tensors({"x": np.zeros((4, 2), np.float32)}))
    a = _result("p.mb000", np.zeros((2, 2), np.float32), 1.0)
    b = JobResult(job_id="p.mb001", epoch=2, node="e", status="done",
                  outputs=arrays_to_tensors({"y": np.zeros((2, 3), np.float32),
                                             "label": np.zeros(2, np.int64)}))
    with pytest.raises(GroundError, match=r"outputs\.y: micro-batch outputs do not join"):
        join_results(parent, [a, b])
    c = JobResult(job_id="p.mb001", epoch=2, node="e", status="done",
                  outputs=arrays_to_tensors({"y": np.zeros((2, 2), np.float32)}))
    with pytest.raises(GroundError, match=r"outputs\.label: not in the result of p\.mb001"):
        join_results(parent, [a, c])


@pytest.mark.parametrize(("job_id", "m", "items", "pipeline", "field", "words"), [
    ("p", 0, 10, True, "job.micro_batches", "at least 1"),
    ("p", 4, 10, False, "job.micro_batches", "give job.stages"),
    ("p", 257, 300, True, "job.micro_batches", "over the limit of 256"),
    ("p", 11, 10, True, "job.micro_batches", "would leave one empty"),
    ("x" * 123, 2, 10, True, "job.job_id", "at most 122 characters"),
])
def test_a_split_the_ground_cannot_make_is_refused_naming_the_field(
        job_id: str, m: int, items: int, pipeline: bool, field: str, words: str) -> None:
    with pytest.raises(RequestError, match=words) as got:
        check_micro_batches(job_id, m, items, pipeline)
    assert got.value.field == field


def test_children_ids_sort_in_the_order_of_their_parts_and_fit_the_id_rule() -> None:
    ids = [child_id("job-1", m) for m in range(256)]
    assert ids[:2] == ["job-1.mb000", "job-1.mb001"] and sorted(ids) == ids
    check_micro_batches("x" * 122, 256, 256, True)  # the longest parent id that fits
    JobSubmit(job_id=child_id("x" * 122, 255), model="0" * 64,
              inputs=arrays_to_tensors({"x": np.zeros(1)}))


def test_one_micro_batch_and_no_parent_stay_off_the_wire() -> None:
    job = {"job_id": "p", "model": "0" * 64,
           "inputs": arrays_to_tensors({"x": np.zeros((2, 1), np.float32)})}
    assert "micro_batches" not in SubmitJob.model_validate(job).model_dump()
    assert SubmitJob.model_validate({**job, "micro_batches": 3}).model_dump()[
        "micro_batches"] == 3
    rec = JobRecord(job_id="p", model="m", state="queued").model_dump()
    assert "parent" not in rec and "micro_batches" not in rec
    rec = JobRecord(job_id="p.mb000", model="m", state="queued", parent="p").model_dump()
    assert rec["parent"] == "p"


def test_an_old_job_table_gains_the_micro_batch_columns(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "jobs.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE jobs (job_id TEXT PRIMARY KEY, model, state, epoch, node, "
               "target, attempts, priority, deadline, value, items, submitted_at, "
               "uplinked_at, accepted_at, started_at, finished_at, host_wall_s, "
               "modelled_latency_s, modelled_energy_j, power_mode, migrations, duplicates, "
               "reason, detail, lease_seen, submit_blob BLOB NOT NULL, result_blob BLOB)")
    db.commit()
    db.close()
    table = JobTable(path)
    job = JobSubmit(job_id="old", model="0" * 64,
                    inputs=arrays_to_tensors({"x": np.zeros((1, 1), np.float32)}))
    table.insert(job, None, 1)
    rec = table.record("old")
    assert (rec.micro_batches, rec.parent, rec.stages) == (0, None, 0)
    table.close()


# -- at the ground, in process ------------------------------------------------------------
async def _beat(bus: MemoryBus, node: str, backlog_s: float,
                temperature_c: float = 20.0) -> None:
    st = NodeState(node=node, t=T0, soc=0.8, battery_wh=100.0, floor_wh=20.0,
                   temperature_c=temperature_c, throttle_c=80.0, queue_depth=0,
                   queued_work_s=backlog_s, sunlit=1.0, next_eclipse_s=None, eclipse_s=0.0,
                   effective_ops_per_s=1e9, power_w=10.0, position_km=[7000.0, 0.0, 0.0],
                   isl_rate_bps=10e9, isl_max_range_km=2000.0)  # all close: all linked
    await bus.publish(topics.state(node), dump(st), qos=0)


@asynccontextmanager
async def fake_nodes(bus: MemoryBus, stages: list[str] | None = None,
                     hot: frozenset[str] = frozenset()) -> AsyncIterator[None]:
    """The nodes of ``NODES`` online, beating every 0.1 s, holding every stage model; those
    in ``hot`` above their throttle temperature."""
    for node in NODES:
        await bus.publish(topics.status(node), dump(Status(node=node, state="online", t=T0)),
                          retain=True)
        for model in stages or []:
            await bus.publish(topics.event(node),
                              dump(ModelStored(node=node, t=T0, model=model)))

    async def beating() -> None:
        while True:
            for node, backlog in NODES.items():
                await _beat(bus, node, backlog, 90.0 if node in hot else 20.0)
            await asyncio.sleep(0.1)

    task = asyncio.create_task(beating())
    try:
        yield
    finally:
        task.cancel()


async def uplinked(jobs: Subscription, n: int) -> list[tuple[str, JobSubmit]]:
    got = []
    for _ in range(n):
        msg = await asyncio.wait_for(jobs.get(), 5.0)
        node = topics.node_from_topic(msg.topic)
        assert node is not None
        got.append((node, parse(JobSubmit, msg.payload)))
    return got


async def run_through(bus: MemoryBus, job: JobSubmit, finished_at: float,
                      energy_j: float = 1.0) -> JobResult:
    """The chain of ``job`` runs it: each member hands it on, the last one reports its
    outputs (its inputs times 2, as ``y``)."""
    assert job.pipeline is not None
    members = job.pipeline.members
    for k in range(len(members) - 1):
        await bus.publish(topics.event(members[k]), dump(JobEvent(
            job_id=job.job_id, epoch=k, node=members[k], state="handed_over", t=T0,
            target=members[k + 1])))
    x = job.arrays()["input"]
    res = JobResult(job_id=job.job_id, epoch=len(members) - 1, node=members[-1],
                    status="done", outputs=arrays_to_tensors({"y": 2 * x}),
                    items=len(x), finished_at=finished_at, modelled_energy_j=energy_j)
    await bus.publish(topics.result(members[-1]), dump(res))
    return res


async def records(sub: Subscription, into: list[JobRecord]) -> None:
    async for msg in sub:
        into.append(parse(JobRecord, msg.payload))


def refusal(gs: GroundStation, job: dict[str, Any]) -> Reply:
    req = Request(req_id="r1", client="t", op="submit", args={"job": job})
    answer = gs.desk.answer(dump(req))
    assert answer is not None
    return parse(Reply, decode(answer[1]))


async def settled(gc: GroundClient, job_id: str, state: str) -> JobRecord:
    for _ in range(100):
        rec = await gc.job(job_id)
        if rec.state == state:
            return rec
        await asyncio.sleep(0.05)
    raise AssertionError(f"{job_id} never {state}: {rec}")


async def test_four_micro_batches_stream_on_one_chain_and_the_parent_ends_once(
    tmp_path: Path,
) -> None:
    bus = MemoryBus()
    clock = WallClock(epoch=T0)
    plan = partition(DIGITS.read_bytes(), 3)
    x = digits_inputs(10)
    seen: list[JobRecord] = []
    async with (
        GroundStation(bus, clock, tmp_path / "archive", tick_s=0.1, lease_s=30.0) as gs,
        GroundClient(bus, clock, client_id="t", timeout_s=5) as gc,
        bus.subscribe("odc/sat/+/job") as jobs,
        bus.subscribe(job_topic("p")) as parent_records,
        asyncio.TaskGroup() as tg,
    ):
        watcher = tg.create_task(records(parent_records, seen))
        stages = [await gc.upload_bytes(s.model) for s in plan.stages]
        async with fake_nodes(bus, stages):
            await asyncio.sleep(0.3)
            # refused, the field named: no stages, more parts than items, over 256, 0
            base = {"job_id": "r", "model": stages[0],
                    "inputs": arrays_to_tensors({"input": x})}
            for extra, field in (({"micro_batches": 2}, "job.micro_batches"),
                                 ({"micro_batches": 11, "stages": stages},
                                  "job.micro_batches"),
                                 ({"micro_batches": 257, "stages": stages},
                                  "job.micro_batches"),
                                 ({"micro_batches": 0, "stages": stages},
                                  "job.micro_batches"),
                                 ({"micro_batches": 2, "stages": stages,
                                   "job_id": "y" * 123}, "job.job_id")):
                rep = refusal(gs, {**base, **extra})
                assert not rep.ok and rep.field == field, (extra, rep)
            assert not gs.table.exists("r")
            await gc.submit(stages[0], {"input": x}, stages=stages, job_id="p",
                            micro_batches=4)
            sent = await uplinked(jobs, 4)
            # one pass, one chain: b (least backlog), c, e for every child, in order
            assert [j.job_id for _, j in sent] == [child_id("p", m) for m in range(4)]
            assert {n for n, _ in sent} == {"b"}
            for _, j in sent:
                assert j.pipeline is not None and j.pipeline.members == ["b", "c", "e"]
                assert j.pipeline.inputs_sha256 == inputs_sha256(j.inputs)
                assert (j.epoch, j.model, j.pipeline.stages) == (0, stages[0], stages)
            parts = [j.arrays()["input"] for _, j in sent]
            assert [len(p) for p in parts] == [3, 3, 2, 2]
            assert np.array_equal(np.concatenate(parts), x)
            listed = await gc.jobs()
            assert [(r.job_id, r.parent, r.micro_batches, r.items) for r in listed] == [
                ("p", None, 4, 10), *((child_id("p", m), "p", 0, len(parts[m]))
                                      for m in range(4))]
            rec = await settled(gc, "p", "running")
            assert (rec.stages, rec.attempts, rec.node) == (3, 4, None)
            # the children end out of order; the parent only with the last of them
            ends = {3: T0 + 40.0, 1: T0 + 30.0, 0: T0 + 20.0}
            for m, t in ends.items():
                await run_through(bus, sent[m][1], t, energy_j=1.0 + m)
                await settled(gc, child_id("p", m), "done")
            assert (await gc.job("p")).state == "running"
            await run_through(bus, sent[2][1], T0 + 35.0, energy_j=3.0)
            rec = await gc.wait("p", timeout_s=5)
            got = GroundClient.outputs(rec)
            assert np.array_equal(got["y"], 2 * x)  # joined in the order of the parts
            assert rec.modelled_latency_s == pytest.approx(T0 + 40.0 - rec.submitted_at)
            assert rec.modelled_energy_j == pytest.approx(1 + 2 + 3 + 4)
            assert (rec.items, rec.node, rec.finished_at) == (10, "e", T0 + 40.0)
            # a late copy of a child's result is that child's duplicate; the parent ended
            # once, and stays as it ended over the next passes
            await run_through(bus, sent[1][1], T0 + 50.0)
            await asyncio.sleep(0.5)
        watcher.cancel()
    assert [r.state for r in seen].count("done") == 1, [r.state for r in seen]
    table = JobTable(tmp_path / "archive" / "jobs.sqlite")
    assert table.row(child_id("p", 1))["duplicates"] == 1
    assert table.row("p")["finished_at"] == T0 + 40.0
    table.close()


async def test_a_failed_micro_batch_fails_the_parent_naming_it(tmp_path: Path) -> None:
    bus = MemoryBus()
    clock = WallClock(epoch=T0)
    plan = partition(DIGITS.read_bytes(), 3)
    x = digits_inputs(6)
    async with (
        GroundStation(bus, clock, tmp_path / "archive", tick_s=0.1, lease_s=30.0),
        GroundClient(bus, clock, client_id="t", timeout_s=5) as gc,
        bus.subscribe("odc/sat/+/job") as jobs,
    ):
        stages = [await gc.upload_bytes(s.model) for s in plan.stages]
        async with fake_nodes(bus, stages):
            await gc.submit(stages[0], {"input": x}, stages=stages, job_id="q",
                            micro_batches=2)
            sent = await uplinked(jobs, 2)
            job = sent[1][1]
            assert job.pipeline is not None
            first = job.pipeline.members[0]
            bad = JobResult(job_id=job.job_id, epoch=0, node=first, status="failed",
                            reason="inference: out of memory")
            await bus.publish(topics.result(first), dump(bad))
            with pytest.raises(GroundError, match=r"q\.mb001 failed: inference: out of mem"):
                await gc.wait("q", timeout_s=5)
            await run_through(bus, sent[0][1], T0 + 10.0)  # the other one ends later
            await settled(gc, child_id("q", 0), "done")
            rec = await gc.job("q")
            assert rec.state == "failed" and rec.reason is not None
            assert rec.reason.startswith("micro-batch q.mb001 failed")


async def test_a_restart_between_a_childs_end_and_the_parents_ends_it_once(
    tmp_path: Path,
) -> None:
    bus = MemoryBus()
    clock = WallClock(epoch=T0)
    plan = partition(DIGITS.read_bytes(), 3)
    x = digits_inputs(4)
    archive = tmp_path / "archive"
    async with (
        GroundStation(bus, clock, archive, tick_s=0.1, lease_s=30.0) as gs,
        GroundClient(bus, clock, client_id="t", timeout_s=5) as gc,
        bus.subscribe("odc/sat/+/job") as jobs,
    ):
        stages = [await gc.upload_bytes(s.model) for s in plan.stages]
        async with fake_nodes(bus, stages):
            await gc.submit(stages[0], {"input": x}, stages=stages, job_id="s",
                            micro_batches=2)
            sent = await uplinked(jobs, 2)
            await run_through(bus, sent[0][1], T0 + 5.0)
            await settled(gc, child_id("s", 0), "done")
            # the ground stops after recording the last child's result, before it could
            # end the parent (what a crash between the two commits leaves)
            gs._settle_parent = lambda job_id: None  # type: ignore[method-assign]
            await run_through(bus, sent[1][1], T0 + 6.0)
            await settled(gc, child_id("s", 1), "done")
            assert (await gc.job("s")).state == "running"
    seen: list[JobRecord] = []
    async with (
        bus.subscribe(job_topic("s")) as parent_records,
        GroundStation(bus, clock, archive, tick_s=0.1, lease_s=30.0),
        GroundClient(bus, clock, client_id="t2", timeout_s=5) as gc,
        asyncio.TaskGroup() as tg,
    ):
        watcher = tg.create_task(records(parent_records, seen))
        rec = await gc.wait("s", timeout_s=5)
        assert np.array_equal(GroundClient.outputs(rec)["y"], 2 * x)
        assert rec.finished_at == T0 + 6.0
        await asyncio.sleep(0.5)  # a few more passes
        watcher.cancel()
    assert [r.state for r in seen].count("done") == 1


# -- each part checked as a job of its own; a child's id; the counts; a reused chain ------
def _onnx(inputs: list[tuple[str, list[int | str]]], op: str, out: str = "y") -> bytes:
    """A one-node float graph ``out = op(inputs...)`` with the given input shapes."""
    from onnx import TensorProto, helper

    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n, shape in inputs]
    info = helper.make_tensor_value_info(out, TensorProto.FLOAT, inputs[0][1])
    graph = helper.make_graph([helper.make_node(op, [n for n, _ in inputs], [out])], "g",
                              ins, [info])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


@asynccontextmanager
async def desk(tmp_path: Path) -> AsyncIterator[tuple[GroundStation, str, str, str, str]]:
    """A ground (no nodes) holding a model with a fixed batch of 8 (``x`` (8, 4)), one
    with a rank-0 input (``x`` (N, 4) times ``s`` ()), one with neither (``x`` (N, 4))
    and a second stage for them."""
    bus = MemoryBus()
    clock = WallClock(epoch=T0)
    async with (
        GroundStation(bus, clock, tmp_path / "archive", tick_s=0.1, lease_s=30.0) as gs,
        GroundClient(bus, clock, client_id="t", timeout_s=5) as gc,
    ):
        fixed = await gc.upload_bytes(_onnx([("x", [8, 4])], "Relu"))
        scaled = await gc.upload_bytes(_onnx([("x", ["N", 4]), ("s", [])], "Mul"))
        free = await gc.upload_bytes(_onnx([("x", ["N", 4])], "Relu"))
        tail = await gc.upload_bytes(_onnx([("y", ["N", 4])], "Relu", "z"))
        yield gs, fixed, scaled, free, tail


X8 = np.arange(32, dtype=np.float32).reshape(8, 4)
S = np.array(3.0, dtype=np.float32)


def _free_job(free: str, tail: str) -> dict[str, Any]:
    return {"job_id": "r", "model": free, "stages": [free, tail],
            "inputs": arrays_to_tensors({"x": X8}), "micro_batches": 3}


async def test_a_part_that_does_not_suit_the_model_is_refused_at_submission(
    tmp_path: Path,
) -> None:
    async with desk(tmp_path) as (gs, fixed, _, _, tail):
        # a fixed batch of 8: the whole batch suits it, no part of 4 items does
        rep = refusal(gs, {"job_id": "f", "model": fixed, "stages": [fixed, tail],
                           "inputs": arrays_to_tensors({"x": X8}), "micro_batches": 2})
        assert not rep.ok and rep.field == "job.micro_batches", rep
        assert rep.error is not None
        assert "micro-batch 0 (f.mb000, 4 of 8 items)" in rep.error
        assert "dim 0 is 4, expected 8" in rep.error
        assert not gs.table.exists("f") and not gs.table.exists(child_id("f", 0))


async def test_an_input_of_rank_0_goes_whole_to_every_part(tmp_path: Path) -> None:
    async with desk(tmp_path) as (gs, _, scaled, _, tail):
        rep = refusal(gs, {"job_id": "r", "model": scaled, "stages": [scaled, tail],
                           "inputs": arrays_to_tensors({"x": X8, "s": S}),
                           "micro_batches": 3})
        assert rep.ok, rep
        kids = [gs.table.submitted(child_id("r", m)) for m in range(3)]
        assert [len(k.arrays()["x"]) for k in kids] == [3, 3, 2]
        assert np.array_equal(np.concatenate([k.arrays()["x"] for k in kids]), X8)
        for k in kids:
            got = k.arrays()["s"]
            assert got.shape == () and float(got) == 3.0
            assert k.pipeline is not None
            assert k.pipeline.inputs_sha256 == inputs_sha256(k.inputs)


async def test_a_micro_batched_job_counts_once_its_children_apart(tmp_path: Path) -> None:
    async with desk(tmp_path) as (gs, _, _, free, tail):
        assert refusal(gs, _free_job(free, tail)).ok
        assert refusal(gs, {"job_id": "plain", "model": tail,
                            "inputs": arrays_to_tensors({"y": X8})}).ok
        summary = gs.summary()
        assert summary["jobs"] == {"queued": 2}, summary  # r and plain
        assert summary["micro_batches"] == {"queued": 3}, summary


async def test_a_new_job_with_a_childs_id_is_refused_naming_the_parent(
    tmp_path: Path,
) -> None:
    async with desk(tmp_path) as (gs, _, _, free, tail):
        assert refusal(gs, _free_job(free, tail)).ok
        plain = {"job_id": child_id("r", 1), "model": tail,
                 "inputs": arrays_to_tensors({"y": X8})}
        rep = refusal(gs, plain)
        assert not rep.ok and rep.field == "job.job_id", rep
        assert rep.error is not None and "is a micro-batch of job r" in rep.error
        assert gs.table.submitted(child_id("r", 1)).model == free  # unchanged
        # the parent's own submission sent again is still its duplicate
        rep = refusal(gs, _free_job(free, tail))
        assert rep.ok and rep.data == {"job_id": "r", "duplicate": True}, rep


async def test_a_reused_chain_drops_a_member_that_throttled(tmp_path: Path) -> None:
    bus = MemoryBus()
    clock = WallClock(epoch=T0)
    plan = partition(DIGITS.read_bytes(), 3)
    x = digits_inputs(4)
    async with (
        GroundStation(bus, clock, tmp_path / "archive", tick_s=0.1, lease_s=30.0) as gs,
        GroundClient(bus, clock, client_id="t", timeout_s=5) as gc,
        bus.subscribe("odc/sat/+/job") as jobs,
    ):
        async def no_pass() -> None:
            return None

        gs._uplink_once = no_pass  # type: ignore[method-assign]  # this test runs the uplink
        stages = [await gc.upload_bytes(s.model) for s in plan.stages]
        async with fake_nodes(bus, stages, hot=frozenset({"c"})):
            await gc.submit(stages[0], {"input": x}, stages=stages, job_id="p",
                            micro_batches=2)
            await asyncio.sleep(0.3)  # heartbeats: c is above its throttle temperature
            # the first child went on b, c, e earlier in this pass; c has throttled since
            chains = {("p", 0): ["b", "c", "e"]}
            await gs._uplink_pipeline(gs.table.row(child_id("p", 1)), clock.now(),
                                      lambda v: True, chains)
            [(node, job)] = await uplinked(jobs, 1)
            assert job.job_id == child_id("p", 1) and job.pipeline is not None
            assert "c" not in job.pipeline.members, job.pipeline.members
            assert job.pipeline.members == ["b", "e", "a"]  # chosen afresh, by backlog
            assert chains[("p", 0)] == job.pipeline.members and node == "b"
