"""Pipeline stages at a real node (in-process, on the memory bus): which copies of a stage
it takes and from whom, the stage it passes on, and the job it gives back to the ground
when the next member is no longer usable."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from node_harness import kind, running_node, wait_for

from flightsw.bus import MemoryBus
from flightsw.clock import WallClock
from flightsw.models.partition import Plan, partition, run_stages
from flightsw.node.pipeline import follow_next, next_stage
from flightsw.node.service import Node
from flightsw.protocol import (
    Handover,
    JobSubmit,
    ModelChunk,
    NodeState,
    Tensor,
    dump,
    encode,
    parse,
    topics,
)
from flightsw.protocol.messages import Pipeline, StageReturn, arrays_to_tensors
from flightsw.protocol.warrant import WarrantSigner, inputs_sha256, new_warrant_key

T0 = 1_790_000_000.0


@functools.cache
def plan() -> Plan:
    """A 3-layer MLP from scikit-learn via skl2onnx, cut in two stages."""
    from skl2onnx import to_onnx
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    x, y = load_digits(return_X_y=True)
    clf = MLPClassifier(hidden_layer_sizes=(48, 32), max_iter=30, random_state=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(x[:400] / 16.0, y[:400])
    onx = to_onnx(clf, x[:1].astype(np.float32), options={"zipmap": False})
    return partition(onx.SerializeToString(), 2)


def digits(n: int) -> npt.NDArray[np.float32]:
    from sklearn.datasets import load_digits

    return np.asarray(load_digits().data[:n] / 16.0, dtype=np.float32)


async def put(bus: MemoryBus, node: str, data: bytes) -> str:
    h = hashlib.sha256(data).hexdigest()
    msg = ModelChunk(model=h, index=0, total=1, size=len(data), data=data)
    await bus.publish(topics.model(node), dump(msg))
    return h


async def neighbour(bus: MemoryBus, node: Node, peer: str, *, temperature_c: float = 20.0,
                    away_km: float = 200.0) -> None:
    """Publish ``peer``'s heartbeat ``away_km`` from ``node``, across its orbit (an optical
    terminal of 580 km), as ``node``'s migration rounds hear it."""
    here = node.budget.position_of(0)
    side = np.cross(here, [0.0, 0.0, 1.0])
    there = here + away_km * side / np.linalg.norm(side)
    st = NodeState(node=peer, t=node.clock.now(), soc=0.9, battery_wh=50.0, floor_wh=5.0,
                   temperature_c=temperature_c, throttle_c=80.0, queue_depth=0,
                   queued_work_s=0.0, sunlit=1.0, next_eclipse_s=None, eclipse_s=0.0,
                   effective_ops_per_s=1e12, power_w=10.0,
                   position_km=[float(v) for v in there], isl_rate_bps=20e6,
                   isl_max_range_km=580.0)
    await bus.publish(topics.state(peer), dump(st), qos=0)


@contextlib.asynccontextmanager
async def beating(bus: MemoryBus, node: Node, peer: str, **kw: float) -> AsyncIterator[None]:
    """``peer``'s heartbeats (see :func:`neighbour`) every 0.2 s while inside."""

    async def beat() -> None:
        while True:
            await neighbour(bus, node, peer, **kw)
            await asyncio.sleep(0.2)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()


def stage_job(stages: list[str], x: npt.NDArray[Any], stage: int = 0,
              members: list[str] | None = None, job_id: str = "p1") -> JobSubmit:
    inputs = arrays_to_tensors({"X": x})
    p = Pipeline(stages=stages, inputs_sha256=inputs_sha256(inputs), stage=stage,
                 members=members if members is not None else ["n1", "n2"])
    return JobSubmit(job_id=job_id, model=stages[stage], inputs=inputs, pipeline=p)


async def test_stage_zero_runs_and_is_handed_to_the_next_member_with_its_outputs(
    tmp_path: Path,
) -> None:
    priv, pub = new_warrant_key()
    (tmp_path / "ground.pub").write_text(pub)
    signer = WarrantSigner(bytes.fromhex(priv))
    bus = MemoryBus()
    pl = plan()
    x = digits(12)
    async with (
        running_node(bus, WallClock(epoch=T0), tmp_path / "n1",
                     ground_public_key_file=tmp_path / "ground.pub") as n1,
        bus.subscribe(topics.event("n1")) as events,
        bus.subscribe(topics.handover("n1", "n2")) as hops,
        bus.subscribe(topics.result("n1")) as results,
        beating(bus, n1, "n2"),  # heard, linked, cool: the stage goes to it
    ):
        stages = [await put(bus, "n1", s.model) for s in pl.stages]
        await wait_for(events, kind("model_stored", model=stages[1]))
        job = signer.sign(stage_job(stages, x))
        await bus.publish(topics.job("n1"), dump(job))
        _, ev = await wait_for(events, kind("job_event", job_id="p1", state="handed_over"))
        assert ev["target"] == "n2" and ev["epoch"] == 0
        assert ev["detail"].startswith("stage 0 done, stage 1 to n2")
        msg = await hops.get()
        h = parse(Handover, msg.payload)
        assert h.job.pipeline is not None and h.job.pipeline.stage == 1
        assert (h.job.epoch, h.job.model, h.job.warrant) == (1, stages[1], job.warrant)
        # the activations are stage 0's outputs, named as stage 1 reads them
        assert sorted(h.job.inputs) == sorted(pl.stages[1].inputs)
        assert results.qsize() == 0  # a stage before the last sends no result
        assert "p1" not in n1.following  # it followed n2 while it held the stage, no more


async def test_two_nodes_of_one_process_do_not_share_what_they_follow(
    tmp_path: Path,
) -> None:
    """A node host runs many nodes in one process, and a node restarted there is a new
    object under the same id: what one follows is its own, not its namesake's."""
    clock = WallClock(epoch=T0)
    job = stage_job(["a1" * 32, "b2" * 32], digits(2))
    async with (
        running_node(MemoryBus(), clock, tmp_path / "a") as a,
        running_node(MemoryBus(), clock, tmp_path / "b") as b,
    ):
        assert a.id == b.id == "n1" and a.config.policy == "local"
        follow_next(a, job)
        assert "p1" in a.following and "p1" not in b.following
        follow_next(b, job)
        assert a.following.end("p1") is not None
        assert "p1" in b.following


async def test_the_last_stage_takes_a_handover_from_the_member_before_only(
    tmp_path: Path,
) -> None:
    priv, pub = new_warrant_key()
    (tmp_path / "ground.pub").write_text(pub)
    signer = WarrantSigner(bytes.fromhex(priv))
    bus = MemoryBus()
    pl = plan()
    x = digits(12)
    stages = [hashlib.sha256(s.model).hexdigest() for s in pl.stages]
    first = signer.sign(stage_job(stages, x, members=["n0", "n1"]))
    # stage 0's outputs as onnxruntime gives them: what member n0 would pass on
    one = Plan(stages=pl.stages[:1], cuts=(), flops_per_item=0.0, slowest_stage_s_per_item=0.0)
    acts = run_stages(one, {"X": x})
    second = next_stage(first, arrays_to_tensors(acts))
    async with (
        running_node(bus, WallClock(epoch=T0), tmp_path / "n1",
                     ground_public_key_file=tmp_path / "ground.pub"),
        bus.subscribe(topics.event("n1")) as events,
        bus.subscribe(topics.result("n1")) as results,
    ):
        for s in pl.stages:
            await put(bus, "n1", s.model)
        await wait_for(events, kind("model_stored", model=second.model))
        # from the ground's job topic: refused, a later stage comes only from a member
        await bus.publish(topics.job("n1"), dump(second))
        _, err = await wait_for(events, kind("error", code="invalid_job"))
        assert err["field"] == "pipeline.stage" and "not from the ground" in err["message"]
        # from a node that is not the member before: refused
        forged = Handover(src="n7", dst="n1", t=T0, job=second)
        await bus.publish(topics.handover("n7", "n1"), dump(forged))
        _, err = await wait_for(events, kind("error", code="invalid_handover"))
        assert err["field"] == "pipeline.stage" and "not from n7" in err["message"]
        # a stage with another model than the signed plan's: the warrant fails
        assert second.pipeline is not None
        other_plan = second.pipeline.model_copy(update={"stages": [second.model] * 2})
        swapped = second.model_copy(update={"pipeline": other_plan})
        await bus.publish(topics.handover("n0", "n1"),
                          dump(Handover(src="n0", dst="n1", t=T0, job=swapped)))
        _, err = await wait_for(events, kind("error", code="invalid_handover"))
        assert err["field"] == "warrant"
        # from the member before: run, and the result is the whole model's outputs
        await bus.publish(topics.handover("n0", "n1"),
                          dump(Handover(src="n0", dst="n1", t=T0, job=second)))
        _, res = await wait_for(results, kind("result", job_id="p1", status="done"))
        assert res["epoch"] == 1
        want = run_stages(pl, {"X": x})
        assert sorted(res["outputs"]) == sorted(want)
        for name, arr in want.items():
            got = Tensor.model_validate(res["outputs"][name]).to_array()
            assert np.array_equal(got, arr), name


async def test_stage_zero_with_other_inputs_than_the_plan_names_is_refused(
    tmp_path: Path,
) -> None:
    bus = MemoryBus()
    pl = plan()
    async with (
        running_node(bus, WallClock(epoch=T0), tmp_path / "n1"),
        bus.subscribe(topics.event("n1")) as events,
    ):
        stages = [await put(bus, "n1", s.model) for s in pl.stages]
        job = stage_job(stages, digits(4))
        other = job.model_copy(update={"inputs": arrays_to_tensors({"X": digits(5)})})
        await bus.publish(topics.job("n1"), dump(other))
        _, err = await wait_for(events, kind("error", code="invalid_job"))
        assert err["field"] == "inputs" and "inputs_sha256" in err["message"]


async def test_a_stage_is_given_back_to_the_ground_when_the_next_member_is_unusable(
    tmp_path: Path,
) -> None:
    bus = MemoryBus()
    pl = plan()
    x = digits(12)
    async with (
        # a policy that listens to every peer's heartbeats (under ``local`` the node follows
        # the next member's only once it holds the stage, and this stage is short)
        running_node(bus, WallClock(epoch=T0), tmp_path / "n1", policy="least-loaded") as n1,
        bus.subscribe(topics.event("n1")) as events,
        bus.subscribe("odc/sat/n1/handover/+") as hops,
        bus.subscribe(topics.result("n1")) as results,
    ):
        stages = [await put(bus, "n1", s.model) for s in pl.stages]
        await wait_for(events, kind("model_stored", model=stages[1]))
        for k, (peer, why) in enumerate([
            ("n2", "throttled (95.0 C > 80.0 C)"),  # too hot
            ("n3", "no inter-satellite link"),  # 900 km away: beyond the 580 km terminal
        ]):
            kw = {"temperature_c": 95.0} if peer == "n2" else {"away_km": 900.0}
            async with beating(bus, n1, peer, **kw):
                await asyncio.sleep(0.3)  # heard
                job = stage_job(stages, x, members=["n1", peer], job_id=f"p{k}")
                await bus.publish(topics.job("n1"), dump(job.model_copy(update={"epoch": 3})))
                msg, _ = await wait_for(results, kind("stage_return"))
                ret = parse(StageReturn, msg.payload)
                assert (ret.node, ret.epoch, ret.job.job_id) == ("n1", 3, f"p{k}")
                assert ret.reason.startswith(f"stage 0 done; next member {peer} {why}"), ret.reason
                nxt = ret.job
                assert nxt.pipeline is not None and nxt.pipeline.stage == 1
                assert (nxt.epoch, nxt.model) == (4, stages[1])
                # the stage-0 outputs, as stage 1 reads them, equal bare onnxruntime's
                one = Plan(stages=pl.stages[:1], cuts=(), flops_per_item=0.0,
                           slowest_stage_s_per_item=0.0)
                want = run_stages(one, {"X": x})
                assert sorted(nxt.inputs) == sorted(want)
                for name, arr in want.items():
                    assert np.array_equal(nxt.inputs[name].to_array(), arr), name
        assert hops.qsize() == 0  # nothing went over a link


async def test_a_return_held_out_of_contact_keeps_its_lease_in_the_heartbeat(
    tmp_path: Path,
) -> None:
    """Out of contact the StageReturn waits in the downlink; meanwhile the job is no longer
    in the core, yet every heartbeat lists it (its lease) at the epoch the node held it at,
    and the first heartbeat after the return went down no longer does."""
    bus = MemoryBus()
    pl = plan()
    async with (
        running_node(bus, WallClock(epoch=T0), tmp_path / "n1", policy="least-loaded",
                     state_period_s=0.3, physics_step_s=0.1) as n1,
        bus.subscribe(topics.event("n1")) as events,
        bus.subscribe(topics.result("n1")) as results,
        bus.subscribe(topics.state("n1")) as states,
        beating(bus, n1, "n2", temperature_c=95.0),  # the next member: throttled
    ):
        stages = [await put(bus, "n1", s.model) for s in pl.stages]
        await wait_for(events, kind("model_stored", model=stages[1]))
        # the only station on the far side of the Earth: no contact for the test's span
        lat, lon, _ = n1.budget.geodetic_of(0)
        far = {"name": "far", "lat_deg": -float(lat), "lon_deg": (float(lon) + 360.0) % 360
               - 180.0, "alt_m": 0.0}
        await bus.publish(topics.GROUND_STATIONS,
                          encode({"stations": [far], "min_elevation_deg": 10.0}), retain=True)
        await asyncio.sleep(0.2)
        assert not n1.in_contact(n1.clock.now())
        await asyncio.sleep(0.3)  # n2 heard
        job = stage_job(stages, digits(6), members=["n1", "n2"])
        await bus.publish(topics.job("n1"), dump(job.model_copy(update={"epoch": 2})))
        for _ in range(100):  # stage 0 runs, n2's status is read (2 s), the return waits
            if n1.results_held:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # some heartbeats while it waits
        assert results.qsize() == 0 and n1.results_held == 1
        assert "p1" not in n1.core.leases()
        while states.qsize():
            states.get_nowait()
        _, st = await wait_for(states, kind("node_state"), timeout=2.0)
        assert st["leases"] == {"p1": 2}
        # back in contact (no station announced: always): the return goes down
        await bus.publish(topics.GROUND_STATIONS, b"", retain=True)
        msg, _ = await wait_for(results, kind("stage_return"), timeout=5.0)
        ret = parse(StageReturn, msg.payload)
        assert (ret.epoch, ret.job.epoch, ret.job.job_id) == (2, 3, "p1")
        assert n1.downlink.leases() == {}
        _, st = await wait_for(states, kind("node_state"), timeout=2.0)
        _, st = await wait_for(states, kind("node_state"), timeout=2.0)  # after the publish
        assert st["leases"] == {}
