"""A client written from ``docs/protocol.md`` alone, against a real mosquitto, a real ground
station (in process, holding node keys) and a real node process.

The client side uses nothing of the project: raw MQTT (aiomqtt), msgpack, hmac/hashlib and
numpy, every field name, topic, limit and byte layout taken from the document. It

* checks the document's test vectors with its own canonical msgpack and seal;
* uploads a model in ``model_chunk`` requests (out of order, one twice), submits jobs, and
  reads their results, equal to bare onnxruntime;
* gets a ``Reply`` naming the field for bad requests (an integer ``req_id``, a ``deadline``
  in a submit, a NaN ``deadline_s``, a ``/`` in a ``job_id``, ``total`` 0);
* plays a node (``fake-1``) that seals its own status, heartbeat, event and result by the
  documented construction: the ground places a job on it and records its result, while a
  tampered, an unsealed, a wrongly keyed, a wrong-topic and a replayed result are refused,
  and its last will (an old number named by ``will_seq``) is taken once;
* verifies every sealed message of the real node ``sat-a`` with the same construction,
  checks the ground's job warrant (Ed25519 over the documented bytes; ``cryptography`` only
  for the Ed25519 primitive) and sees ``sat-a`` refuse a job without a valid one;
* sends ``sat-a`` telecommands signed as documented (keys in any order, fields left out):
  accepted once, refused when replayed or altered.

The ground station and the node are the systems under test; only the harness starts them
(and makes the warrant key pair with the project's helper).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import math
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import msgpack
import numpy as np
import onnxruntime as ort
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from mosquitto import MosquittoProcess
from procs import ROOT, Procs

# the system under test, started by the harness (the client below does not use it)
from flightsw.bus.mqtt import MqttBus
from flightsw.clock import WallClock
from flightsw.protocol.warrant import WarrantSigner, new_warrant_key
from groundstation.service import GroundStation

pytestmark = pytest.mark.mqtt

EPOCH = "2026-03-20T00:00:00Z"
T0 = 1_773_964_800.0  # EPOCH as POSIX seconds
MODEL = ROOT / "examples" / "models" / "digits_classifier.onnx"
KEY_A = bytes(range(32))  # the real node sat-a
KEY_F = bytes(range(100, 132))  # the fake node fake-1
CMD_KEY = "sat-a-telecommand-key"  # sat-a's ODC_COMMAND_KEY
CLIENT = "doc-client"


# -- from docs/protocol.md: encoding -------------------------------------------------------
def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def unpack(payload: bytes) -> Any:
    return msgpack.unpackb(payload, raw=False)


def tensor(a: np.ndarray) -> dict[str, Any]:
    """C-order, little-endian bytes, dtype name and shape."""
    a = np.ascontiguousarray(a)
    return {"dtype": a.dtype.name, "shape": list(a.shape),
            "data": a.astype(a.dtype.newbyteorder("<")).tobytes()}


def array(t: dict[str, Any]) -> np.ndarray:
    dt = np.dtype(t["dtype"]).newbyteorder("<")
    return np.frombuffer(t["data"], dtype=dt).reshape(t["shape"])


# -- from docs/protocol.md: message authentication ------------------------------------------
def _sorted(obj: Any) -> Any:
    """Keys in ascending order of their UTF-8 bytes, at every level."""
    if isinstance(obj, dict):
        return {k: _sorted(obj[k]) for k in sorted(obj, key=lambda k: k.encode("utf-8"))}
    if isinstance(obj, list):
        return [_sorted(v) for v in obj]
    return obj


def canonical(obj: Any) -> bytes:
    # msgpack-python packs ints shortest, every Python float as float64, str as str and
    # bytes as bin: the document's rules once the keys are sorted
    return pack(_sorted(obj))


def mac(key: bytes, topic: str, seq: int, body: dict[str, Any]) -> str:
    head = b"odc-auth-v1\x00" + topic.encode("utf-8") + b"\x00" + seq.to_bytes(8, "big")
    return hmac.new(key, head + canonical(body), hashlib.sha256).hexdigest()


def seal(key: bytes, topic: str, seq: int, body: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in body.items() if k != "auth"}
    return {**body, "auth": {"seq": seq, "mac": mac(key, topic, seq, body)}}


def verifies(key: bytes, topic: str, obj: dict[str, Any]) -> bool:
    auth = obj["auth"]
    body = {k: v for k, v in obj.items() if k != "auth"}
    return hmac.compare_digest(auth["mac"], mac(key, topic, auth["seq"], body))


def command_mac(key: str, cmd: dict[str, Any]) -> str:
    """A telecommand's hmac: the key's UTF-8 bytes over canonical(command, hmac nil)."""
    return hmac.new(key.encode("utf-8"), canonical({**cmd, "hmac": None}),
                    hashlib.sha256).hexdigest()


def warrant_verifies(public_hex: str, job: dict[str, Any]) -> bool:
    """The document's warrant: Ed25519 over canonical(what the job is), inputs by digest."""
    body = canonical({
        "job_id": job["job_id"], "model": job["model"],
        "inputs_sha256": hashlib.sha256(canonical(job["inputs"])).hexdigest(),
        "priority": job["priority"], "deadline": job["deadline"], "value": job["value"],
        "submitted_at": job["submitted_at"], "origin": job["origin"],
    })
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(
            bytes.fromhex(job["warrant"]), body)
    except Exception:
        return False
    return True


def test_the_documents_test_vectors() -> None:
    key = bytes(range(32))
    status = {"kind": "status", "node": "sat-a", "state": "online", "t": 1790000000.0,
              "profile": None, "orbit": None, "will_seq": 3}
    assert canonical(status).hex() == (
        "87a46b696e64a6737461747573a46e6f6465a57361742d61a56f72626974c0a770726f66696c65"
        "c0a57374617465a66f6e6c696e65a174cb41daac4ee0000000a877696c6c5f73657103"
    )
    assert mac(key, "odc/sat/sat-a/status", 7, status) == (
        "990a00e4d565a8dbb2837bbe0a7115c054c12b7753b1bf8abe80ac861f4feae8"
    )
    nested = {"leases": {"job-b": 2, "job-a": 300}, "kind": "x", "data": b"\x00\x01",
              "v": [1.5, -40, {"z": None, "a": True}], "é": "ü", "Z": 1.0}
    assert canonical(nested).hex() == (
        "86a15acb3ff0000000000000a464617461c4020001a46b696e64a178a66c656173657382a56a"
        "6f622d61cd012ca56a6f622d6202a17693cb3ff8000000000000d0d882a161c3a17ac0a2c3a9"
        "a2c3bc"
    )
    assert mac(key, "odc/sat/sat-a/state", 70000, nested) == (
        "7011eef829c0228a5734113756848f47890a93b710c9aeff67ee8fc6a8b1b238"
    )
    # the telecommand vector: the map as sent, hmac nil, canonical; no prefix
    cmd = {"kind": "command", "cmd_id": "c1", "name": "ping", "args": {}, "counter": 5,
           "t": 1790000000.0, "hmac": "whatever was sent"}
    assert canonical({**cmd, "hmac": None}).hex() == (
        "87a46172677380a6636d645f6964a26331a7636f756e74657205a4686d6163c0a46b696e64a7636f"
        "6d6d616e64a46e616d65a470696e67a174cb41daac4ee0000000"
    )
    assert command_mac("sat-a-cmd-key", cmd) == (
        "ed8b8e3f678140ddcf8219ec1a103cd040e21ffee5c9403b784a443398d5f796"
    )


# -- a ground client from the document -------------------------------------------------------
class RawClient:
    """Requests on odc/ground/req, replies on odc/ground/rep/<client>, resent every second
    until the reply arrives; job records watched on odc/ground/job/<job_id>."""

    def __init__(self, mqtt: aiomqtt.Client) -> None:
        self.mqtt = mqtt
        self.ids = itertools.count(1)
        self.pending: dict[Any, asyncio.Future[dict[str, Any]]] = {}
        self.records: dict[str, list[dict[str, Any]]] = {}

    async def read(self) -> None:
        async for msg in self.mqtt.messages:
            obj = unpack(msg.payload)
            topic = msg.topic.value
            if topic == f"odc/ground/rep/{CLIENT}":
                assert obj["kind"] == "ground_reply"
                fut = self.pending.pop(obj["req_id"], None)
                if fut is not None and not fut.done():
                    fut.set_result(obj)
            elif topic.startswith("odc/ground/job/"):
                assert obj["kind"] == "job_record"
                self.records.setdefault(obj["job_id"], []).append(obj)

    async def request(self, op: str, args: dict[str, Any] | None = None, *,
                      req_id: Any = None, **extra: Any) -> dict[str, Any]:
        """The whole Reply map."""
        rid = f"r{next(self.ids)}" if req_id is None else req_id
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[rid] = fut
        req = {"kind": "ground_request", "req_id": rid, "client": CLIENT, "op": op,
               "args": args or {}, **extra}
        async with asyncio.timeout(20):
            while True:
                await self.mqtt.publish("odc/ground/req", pack(req), qos=1)
                with contextlib.suppress(TimeoutError):
                    return await asyncio.wait_for(asyncio.shield(fut), 1.0)

    async def ok(self, op: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        rep = await self.request(op, args)
        assert rep["ok"], rep
        assert rep["error"] is None and rep["field"] is None
        return rep["data"]  # type: ignore[no-any-return]

    async def submit(self, job: dict[str, Any], node: str | None = None) -> str:
        await self.mqtt.subscribe(f"odc/ground/job/{job['job_id']}", qos=1)
        data = await self.ok("submit", {"job": job, "node": node})
        assert data == {"job_id": job["job_id"]}
        return str(data["job_id"])

    async def result(self, job_id: str, timeout_s: float = 25.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout_s):
            while True:
                ends = [r for r in self.records.get(job_id, []) if r["state"] in ("done", "failed")]
                if ends:
                    break
                await asyncio.sleep(0.05)
        rec = (await self.ok("result", {"job_id": job_id}))["job"]
        assert rec["state"] == "done", rec
        return rec  # type: ignore[no-any-return]


def reference(x: np.ndarray) -> dict[str, np.ndarray]:
    sess = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return {o.name: v for o, v in zip(sess.get_outputs(), sess.run(None, {name: x}),
                                      strict=True)}


def same_outputs(rec: dict[str, Any], want: dict[str, np.ndarray]) -> bool:
    got = {k: array(t) for k, t in rec["outputs"].items()}
    return sorted(got) == sorted(want) and all(
        got[k].dtype == want[k].dtype and np.array_equal(got[k], want[k]) for k in want
    )


# -- a node from the document -----------------------------------------------------------------
class FakeNode:
    """fake-1: announces itself, takes jobs and answers them, every message sealed."""

    def __init__(self, mqtt: aiomqtt.Client, will: bytes, will_seq: int) -> None:
        self.mqtt = mqtt
        self.seq = will_seq + 5000  # numbers may jump; the will is now far below the window
        self.will = will
        self.will_seq = will_seq
        self.online = b""

    def sealed(self, leaf: str, body: dict[str, Any], *, seq: int | None = None) -> bytes:
        if seq is None:
            self.seq += 1
            seq = self.seq
        return pack(seal(KEY_F, f"odc/sat/fake-1/{leaf}", seq, body))

    async def send(self, leaf: str, payload: bytes, *, qos: int = 1,
                   retain: bool = False) -> None:
        await self.mqtt.publish(f"odc/sat/fake-1/{leaf}", payload, qos=qos, retain=retain)

    async def announce(self, model: str) -> None:
        status = {"kind": "status", "node": "fake-1", "state": "online", "t": T0,
                  "profile": "fake", "orbit": None, "will_seq": self.will_seq}
        self.online = self.sealed("status", status)
        await self.send("status", self.online, retain=True)
        await self.send("state", self.sealed("state", heartbeat([model], {})), qos=0)


def heartbeat(models: list[str], leases: dict[str, int]) -> dict[str, Any]:
    return {"kind": "node_state", "node": "fake-1", "t": T0, "soc": 0.9, "battery_wh": 100.0,
            "floor_wh": 20.0, "temperature_c": 20.0, "throttle_c": 80.0, "queue_depth": 0,
            "queued_work_s": 0.0, "sunlit": 1.0, "next_eclipse_s": None, "eclipse_s": 0.0,
            "effective_ops_per_s": 1e12, "power_w": 10.0, "position_km": [7000.0, 0.0, 0.0],
            "models": models, "leases": leases}


def result_of(job: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "result", "job_id": job["job_id"], "epoch": job["epoch"], "node": "fake-1",
            "status": "done", "reason": None, "outputs": outputs,
            "items": job["inputs"]["input"]["shape"][0], "submitted_at": job["submitted_at"],
            "finished_at": T0 + 1.0}


@contextlib.asynccontextmanager
async def mqtt(broker: MosquittoProcess, identifier: str,
               will: aiomqtt.Will | None = None) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client(broker.host, broker.port, identifier=identifier, will=will,
                              clean_session=True) as c:
        yield c


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    p = Procs(tmp_path / "procs", epoch=EPOCH, scale=1.0)
    yield p
    p.close()


async def test_a_client_from_the_document_interoperates(
    mosquitto: MosquittoProcess, procs: Procs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "sat-a.key"
    key_file.write_text(KEY_A.hex() + "\n")
    monkeypatch.setenv("ODC_COMMAND_KEY", CMD_KEY)  # the node process inherits it
    warrant_private, warrant_public = new_warrant_key()  # the ground signs, sat-a checks
    public_file = tmp_path / "ground.warrant.pub"
    public_file.write_text(warrant_public + "\n")
    # the real node boots (seconds on a loaded machine) while the rest goes on
    procs.node(mosquitto.url, "sat-a", "jetson-agx-orin",
               extra=["--node-key-file", str(key_file), "--ground-public-key", str(public_file)])
    data = MODEL.read_bytes()
    model = hashlib.sha256(data).hexdigest()
    sat_a: list[tuple[str, dict[str, Any]]] = []

    # the fake node's last will: sealed at connect with the first number (0)
    will_body = {"kind": "status", "node": "fake-1", "state": "offline", "t": 0.0,
                 "profile": "fake", "orbit": None, "will_seq": None}
    will = pack(seal(KEY_F, "odc/sat/fake-1/status", 0, will_body))

    async with (
        MqttBus(mosquitto.url, client_id="odc-ground", clean_start=True) as bus,
        GroundStation(bus, WallClock(epoch=T0), tmp_path / "archive", tick_s=0.2,
                      node_keys={"sat-a": KEY_A, "fake-1": KEY_F},
                      warrants=WarrantSigner(bytes.fromhex(warrant_private))) as gs,
        mqtt(mosquitto, CLIENT) as cm,
        mqtt(mosquitto, "doc-observer") as om,
        mqtt(mosquitto, "odc-node-fake-1",
             will=aiomqtt.Will("odc/sat/fake-1/status", will, qos=1, retain=True)) as fm,
        asyncio.TaskGroup() as tg,
    ):
        client = RawClient(cm)
        await cm.subscribe(f"odc/ground/rep/{CLIENT}", qos=1)
        reader = tg.create_task(client.read())
        await om.subscribe("odc/sat/sat-a/#", qos=1)

        async def observe() -> None:
            async for msg in om.messages:
                if msg.payload:
                    sat_a.append((msg.topic.value, unpack(msg.payload)))

        observer = tg.create_task(observe())

        # -- upload in chunks: out of order, one twice; stored once every chunk is there ---
        assert await client.ok("has_model", {"model": model}) == {"has": False}
        size = 4096
        chunks = [data[i:i + size] for i in range(0, len(data), size)]
        order = [*reversed(range(len(chunks))), 0]
        for n, i in enumerate(order):
            got = await client.ok("model_chunk", {
                "kind": "model_chunk", "model": model, "index": i, "total": len(chunks),
                "size": len(data), "data": chunks[i]})
            assert got == {"stored": model if n >= len(chunks) - 1 else None}
        assert await client.ok("has_model", {"model": model}) == {"has": True}

        # -- bad requests: one Reply each, naming the field ---------------------------------
        x = np.random.default_rng(7).uniform(0, 16, (5, 64)).astype(np.float32)
        job = {"job_id": "doc-bad", "model": model, "inputs": {"input": tensor(x)}}
        rep = await client.request("jobs", req_id=41)
        assert (rep["req_id"], rep["ok"], rep["field"]) == (41, False, "req_id")
        for bad, field in [({**job, "deadline": T0 + 60}, "job.deadline"),
                           ({**job, "deadline_s": math.nan}, "job.deadline_s"),
                           ({**job, "job_id": "a/b"}, "job.job_id"),
                           ({**job, "priority": 10}, "job.priority")]:
            rep = await client.request("submit", {"job": bad})
            assert (rep["ok"], rep["field"], rep["data"]) == (False, field, {}), rep
        rep = await client.request("submit", {"job": job, "node": "nowhere"})
        assert (rep["ok"], rep["field"]) == (False, "node")
        rep = await client.request("model_chunk", {"model": model, "index": 0, "total": 0,
                                                   "size": 1, "data": b"x"})
        assert (rep["ok"], rep["field"]) == (False, "total")
        rep = await client.request("nonsense")
        assert (rep["ok"], rep["field"]) == (False, "op")
        rep = await client.request("job", {"job_id": "never-submitted"})
        assert rep["ok"] is False and rep["error"]

        # -- the fake node: sealed by the document's construction --------------------------
        fake = FakeNode(fm, will, 0)
        await fm.subscribe("odc/sat/fake-1/job", qos=1)
        await fake.announce(model)
        job_f = await client.submit({"job_id": "doc-fake.1", "model": model,
                                     "inputs": {"input": tensor(x)}, "deadline_s": 600.0},
                                    node="fake-1")
        async with asyncio.timeout(10):
            msg = await anext(aiter(fm.messages))
        assert msg.topic.value == "odc/sat/fake-1/job"
        submitted = unpack(msg.payload)
        assert submitted["kind"] == "job" and submitted["job_id"] == job_f
        assert submitted["epoch"] == 0 and submitted["model"] == model
        assert submitted["deadline"] == pytest.approx(submitted["submitted_at"] + 600.0)
        assert warrant_verifies(warrant_public, submitted)
        assert not warrant_verifies(warrant_public, {**submitted, "priority": 9})
        mine = reference(array(submitted["inputs"]["input"]))
        outputs = {k: tensor(v) for k, v in mine.items()}
        accepted = {"kind": "job_event", "job_id": job_f, "epoch": 0, "node": "fake-1",
                    "state": "accepted", "t": T0, "detail": None, "target": None}
        await fake.send("event", fake.sealed("event", accepted))

        genuine = result_of(submitted, outputs)
        zeros = {k: tensor(np.zeros_like(v)) for k, v in mine.items()}
        tampered = seal(KEY_F, "odc/sat/fake-1/result", fake.seq + 1, genuine)
        tampered["outputs"] = zeros  # altered after sealing
        fake.seq += 1
        refused = [
            pack(tampered),
            pack({**result_of(submitted, zeros)}),  # unsealed
            pack(seal(KEY_A, "odc/sat/fake-1/result", fake.seq + 1,  # another node's key
                      result_of(submitted, zeros))),
            pack(seal(KEY_F, "odc/sat/sat-a/result", fake.seq + 2,  # sealed for another topic
                      result_of(submitted, zeros))),
        ]
        fake.seq += 2
        rejected = gs.rejected
        for payload in refused:
            await fake.send("result", payload)
        good = fake.sealed("result", genuine)
        await fake.send("result", good)
        rec = await client.result(job_f)
        assert same_outputs(rec, reference(x)), "the ground recorded a refused result"
        assert rec["node"] == "fake-1" and rec["duplicates"] == 0
        assert gs.rejected == rejected + len(refused)

        # the same sealed bytes again: a replay, refused; a fresh seal of it: a duplicate
        await fake.send("result", good)
        await fake.send("result", fake.sealed("result", genuine))
        async with asyncio.timeout(10):
            while gs.duplicates < 1:  # noqa: ASYNC110 (the ground's own counter)
                await asyncio.sleep(0.05)
        assert gs.rejected == rejected + len(refused) + 1
        assert (await client.ok("job", {"job_id": job_f}))["job"]["duplicates"] == 1

        # the last will: an old number (0, far below the window), taken because the online
        # status named it; the earlier online status is a replay after it
        assert gs.nodes["fake-1"].status == "online"
        await fake.send("status", will, retain=True)  # as the broker would on a lost link
        async with asyncio.timeout(10):
            while gs.nodes["fake-1"].status != "offline":  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        before = gs.rejected
        await fake.send("status", fake.online, retain=True)
        async with asyncio.timeout(10):
            while gs.rejected == before:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert gs.nodes["fake-1"].status == "offline"

        # -- the real node: the ground sends it the model, it runs the job -----------------
        job_a = await client.submit({"job_id": "doc-real:1", "model": model,
                                     "inputs": {"input": tensor(x)}, "priority": 7},
                                    node="sat-a")
        rec = await client.result(job_a, timeout_s=40.0)
        assert rec["node"] == "sat-a"
        assert same_outputs(rec, reference(x))

        # a job sent straight to sat-a, which runs only jobs the ground signed
        async def answer(job_id: str, kind: str) -> dict[str, Any]:
            async with asyncio.timeout(15):
                while True:
                    for _, o in sat_a:
                        if o.get("kind") == kind and o.get("job_id") == job_id:
                            return o
                    await asyncio.sleep(0.05)

        forged_job = {"kind": "job", "job_id": "doc-unsigned", "model": model,
                      "inputs": {"input": tensor(x)}, "warrant": "00" * 64}
        await cm.publish("odc/sat/sat-a/job", pack(forged_job), qos=1)
        err = await answer("doc-unsigned", "error")
        assert (err["code"], err["field"]) == ("unauthenticated", "warrant"), err
        failed = await answer("doc-unsigned", "result")
        assert failed["status"] == "failed" and failed["reason"].startswith("unauthenticated")

        # -- telecommands to sat-a, signed as the document says ----------------------------
        async def command(cmd: dict[str, Any]) -> dict[str, Any]:
            seen = len(sat_a)
            await cm.publish("odc/sat/sat-a/cmd", pack(cmd), qos=1)
            async with asyncio.timeout(15):
                while True:
                    for _, o in sat_a[seen:]:
                        if o.get("kind") == "ack" and o["cmd_id"] == cmd["cmd_id"]:
                            return o
                    await asyncio.sleep(0.05)

        # keys in any order, fields left out: the MAC covers the map as sent
        ping = {"t": T0, "name": "ping", "counter": 10, "cmd_id": "doc-ping-1", "kind": "command"}
        ping["hmac"] = command_mac(CMD_KEY, ping)
        ack = await command(ping)
        assert (ack["ok"], ack["name"], ack["node"]) == (True, "ping", "sat-a"), ack
        again = await command({**ping, "cmd_id": "doc-ping-1"})  # the same bytes: replayed
        assert again["ok"] is False and again["reason"].startswith("counter"), again
        forged = {**ping, "counter": 11, "cmd_id": "doc-ping-2"}  # altered after signing
        ack = await command(forged)
        assert ack["ok"] is False and ack["reason"].startswith("hmac"), ack

        observer.cancel()
        reader.cancel()

    # every message sat-a sealed verifies by the document's construction, numbers unique
    outgoing = ("status", "state", "event", "result", "ack")  # what the node publishes
    sealed = [(t, o) for t, o in sat_a if t.rsplit("/", 1)[-1] in outgoing]
    assert {t.rsplit("/", 1)[-1] for t, _ in sealed} == set(outgoing)
    for topic, obj in sealed:
        assert verifies(KEY_A, topic, obj), (topic, obj.get("kind"))
    seqs = [o["auth"]["seq"] for _, o in sealed]
    assert len(seqs) == len(set(seqs))
    online = [o for t, o in sealed if o["kind"] == "status" and o["state"] == "online"]
    assert online and isinstance(online[0]["will_seq"], int)
    assert all("auth" not in o for t, o in sat_a if t.endswith("/telemetry"))
    assert any(o["kind"] == "model_stored" and o["model"] == model for _, o in sealed)
