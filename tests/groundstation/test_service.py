"""Ground station end to end over a real mosquitto: real node and service processes."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from mosquitto import MosquittoProcess
from node_harness import DETECTOR, DIGITS, digits_inputs, kind, running_node, wait_for
from procs import ROOT, Procs
from profiles import slow_profile

from flightsw.bus.mqtt import MqttBus
from flightsw.clock import WallClock
from flightsw.physics.ground import Station, contact_windows
from flightsw.physics.orbit import CircularOrbits
from flightsw.protocol import decode, dump, topics
from flightsw.timeutil import parse_iso
from groundstation.client import GroundClient
from groundstation.exceptions import GroundError
from groundstation.service import GroundStation

pytestmark = pytest.mark.mqtt

EPOCH = "2026-03-20T00:00:00Z"


@contextlib.asynccontextmanager
async def client(url: str) -> AsyncIterator[GroundClient]:
    async with (
        MqttBus(url, client_id="test-client", clean_start=True) as bus,
        GroundClient(bus, WallClock(), client_id="test-client", timeout_s=20) as gc,
    ):
        yield gc


async def submit_pinned(gc: GroundClient, model: str, inputs: dict[str, np.ndarray],
                        node: str, **kw: Any) -> str:
    """Submit pinned to ``node`` once the ground has heard from it (a node process just
    started may not have sent its first heartbeat yet: the ground refuses an unknown node)."""
    for _ in range(300):
        try:
            return await gc.submit(model, inputs, node=node, **kw)
        except GroundError as exc:
            if "is known" not in str(exc):
                raise
            await asyncio.sleep(0.1)
    raise AssertionError(f"the ground never heard from {node}")


def reference(model: Path, name: str, x: np.ndarray) -> dict[str, np.ndarray]:
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    outs = sess.run(None, {name: x})
    return {o.name: v for o, v in zip(sess.get_outputs(), outs, strict=True)}


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    p = Procs(tmp_path / "procs", epoch=EPOCH, scale=1.0)
    yield p
    p.close()


async def test_submit_to_result_through_serve_and_two_nodes(
    mosquitto: MosquittoProcess, procs: Procs, tmp_path: Path
) -> None:
    procs.ground(mosquitto.url, tmp_path / "archive")
    procs.node(mosquitto.url, "sat-a", "jetson-agx-orin")
    procs.node(mosquitto.url, "sat-b", "starcloud-h100", arg_latitude=90.0)
    x = digits_inputs(32)
    async with client(mosquitto.url) as gc:
        model = await gc.upload_model(DIGITS)
        ids = [await gc.submit(model, {"input": x[i::4]}) for i in range(4)]
        recs = [await gc.wait(j, timeout_s=60) for j in ids]
    assert {r.node for r in recs} <= {"sat-a", "sat-b"}
    for i, rec in enumerate(recs):
        want = reference(DIGITS, "input", x[i::4])
        got = GroundClient.outputs(rec)
        assert list(got) == list(want)
        for k in want:
            assert np.array_equal(got[k], want[k])
    # the CLI does the same from a shell
    np.save(tmp_path / "in.npy", x)
    out = tmp_path / "out.npz"
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "groundstation.cli",
            "submit",
            str(DIGITS),
            str(tmp_path / "in.npy"),
            "--wait",
            "-o",
            str(out),
            "--broker",
            mosquitto.url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert cli.returncode == 0, cli.stderr
    saved = np.load(out)
    want = reference(DIGITS, "input", x)
    assert sorted(saved.files) == sorted(want)
    for k in want:
        assert np.array_equal(saved[k], want[k])


async def test_service_restart_mid_run_loses_no_job(
    mosquitto: MosquittoProcess, procs: Procs, tmp_path: Path
) -> None:
    slow = slow_profile(tmp_path, ops=5e8)
    procs.ground(mosquitto.url, tmp_path / "archive")
    procs.node(mosquitto.url, "sat-a", str(slow))
    procs.node(mosquitto.url, "sat-b", str(slow), arg_latitude=90.0)
    img = np.random.default_rng(1).standard_normal((2, 3, 96, 96)).astype(np.float32)
    async with client(mosquitto.url) as gc:
        model = await gc.upload_model(DETECTOR)
        ids = [await gc.submit(model, {"image": img}, job_id=f"job-{i}") for i in range(6)]
        await asyncio.sleep(1.0)
        procs.kill("ground")  # SIGKILL mid-run: jobs queued and running on the nodes
        await asyncio.sleep(1.0)
        procs.ground(mosquitto.url, tmp_path / "archive", name="ground2")
        recs = [await gc.wait(j, timeout_s=90) for j in ids]
        table = await gc.jobs()
    assert [r.state for r in recs] == ["done"] * 6
    assert len(table) == 6
    want = reference(DETECTOR, "image", img)
    for rec in recs:
        got = GroundClient.outputs(rec)
        for k in want:
            assert np.array_equal(got[k], want[k])


async def test_node_killed_mid_job_completes_on_another_exactly_once(
    mosquitto: MosquittoProcess, procs: Procs, tmp_path: Path
) -> None:
    slow = slow_profile(tmp_path, ops=1e8)  # a detector job runs ~1-4 s of mission time
    procs.ground(mosquitto.url, tmp_path / "archive", extra=["--lease", "20"])
    nodes = ("sat-a", "sat-b", "sat-c")
    for i, n in enumerate(nodes):
        procs.node(mosquitto.url, n, str(slow), arg_latitude=40.0 * i)
    img = np.random.default_rng(2).standard_normal((2, 3, 96, 96)).astype(np.float32)
    results: dict[str, int] = {}
    async with (
        MqttBus(mosquitto.url, client_id="watcher", clean_start=True) as bus,
        bus.subscribe("odc/sat/+/event") as events,
        bus.subscribe("odc/sat/+/result") as res_sub,
        client(mosquitto.url) as gc,
    ):
        model = await gc.upload_model(DETECTOR)
        ids = [
            await submit_pinned(gc, model, {"image": img}, nodes[i % 3], job_id=f"job-{i}")
            for i in range(9)
        ]
        await wait_for(
            events, kind("job_event", job_id="job-3", state="running", node="sat-a"), timeout=60
        )
        procs.kill("sat-a")  # SIGKILL while job-3 runs; job-6 still queued behind it
        recs = [await gc.wait(j, timeout_s=120) for j in ids]
        with contextlib.suppress(TimeoutError):
            while True:
                msg = await asyncio.wait_for(res_sub.get(), 2.0)
                jid = decode(msg.payload)["job_id"]
                results[jid] = results.get(jid, 0) + 1
    assert [r.state for r in recs] == ["done"] * 9
    assert results == dict.fromkeys(ids, 1)  # every job reported exactly once
    victim = recs[3]
    assert victim.node in {"sat-b", "sat-c"} and victim.epoch == 1
    assert recs[6].node != "sat-a" and recs[6].epoch == 1
    assert all(r.duplicates == 0 for r in recs)
    want = reference(DETECTOR, "image", img)
    for rec in recs:
        out = GroundClient.outputs(rec)
        assert all(np.array_equal(out[k], want[k]) for k in want)


async def test_duplicated_result_is_recorded_once(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    clock = WallClock(epoch=parse_iso(EPOCH), scale=10)
    async with (
        MqttBus(mosquitto.url, client_id="gs") as gbus,
        GroundStation(gbus, clock, tmp_path / "archive") as gs,
        MqttBus(mosquitto.url, client_id="node-bus") as nbus,
        running_node(nbus, clock, tmp_path / "n1", node_id="n1"),
        client(mosquitto.url) as gc,
    ):
        model = await gc.upload_model(DIGITS)
        job = await gc.submit(model, {"input": digits_inputs(4)})
        rec = await gc.wait(job, timeout_s=30)
        res = gs.table.result(job)
        assert res is not None
        for _ in range(3):  # at-least-once delivery: the same result again
            await nbus.publish(topics.result("n1"), dump(res), qos=1)
        stale = res.model_copy(update={"epoch": -1})
        await nbus.publish(topics.result("n1"), dump(stale), qos=1)
        for _ in range(50):
            if gs.duplicates >= 3:
                break
            await asyncio.sleep(0.05)
        again = await gc.result(job)
    assert rec.state == "done"
    assert gs.duplicates == 4  # the three copies and the stale one: the job already ended
    assert again.duplicates == 4
    assert again.finished_at == rec.finished_at


async def test_job_out_of_contact_waits_for_next_pass(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    station = Station("svalbard", 78.23, 15.39, 500.0)
    t0 = parse_iso(EPOCH)
    orbit = CircularOrbits(550.0, 97.6, 0.0, 0.0, epoch=t0, names=["n1"])
    passes = contact_windows(orbit, station, t0, t0 + 6 * 3600, min_elevation_deg=10.0)[0]
    first = next(p for p in passes if p.aos > t0 + 600)
    # start 8 minutes of mission time before AOS at 60x: the pass comes after ~8 s
    start = first.aos - 480.0
    clock = WallClock(epoch=start, scale=60)
    u0 = 360.0 * (start - t0) / float(orbit.period_s[0])
    async with (
        MqttBus(mosquitto.url, client_id="gs") as gbus,
        GroundStation(gbus, clock, tmp_path / "archive", stations=[station]) as gs,
        MqttBus(mosquitto.url, client_id="node-bus") as nbus,
        running_node(
            nbus, clock, tmp_path / "n1", node_id="n1", inclination_deg=97.6, arg_latitude_deg=u0
        ),
        client(mosquitto.url) as gc,
    ):
        model = await gc.upload_model(DIGITS)
        job = await gc.submit(model, {"input": digits_inputs(4)})
        await asyncio.sleep(2.0)
        waiting = await gc.job(job)
        assert waiting.state == "queued"
        assert gs.in_view(gs.nodes["n1"], clock.now()) == []  # no station above the mask
        rec = await gc.wait(job, timeout_s=30)
    assert rec.state == "done"
    assert rec.uplinked_at is not None
    assert rec.uplinked_at >= first.aos - 30.0  # orbit epoch differs by a few seconds
    assert rec.uplinked_at <= first.los


async def test_a_suspended_job_shows_suspended_and_keeps_its_first_start(
    mosquitto: MosquittoProcess, procs: Procs, tmp_path: Path
) -> None:
    """Pre-emption seen from the ground: the long job's row says ``suspended`` while the
    urgent one runs, and its ``started_at`` stays the first start after it resumes."""
    slow = slow_profile(tmp_path, ops=1e8)  # one detector item: about a modelled second
    procs.ground(mosquitto.url, tmp_path / "archive", extra=["--lease", "60"])
    procs.node(mosquitto.url, "sat-a", str(slow))
    rng = np.random.default_rng(5)
    long_x = rng.standard_normal((12, 3, 96, 96)).astype(np.float32)
    urgent_x = rng.standard_normal((1, 3, 96, 96)).astype(np.float32)
    states: list[str] = []
    async with (
        MqttBus(mosquitto.url, client_id="watcher", clean_start=True) as bus,
        bus.subscribe("odc/sat/sat-a/event") as events,
        bus.subscribe("odc/sat/sat-a/telemetry") as tm,
        client(mosquitto.url) as gc,
    ):
        model = await gc.upload_model(DETECTOR)
        await wait_for(tm, kind("telemetry"), timeout=60)
        await submit_pinned(gc, model, {"image": long_x}, "sat-a", priority=2, job_id="long")
        await wait_for(events, kind("job_event", job_id="long", state="running"), timeout=60)
        first_start = (await gc.job("long")).started_at
        await gc.submit(model, {"image": urgent_x}, node="sat-a", priority=9, job_id="urgent",
                        deadline_s=8.0)  # would miss it waiting behind the long run
        await wait_for(events, kind("job_event", job_id="long", state="suspended"),
                       timeout=60)
        for _ in range(100):  # the ground's row follows the node's event
            rec = await gc.job("long")
            states.append(rec.state)
            if rec.state == "suspended" or rec.state in ("done", "failed"):
                break
            await asyncio.sleep(0.05)
        urgent = await gc.wait("urgent", timeout_s=120)
        long = await gc.wait("long", timeout_s=240)
    assert "suspended" in states, states
    assert urgent.state == long.state == "done"
    # the first start, not the resume (the node's own stamp, within an event's latency)
    assert first_start is not None and long.started_at is not None
    assert urgent.started_at is not None and long.started_at < urgent.started_at
    assert abs(long.started_at - first_start) < 0.5
    assert urgent.finished_at is not None and long.finished_at is not None
    assert urgent.finished_at < long.finished_at
    for rec, x in ((long, long_x), (urgent, urgent_x)):
        want = reference(DETECTOR, "image", x)
        out = GroundClient.outputs(rec)
        assert all(np.array_equal(out[k], want[k]) for k in want)
