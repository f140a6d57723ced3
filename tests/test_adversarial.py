"""The adversarial suite over a real broker: sealed node processes, a ground station that
holds their keys, and a stream of hostile traffic (forged statuses and results of a node
it holds no key for, replays, fuzzed payloads on every subscribed topic). Afterwards good
jobs are all done exactly once with outputs equal to bare onnxruntime, and the memory of
the node processes and the ground stayed bounded."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import onnxruntime as ort
import pytest
from mosquitto import MosquittoProcess
from node_harness import DIGITS, digits_inputs
from procs import Procs

from flightsw.bus.mqtt import MqttBus
from flightsw.clock import WallClock
from flightsw.protocol import JobResult, NodeState, Status, dump, topics
from flightsw.protocol.sign import load_keys
from flightsw.protocol.warrant import WarrantSigner
from flightsw.timeutil import parse_iso
from groundstation.cli.keys import make_keys
from groundstation.client import GroundClient
from groundstation.protocol import REQUEST_TOPIC
from groundstation.service import GroundStation

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

EPOCH = "2026-03-20T00:00:00Z"
FUZZ = 10_000


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    p = Procs(tmp_path / "procs", epoch=EPOCH, scale=1.0)
    yield p
    p.close()


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def hostile(rng: random.Random, samples: list[bytes]) -> bytes:
    """Random bytes, a truncated real message, or a real message with fields mutated."""
    pick = rng.random()
    if pick < 0.2:
        return rng.randbytes(rng.randrange(0, 300))
    base = rng.choice(samples)
    if pick < 0.4:
        return base[: rng.randrange(0, len(base))]
    obj: dict[str, Any] = msgpack.unpackb(base, raw=False)
    junk: list[Any] = [None, -1, 2**64 - 1, float("nan"), float("inf"), "", "x" * 300, b"\xff",
                       [1, [2]], {"a": {}}, True, "a/b#", 1e308]
    for _ in range(rng.randrange(1, 4)):
        key = rng.choice([*obj, "extra", "auth", "kind", "node"])
        obj[key] = rng.choice(junk)
    return msgpack.packb(obj, use_bin_type=True)  # type: ignore[no-any-return]


async def test_hostile_traffic_changes_nothing_and_good_jobs_finish_exactly_once(
    mosquitto: MosquittoProcess, procs: Procs, tmp_path: Path
) -> None:
    make_keys(tmp_path / "keys", ["sat-a", "sat-b"])
    make_keys(tmp_path / "other", ["sat-c"])  # a node whose key the ground does not hold
    for node, keydir, lat in (("sat-a", "keys", 0.0), ("sat-b", "keys", 120.0),
                              ("sat-c", "other", 240.0)):
        procs.node(mosquitto.url, node, "jetson-orin-nano-super", arg_latitude=lat,
                   extra=["--node-key-file", str(tmp_path / keydir / f"{node}.key"),
                          "--ground-public-key", str(tmp_path / keydir / "ground.warrant.pub")])
    clock = WallClock(epoch=parse_iso(EPOCH), scale=1.0, anchor=procs.anchor)
    rng = random.Random(13)
    x = digits_inputs(4)
    sess = ort.InferenceSession(str(DIGITS), providers=["CPUExecutionProvider"])
    want = sess.run(None, {"input": x})
    async with (
        MqttBus(mosquitto.url, client_id="ground", clean_start=True) as gbus,
        GroundStation(gbus, clock, tmp_path / "archive", lease_s=20.0,
                      node_keys=load_keys(tmp_path / "keys"),
                      warrants=WarrantSigner.from_file(tmp_path / "keys" / "ground.warrant"))
        as gs,
        MqttBus(mosquitto.url, client_id="attacker", clean_start=True) as bus,
        GroundClient(bus, clock, client_id="client", timeout_s=30) as gc,
    ):
        model = await gc.upload_model(DIGITS)
        async with asyncio.timeout(60):  # both keyed nodes heard from
            while not all(n in gs.nodes and gs.nodes[n].state is not None  # noqa: ASYNC110
                          for n in ("sat-a", "sat-b")):
                await asyncio.sleep(0.2)
        assert "sat-c" not in gs.nodes  # sealed, but with a key the ground does not hold
        first = await gc.submit(model, {"input": x}, node="sat-a")
        rec = await gc.wait(first, timeout_s=60)
        assert rec.state == "done"
        rss0 = {n: rss_mb(procs.procs[n].pid) for n in ("sat-a", "sat-b")}
        rss0["ground"] = rss_mb(os.getpid())

        # forged: a status and heartbeat of a ghost, a result for sat-a's job from sat-b's
        # topic and from a topic naming nobody, a replay of a real sealed status
        samples = [
            dump(Status(node="ghost", state="online", t=0.0)),
            dump(NodeState(node="ghost", t=0.0, soc=1.0, battery_wh=1.0, floor_wh=0.0,
                           temperature_c=0.0, throttle_c=80.0, queue_depth=0,
                           queued_work_s=0.0, sunlit=1.0, next_eclipse_s=None, eclipse_s=0.0,
                           effective_ops_per_s=1e12, power_w=1.0, position_km=[7e3, 0, 0],
                           models=[model])),
            dump(JobResult(job_id=first, epoch=9, node="sat-b", status="done")),
        ]
        async with bus.subscribe(topics.status("sat-a")) as st:
            real_status = (await asyncio.wait_for(st.get(), 10)).payload
        samples.append(real_status)
        with open(DIGITS, "rb") as f:
            samples.append(msgpack.packb({"kind": "job", "job_id": "fz", "epoch": 0,
                                          "model": model, "inputs": {}}))
            samples.append(msgpack.packb({"kind": "model_chunk", "model": model, "index": 0,
                                          "total": 2, "size": 10, "data": f.read(5)}))
        targets = [
            *(topics.status(n) for n in ("ghost", "sat-a")),
            *(topics.state(n) for n in ("ghost", "sat-a")),
            *(topics.result(n) for n in ("ghost", "sat-b", "sat-a")),
            *(topics.event(n) for n in ("ghost", "sat-a")),
            topics.job("sat-b"), topics.command("sat-b"), topics.model("sat-b"),
            topics.handover("sat-c", "sat-b"), REQUEST_TOPIC,
        ]
        rejected0 = gs.rejected
        for i in range(FUZZ):
            await bus.publish(rng.choice(targets), hostile(rng, samples), qos=0)
            if i % 500 == 0:
                await asyncio.sleep(0.05)  # a hostile client, not a flood test of the broker
        await bus.publish(topics.status("sat-a"), real_status)  # a replay, sealed and real

        ids = [await gc.submit(model, {"input": x}) for _ in range(10)]
        recs = [await gc.wait(j, timeout_s=120) for j in ids]
        assert [r.state for r in recs] == ["done"] * 10
        assert {r.node for r in recs} <= {"sat-a", "sat-b"}
        for r in [rec, *recs]:
            assert r.duplicates == 0 and r.epoch == 0
            out = GroundClient.outputs(await gc.result(r.job_id))
            assert sorted(out) == ["label", "probabilities"]
            for name, arr in zip(("label", "probabilities"), want, strict=True):
                np.testing.assert_array_equal(out[name], arr)
        table = await gc.jobs()
        assert sorted(r.job_id for r in table) == sorted([first, *ids])
        assert "ghost" not in gs.nodes or not gs.placeable(gs.nodes["ghost"], clock.now())
        assert gs.rejected > rejected0
        for n in ("sat-a", "sat-b"):
            assert procs.procs[n].poll() is None, procs.log(n)
            assert rss_mb(procs.procs[n].pid) < rss0[n] + 60, (n, rss0)
        assert rss_mb(os.getpid()) < rss0["ground"] + 120
