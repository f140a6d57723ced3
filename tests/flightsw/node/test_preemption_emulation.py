"""Pre-emption for real (issue #12): over a real mosquitto, an urgent job suspends a long
one on a node at an item boundary; both finish exactly once, with outputs equal to bare
onnxruntime."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from mosquitto import MosquittoProcess
from node_harness import DETECTOR, kind, running_node, submit, upload, wait_for

from flightsw.bus import Subscription
from flightsw.bus.mqtt import MqttBus
from flightsw.clock import WallClock
from flightsw.models.cost import analyse
from flightsw.protocol import Handover, JobEvent, JobResult, JobSubmit, decode, dump, parse, topics
from flightsw.protocol.messages import Progress, Tensor
from flightsw.timeutil import parse_iso

pytestmark = pytest.mark.mqtt

EPOCH = parse_iso("2026-03-20T00:00:00Z")
SECONDS_PER_ITEM = 5.0  # modelled, at the 25 W mode


def _slow_profile(tmp_path: Path) -> Path:
    """The Orin Nano Super made slow: one detector item takes 5 modelled seconds at 25 W
    (dual execution included), so a 40-item job runs for minutes of mission time."""
    from hardware_profiles import profile_path

    flops = 2 * analyse(DETECTOR).flops_per_item  # dual execution
    text = profile_path("jetson-orin-nano-super").read_text()
    swaps = {
        "peak_ops.int8 = 33.5e12": f"peak_ops.int8 = {flops / SECONDS_PER_ITEM:.6e}",
        "efficiency = 0.35": "efficiency = 1.0",
    }
    for a, b in swaps.items():
        assert a in text, a
        text = text.replace(a, b)
    text = text.replace('name = "jetson-orin-nano-super"', 'name = "slow-nano"')
    path = tmp_path / "slow-nano.toml"
    path.write_text(text)
    return path


async def _collect(sub: Subscription, seen: list[tuple[str, dict[str, Any], bytes]],
                   done: asyncio.Event, want: set[str]) -> None:
    async for msg in sub:
        obj = decode(msg.payload)
        if not isinstance(obj, dict):
            continue
        leaf = msg.topic.rsplit("/", 1)[-1]
        seen.append((leaf, obj, msg.payload))
        results = {o.get("job_id") for lf, o, _ in seen if lf == "result"}
        if want <= results:
            done.set()


async def test_an_urgent_job_suspends_a_long_one_and_both_finish_once_with_bare_outputs(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    clock = WallClock(epoch=EPOCH, scale=100)
    rng = np.random.default_rng(7)
    long_x = rng.random((40, 3, 96, 96), dtype=np.float32)
    urgent_x = rng.random((2, 3, 96, 96), dtype=np.float32)
    seen: list[tuple[str, dict[str, Any], bytes]] = []
    done = asyncio.Event()
    async with (
        MqttBus(mosquitto.url, client_id="test-ground") as gbus,
        gbus.subscribe("odc/sat/n1/#") as sub,
        MqttBus(mosquitto.url, client_id="node-n1") as nbus,
        running_node(nbus, clock, tmp_path / "n1", profile=_slow_profile(tmp_path)),
    ):
        h = await upload(gbus, "n1", DETECTOR)
        await wait_for(sub, kind("model_stored"))
        await submit(gbus, "n1", "long", h, {"image": long_x}, priority=2)
        await wait_for(sub, kind("job_event", job_id="long", state="running"))
        await clock.sleep(30.0)  # some items done
        await submit(gbus, "n1", "urgent", h, {"image": urgent_x}, priority=8,
                     deadline=clock.now() + 60.0)
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(_collect(sub, seen, done, {"long", "urgent"}))
            try:
                await asyncio.wait_for(done.wait(), timeout=60.0)
                await asyncio.sleep(1.0)  # a duplicate would arrive by now
            finally:
                task.cancel()
    events = [parse(JobEvent, p) for leaf, _, p in seen if leaf == "event"]
    results = [parse(JobResult, p) for leaf, _, p in seen if leaf == "result"]
    # the long job was suspended once, at an item boundary, and ran again after the urgent one
    susp = [e for e in events if e.job_id == "long" and e.state == "suspended"]
    assert len(susp) == 1, [(e.job_id, e.state, e.detail) for e in events]
    assert "pre-empted by urgent" in (susp[0].detail or "")
    # (events from the urgent job's submission on; the long job's first start came before)
    running = [e.t for e in events if e.job_id == "long" and e.state == "running"]
    urgent_run = [e.t for e in events if e.job_id == "urgent" and e.state == "running"]
    assert len(running) == 1 and len(urgent_run) == 1
    assert susp[0].t <= urgent_run[0] < running[0]
    # each job has exactly one result, done, the urgent one on time
    by_job = {r.job_id: r for r in results}
    assert sorted(r.job_id for r in results) == ["long", "urgent"]
    urgent, long = by_job["urgent"], by_job["long"]
    assert urgent.status == "done" and long.status == "done", (urgent.reason, long.reason)
    assert urgent.finished_at is not None and urgent.deadline is not None
    assert urgent.finished_at <= urgent.deadline
    assert long.finished_at is not None and long.finished_at > urgent.finished_at
    assert long.suspensions == 1 and urgent.suspensions == 0
    assert long.items == 40
    # the long job's energy covers both of its runs and the checkpoint
    assert long.modelled_energy_j is not None and long.modelled_latency_s is not None
    # outputs equal bare onnxruntime on the same inputs
    sess = ort.InferenceSession(str(DETECTOR), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    for res, x in ((long, long_x), (urgent, urgent_x)):
        want = sess.run(None, {"image": x})
        assert sorted(res.outputs) == sorted(names)
        for name, w in zip(names, want, strict=True):
            got = res.outputs[name].to_array()
            assert got.shape == w.shape and np.array_equal(got, w), name




async def test_a_suspended_job_moves_with_its_done_items_and_the_next_node_runs_the_rest(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    """A suspended job handed over carries the outputs of its items done (``progress``);
    the next node runs only the items left, and the result equals bare onnxruntime."""
    clock = WallClock(epoch=EPOCH, scale=100)
    rng = np.random.default_rng(11)
    long_x = rng.random((40, 3, 96, 96), dtype=np.float32)
    urgent_x = rng.random((2, 3, 96, 96), dtype=np.float32)
    slow = _slow_profile(tmp_path)
    async with (
        MqttBus(mosquitto.url, client_id="test-ground") as gbus,
        gbus.subscribe("odc/sat/+/#") as sub,
        MqttBus(mosquitto.url, client_id="node-n1") as bus1,
        MqttBus(mosquitto.url, client_id="node-n2") as bus2,
        running_node(bus1, clock, tmp_path / "n1", node_id="n1", profile=slow) as n1,
        running_node(bus2, clock, tmp_path / "n2", node_id="n2", profile=slow,
                     arg_latitude_deg=0.5),
    ):
        h = await upload(gbus, "n1", DETECTOR)
        await wait_for(sub, kind("model_stored", node="n1"))
        await upload(gbus, "n2", DETECTOR)
        await wait_for(sub, kind("model_stored", node="n2"))
        await submit(gbus, "n1", "long", h, {"image": long_x}, priority=2)
        await wait_for(sub, kind("job_event", job_id="long", state="running"))
        await clock.sleep(30.0)  # some items done
        await submit(gbus, "n1", "urgent", h, {"image": urgent_x}, priority=8,
                     deadline=clock.now() + 60.0)
        await wait_for(sub, kind("job_event", job_id="long", state="suspended"))
        assert await n1.hand_over("long", "n2")
        seen: list[tuple[str, dict[str, Any], bytes]] = []
        done = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(_collect(sub, seen, done, {"long", "urgent"}))
            try:
                await asyncio.wait_for(done.wait(), timeout=90.0)
            finally:
                task.cancel()
    sess = ort.InferenceSession(str(DETECTOR), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    want = dict(zip(names, sess.run(None, {"image": long_x}), strict=True))
    # the handover carried the outputs of the items n1 had done, equal to bare onnxruntime
    hands = [parse(Handover, p) for _, o, p in seen if o.get("kind") == "handover"]
    assert len(hands) == 1 and hands[0].job.progress is not None
    pg = hands[0].job.progress
    assert 1 <= pg.done < 40 and pg.suspensions == 1
    for name in names:
        assert np.array_equal(pg.outputs[name].to_array(), want[name][: pg.done]), name
    # n2 ran only the items left: its run's modelled latency is theirs (plus the resume)
    n2_runs = [e for e in (parse(JobEvent, p) for lf, _, p in seen if lf == "event")
               if e.job_id == "long" and e.node == "n2" and e.state == "running"]
    assert len(n2_runs) == 1
    results = {r.job_id: r for r in (parse(JobResult, p) for lf, _, p in seen if lf == "result")}
    long = results["long"]
    assert long.node == "n2" and long.status == "done", long.reason
    assert long.items == 40 and long.suspensions == 1 and long.epoch == 1
    for name in names:
        got = long.outputs[name].to_array()
        assert got.shape == want[name].shape and np.array_equal(got, want[name]), name


@pytest.mark.parametrize(
    ("done", "rows", "says"),
    [(3, 3, "progress.done: 3 items done of a batch of 3"),
     (2, 1, ": first axis 1, not the 2 items done")],
)
async def test_a_handover_with_progress_that_does_not_fit_is_refused_naming_it(
    mosquitto: MosquittoProcess, tmp_path: Path, done: int, rows: int, says: str
) -> None:
    clock = WallClock(epoch=EPOCH, scale=100)
    x = np.random.default_rng(3).random((3, 3, 96, 96), dtype=np.float32)
    sess = ort.InferenceSession(str(DETECTOR), providers=["CPUExecutionProvider"])
    outs = {o.name: v[:rows] for o, v in zip(sess.get_outputs(), sess.run(None, {"image": x}),
                                              strict=True)}
    async with (
        MqttBus(mosquitto.url, client_id="peer-n1") as peer,
        peer.subscribe("odc/sat/n2/#") as sub,
        MqttBus(mosquitto.url, client_id="node-n2") as bus2,
        running_node(bus2, clock, tmp_path / "n2", node_id="n2"),
    ):
        h = await upload(peer, "n2", DETECTOR)
        await wait_for(sub, kind("model_stored"))
        job = JobSubmit(job_id="moved", epoch=1, model=h, inputs={"image": Tensor.from_array(x)},
                        progress=Progress(done=done, outputs={
                            k: Tensor.from_array(v) for k, v in outs.items()}))
        msg = Handover(src="n1", dst="n2", t=clock.now(), job=job)
        await peer.publish(topics.handover("n1", "n2"), dump(msg), qos=1)
        _, err = await wait_for(sub, kind("error", job_id="moved"))
    assert err["field"] == "progress" and says in err["message"], err
