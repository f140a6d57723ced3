"""Training jobs at real in-process nodes on the memory bus: members stay in lockstep,
a missing member or one training another plan fails the job, bad jobs are refused; a job
resumes from a state and checkpoints, an older epoch's gradient is refused, a newer epoch
supersedes a running one."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from node_harness import kind, running_node, wait_for

from flightsw.bus import MemoryBus
from flightsw.clock import WallClock
from flightsw.models.mlp_train import (
    Adam,
    init_params,
    shard_gradient,
    step_flops_per_item,
    train_local,
)
from flightsw.node.spec import NodeSpec
from flightsw.node.training import state_of
from flightsw.protocol import Command, dump, parse, topics
from flightsw.protocol.auth import sign_command
from flightsw.protocol.codec import encode
from flightsw.protocol.messages import Tensor
from flightsw.protocol.training import (
    TrainCheckpoint,
    TrainDone,
    TrainGrad,
    TrainJob,
    grad_topic,
    train_inbox,
)
from hardware_profiles import load_profile

T0 = 1_790_000_000.0
SIZES = [8, 6, 3]


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 40)
    x = rng.standard_normal((40, 8)) * 0.5
    x[np.arange(40), y] += 1.5
    return x, y


def train_job(node_rows: np.ndarray, members: list[str], **kw: Any) -> TrainJob:
    x, y = data()
    fields: dict[str, Any] = {"job_id": "t1", "members": members, "sizes": SIZES, "seed": 7,
                              "steps": 12, "lr": 0.05, "total_items": 40,
                              "x": Tensor.from_array(x[node_rows]),
                              "y": Tensor.from_array(y[node_rows])}
    fields.update(kw)
    return TrainJob(**fields)


async def test_two_members_stay_in_lockstep_and_match_one_node(tmp_path: Path) -> None:
    bus = MemoryBus()
    clock = WallClock(epoch=T0)
    members = ["n1", "n2"]
    shards = [np.arange(0, 25), np.arange(25, 40)]  # unequal shards: the sum still adds up
    async with contextlib.AsyncExitStack() as stack:
        for n in members:
            await stack.enter_async_context(running_node(bus, clock, tmp_path / n, node_id=n))
        sub = await stack.enter_async_context(bus.subscribe("odc/sat/+/train/t1/done"))
        for n, rows in zip(members, shards, strict=True):
            await bus.publish(train_inbox(n), dump(train_job(rows, members)))
        done = [parse(TrainDone, (await wait_for(sub, kind("train_done")))[0].payload)
                for _ in members]
    assert sorted(d.node for d in done) == members
    assert all(d.status == "done" and d.steps == 12 and d.messages_in >= 12 for d in done)
    a, b = ([t.to_array() for t in d.params] for d in done)
    for p, q in zip(a, b, strict=True):
        assert np.array_equal(p, q)
    x, y = data()
    ref = train_local(SIZES, x, y, steps=12, lr=0.05, seed=7)
    for p, r in zip(a, ref, strict=True):
        np.testing.assert_allclose(p, r, rtol=0, atol=1e-10)
    assert done[0].losses[-1] < done[0].losses[0]
    # each step's gradient is modelled work at the fastest mode, its energy charged
    spec = NodeSpec.of(load_profile("jetson-orin-nano-super"))
    for d, rows in zip(sorted(done, key=lambda d: d.node), shards, strict=True):
        work = spec.work(step_flops_per_item(SIZES), 0.0, 8.0 * (8 * 6 + 6 + 6 * 3 + 3),
                         len(rows))
        assert d.modelled_compute_s == pytest.approx(12 * spec.seconds(work))
        extra = spec.fastest.watts - spec.profile.compute.idle_w
        assert d.modelled_energy_j == pytest.approx(extra * d.modelled_compute_s)
        assert d.modelled_energy_j > 0


async def test_a_missing_member_fails_the_job_naming_it(tmp_path: Path) -> None:
    bus = MemoryBus()
    clock = WallClock(epoch=T0, scale=20.0)
    async with (
        running_node(bus, clock, tmp_path / "n1", node_id="n1"),
        bus.subscribe("odc/sat/n1/train/t1/done") as sub,
        bus.subscribe("odc/sat/n1/train/t1/grad") as grads,
    ):
        job = train_job(np.arange(20), ["n1", "ghost"], step_timeout_s=20.0)
        await bus.publish(train_inbox("n1"), dump(job))
        msg, _ = await wait_for(sub, kind("train_done"), timeout=30)
    d = parse(TrainDone, msg.payload)
    assert d.status == "failed" and d.steps == 0 and not d.params
    assert d.reason == "step 0: no gradient from ghost within 20.0 s"
    # while it waited it published its gradient again (every 2 mission s, 20 s: ~10 times)
    assert grads.qsize() >= 5


async def test_a_member_training_another_plan_fails_the_job(tmp_path: Path) -> None:
    bus = MemoryBus()
    clock = WallClock(epoch=T0)
    async with contextlib.AsyncExitStack() as stack:
        for n in ("n1", "n2"):
            await stack.enter_async_context(running_node(bus, clock, tmp_path / n, node_id=n))
        sub = await stack.enter_async_context(bus.subscribe("odc/sat/+/train/t1/done"))
        await bus.publish(train_inbox("n1"), dump(train_job(np.arange(20), ["n1", "n2"])))
        await bus.publish(train_inbox("n2"),
                          dump(train_job(np.arange(20, 40), ["n1", "n2"], lr=0.1)))
        done = [parse(TrainDone, (await wait_for(sub, kind("train_done")))[0].payload)
                for _ in range(2)]
    for d in done:
        assert d.status == "failed" and "trains another plan" in (d.reason or ""), d


async def test_a_node_in_safe_mode_does_not_train(tmp_path: Path) -> None:
    bus = MemoryBus()
    cmd = sign_command(Command(cmd_id="s1", name="enter_safe", counter=1, t=T0), "k")
    async with (
        running_node(bus, WallClock(epoch=T0), tmp_path / "n1", node_id="n1",
                     command_key="k"),
        bus.subscribe(topics.ack("n1")) as acks,
        bus.subscribe("odc/sat/n1/train/t1/done") as sub,
    ):
        await bus.publish(topics.command("n1"), dump(cmd))
        _, ack = await wait_for(acks, kind("ack", cmd_id="s1"))
        assert ack["ok"], ack
        await bus.publish(train_inbox("n1"), dump(train_job(np.arange(10), ["n1"])))
        msg, _ = await wait_for(sub, kind("train_done"))
    d = parse(TrainDone, msg.payload)
    assert d.status == "failed" and d.reason == "safe mode: no training"


async def test_bad_training_jobs_are_refused_naming_the_field(tmp_path: Path) -> None:
    bus = MemoryBus()
    async with (
        running_node(bus, WallClock(epoch=T0), tmp_path / "n1", node_id="n1"),
        bus.subscribe(topics.event("n1")) as events,
    ):
        not_member = train_job(np.arange(10), ["n2", "n3"])
        await bus.publish(train_inbox("n1"), dump(not_member))
        _, err = await wait_for(events, kind("error", code="invalid_train_job"))
        assert err["field"] == "members" and "n1 is not one of" in err["message"]
        narrow = train_job(np.arange(10), ["n1"], sizes=[5, 3])
        await bus.publish(train_inbox("n1"), dump(narrow))
        _, err = await wait_for(events, kind("error", code="invalid_train_job"))
        assert err["field"] == "x" and "expected [items, 5]" in err["message"]
        for name, bad in (("steps", 0), ("members", ["n1", "n1"])):
            obj = train_job(np.arange(10), ["n1"]).model_dump(mode="python")
            obj[name] = bad
            await bus.publish(train_inbox("n1"), encode(obj))
            _, err = await wait_for(events, kind("error", code="invalid_train_job"))
            assert name in err["message"], err


def local_state(steps: int) -> tuple[list[np.ndarray], Adam, list[float]]:
    """One node's full-batch training of ``steps`` steps: parameters, Adam, losses."""
    x, y = data()
    params = init_params(SIZES, 7)
    opt = Adam(0.05)
    losses = []
    for _ in range(steps):
        loss, grads = shard_gradient(params, x, y, 40)
        losses.append(loss)
        params = opt.step(params, grads)
    return params, opt, losses


async def test_a_resumed_job_goes_on_from_its_state_and_sends_checkpoints(
    tmp_path: Path
) -> None:
    bus = MemoryBus()
    clock = WallClock(epoch=T0)
    members = ["n1", "n2"]
    shards = [np.arange(0, 13), np.arange(13, 40)]
    params, opt, _ = local_state(5)
    resume = state_of(5, params, opt)
    async with contextlib.AsyncExitStack() as stack:
        for n in members:
            await stack.enter_async_context(running_node(bus, clock, tmp_path / n, node_id=n))
        sub = await stack.enter_async_context(bus.subscribe("odc/sat/+/train/t1/done"))
        ckpts = await stack.enter_async_context(bus.subscribe("odc/sat/+/train/t1/ckpt"))
        for n, rows in zip(members, shards, strict=True):
            await bus.publish(train_inbox(n), dump(train_job(
                rows, members, epoch=2, resume=resume, checkpoint_every=3)))
        done = [parse(TrainDone, (await wait_for(sub, kind("train_done")))[0].payload)
                for _ in members]
        got = [parse(TrainCheckpoint, (await wait_for(ckpts, kind("train_ckpt")))[0].payload)
               for _ in range(3)]
        assert ckpts.qsize() == 0
    # it did not start over: 7 steps from step 5, and the result is 12 steps of one node
    for d in done:
        assert d.status == "done" and d.epoch == 2 and d.start_step == 5 and d.steps == 12
        assert len(d.losses) == 7
    ref_params, ref_opt, ref_losses = local_state(12)
    for p, r in zip((t.to_array() for t in done[0].params), ref_params, strict=True):
        np.testing.assert_allclose(p, r, rtol=0, atol=1e-10)
    np.testing.assert_allclose(done[0].losses, ref_losses[5:], rtol=1e-12)
    # the first member checkpoints after steps 6 and 9 (every 3rd) and after the last
    assert [(c.node, c.epoch, c.state.step) for c in got] == [("n1", 2, 6), ("n1", 2, 9),
                                                              ("n1", 2, 12)]
    last = got[-1]
    assert len(last.losses) == 7 and last.state.adam_t == ref_opt.t == 12
    for t, r in zip(last.state.adam_v, ref_opt.v, strict=True):
        np.testing.assert_allclose(t.to_array(), r, rtol=1e-9, atol=1e-18)


async def test_a_gradient_of_an_older_epoch_is_refused_never_added(tmp_path: Path) -> None:
    bus = MemoryBus()
    clock = WallClock(epoch=T0)
    members = ["n1", "n2"]
    shards = [np.arange(0, 20), np.arange(20, 40)]
    job = train_job(shards[0], members, epoch=1)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(running_node(bus, clock, tmp_path / "n1", node_id="n1"))
        sub = await stack.enter_async_context(bus.subscribe("odc/sat/+/train/t1/done"))
        grads = await stack.enter_async_context(bus.subscribe("odc/sat/n1/train/t1/grad"))
        await bus.publish(train_inbox("n1"), dump(job))
        await wait_for(grads, kind("train_grad", step=0))  # n1 waits for n2's step 0
        # n2's late gradient of its epoch-0 run (same step, same shapes, wild values)
        wild = [np.full(p.shape, 1e3) for p in init_params(SIZES, 0)]
        late = TrainGrad(job_id="t1", node="n2", plan=train_job(
            shards[1], members, epoch=0).plan_sha256(), step=0, loss=5.0,
            grads=[Tensor.from_array(g) for g in wild], epoch=0)
        for _ in range(3):
            await bus.publish(grad_topic("n2", "t1"), dump(late))
        await stack.enter_async_context(running_node(bus, clock, tmp_path / "n2", node_id="n2"))
        await bus.publish(train_inbox("n2"), dump(train_job(shards[1], members, epoch=1)))
        ends = [parse(TrainDone, (await wait_for(sub, kind("train_done")))[0].payload)
                for _ in members]
    done = {d.node: d for d in ends}
    assert done["n1"].status == "done" and done["n1"].stale_in == 3
    assert done["n2"].stale_in == 0
    x, y = data()
    ref = train_local(SIZES, x, y, steps=12, lr=0.05, seed=7)
    for p, r in zip((t.to_array() for t in done["n1"].params), ref, strict=True):
        np.testing.assert_allclose(p, r, rtol=0, atol=1e-10)


async def test_a_newer_epoch_supersedes_the_running_one(tmp_path: Path) -> None:
    bus = MemoryBus()
    clock = WallClock(epoch=T0)
    async with (
        running_node(bus, clock, tmp_path / "n1", node_id="n1"),
        bus.subscribe("odc/sat/n1/train/t1/done") as sub,
        bus.subscribe("odc/sat/n1/train/t1/grad") as grads,
    ):
        await bus.publish(train_inbox("n1"), dump(train_job(np.arange(40), ["n1", "ghost"])))
        await wait_for(grads, kind("train_grad", step=0))  # epoch 0 waits for ghost
        await bus.publish(train_inbox("n1"), dump(train_job(np.arange(40), ["n1"], epoch=1)))
        first = parse(TrainDone, (await wait_for(sub, kind("train_done")))[0].payload)
        second = parse(TrainDone, (await wait_for(sub, kind("train_done")))[0].payload)
        # epoch 0 sent again (a late delivery) is ignored: no third end
        await bus.publish(train_inbox("n1"), dump(train_job(np.arange(40), ["n1", "ghost"])))
        with pytest.raises(TimeoutError):
            await wait_for(sub, kind("train_done"), timeout=1.0)
    assert (first.epoch, first.status, first.reason, first.steps) == (
        0, "failed", "superseded by epoch 1", 0)
    assert (second.epoch, second.status, second.steps) == (1, "done", 12)


async def test_a_resume_state_that_does_not_fit_is_refused(tmp_path: Path) -> None:
    bus = MemoryBus()
    params, opt, _ = local_state(2)
    async with (
        running_node(bus, WallClock(epoch=T0), tmp_path / "n1", node_id="n1"),
        bus.subscribe(topics.event("n1")) as events,
    ):
        bad = state_of(2, params, opt)
        bad.adam_m[1] = Tensor.from_array(np.zeros(5))
        await bus.publish(train_inbox("n1"), dump(train_job(np.arange(10), ["n1"],
                                                            resume=bad)))
        _, err = await wait_for(events, kind("error", code="invalid_train_job"))
        assert err["field"] == "resume"
        assert err["message"] == "resume.adam_m[1]: expected finite float64 [6], got " \
            "float64 [5]"
        late = train_job(np.arange(10), ["n1"], resume=state_of(2, params, opt))
        obj = late.model_dump(mode="python")
        obj["steps"] = 2
        await bus.publish(train_inbox("n1"), encode(obj))
        _, err = await wait_for(events, kind("error", code="invalid_train_job"))
        assert "resume.step: 2 is not below steps 2" in err["message"], err
