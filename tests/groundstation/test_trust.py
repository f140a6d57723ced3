"""Trust on the wire at the ground: who may change what the ground believes, and every
request answered. In process (MemoryBus, fake nodes published by the test), each finding
of the trust issue as a test: a forged status, forged results, jobs that can never run,
bad requests, and, with node keys, unsealed, forged and replayed node messages."""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest
from node_harness import DIGITS, digits_inputs

from flightsw.bus import MemoryBus, Subscription
from flightsw.clock import WallClock
from flightsw.protocol import JobResult, JobSubmit, NodeState, Status, dump, parse, topics
from flightsw.protocol.codec import decode, encode
from flightsw.protocol.messages import Message
from flightsw.protocol.sign import Sealer, SequenceFile
from flightsw.protocol.warrant import WarrantSigner, WarrantVerifier, new_warrant_key
from groundstation.client import GroundClient
from groundstation.exceptions import GroundError
from groundstation.protocol import REQUEST_TOPIC, Reply, reply_topic
from groundstation.service import GroundStation

T0 = 1_790_000_000.0
KEYS = {"sat-a": bytes(range(32)), "sat-b": bytes(range(1, 33))}


def heartbeat(node: str, models: list[str], leases: dict[str, int] | None = None) -> NodeState:
    return NodeState(
        node=node, t=T0, soc=0.8, battery_wh=100.0, floor_wh=20.0, temperature_c=20.0,
        throttle_c=80.0, queue_depth=0, queued_work_s=0.0, sunlit=1.0, next_eclipse_s=None,
        eclipse_s=0.0, effective_ops_per_s=1e9, power_w=10.0, position_km=[7000.0, 0.0, 0.0],
        models=models, leases=leases or {},
    )


@contextlib.asynccontextmanager
async def ground(
    tmp_path: Path, **kw: Any
) -> AsyncIterator[tuple[MemoryBus, GroundStation, GroundClient]]:
    bus = MemoryBus()
    clock = WallClock(epoch=T0, scale=1.0)
    async with (
        GroundStation(bus, clock, tmp_path / "archive", tick_s=0.1, **kw) as gs,
        GroundClient(bus, clock, client_id="t", timeout_s=5) as gc,
    ):
        yield bus, gs, gc


class FakeNode:
    """A node as the ground sees it: status, heartbeats, results, sealed when it has a key."""

    def __init__(self, bus: MemoryBus, node: str, tmp_path: Path, key: bytes | None = None):
        self.bus, self.node = bus, node
        self.sealer = Sealer(key, SequenceFile(tmp_path / f"{node}.seq") if key else None)
        self.sent: list[tuple[str, bytes]] = []

    async def send(self, topic: str, msg: Message, *, retain: bool = False) -> bytes:
        payload = encode(self.sealer.seal(topic, msg.model_dump(mode="python")))
        self.sent.append((topic, payload))
        await self.bus.publish(topic, payload, retain=retain)
        return payload

    async def online(self, models: list[str], leases: dict[str, int] | None = None) -> None:
        await self.send(topics.status(self.node), Status(node=self.node, state="online", t=T0),
                        retain=True)
        await self.send(topics.state(self.node), heartbeat(self.node, models, leases))

    async def result(self, job: JobSubmit, outputs_from: str | None = None) -> bytes:
        res = JobResult(job_id=job.job_id, epoch=job.epoch, node=outputs_from or self.node,
                        status="done", finished_at=T0)
        return await self.send(topics.result(self.node), res)


async def next_job(sub: Subscription) -> tuple[str, JobSubmit]:
    msg = await asyncio.wait_for(sub.get(), 5.0)
    node = topics.node_from_topic(msg.topic)
    assert node is not None
    return node, parse(JobSubmit, msg.payload)


async def state_of(gc: GroundClient, job_id: str, want: str, timeout_s: float = 5.0) -> Any:
    async with asyncio.timeout(timeout_s):
        while (rec := await gc.job(job_id)).state != want:  # noqa: ASYNC110 (polls the service)
            await asyncio.sleep(0.05)
    return rec


# -- open mode (no node keys): the topic names the speaker, the lease names the holder ------
async def test_a_forged_status_alone_draws_no_work(tmp_path: Path) -> None:
    """Finding 1: one non-retained status of a node that never sends a heartbeat used to
    take every job (uplinked to a ghost, for ever)."""
    async with ground(tmp_path) as (bus, _gs, gc), bus.subscribe("odc/sat/+/job") as jobs:
        model = await gc.upload_model(DIGITS)
        await bus.publish(topics.status("ghost"),
                          dump(Status(node="ghost", state="online", t=T0)))
        real = FakeNode(bus, "sat-a", tmp_path)
        await real.online([model])
        ids = [await gc.submit(model, {"input": digits_inputs(1)}) for _ in range(20)]
        got = [await next_job(jobs) for _ in ids]
        assert {n for n, _ in got} == {"sat-a"}
        assert sorted(j.job_id for _, j in got) == sorted(ids)


async def test_a_silent_node_stops_being_a_target(tmp_path: Path) -> None:
    async with ground(tmp_path, lease_s=0.5) as (bus, gs, gc):
        model = await gc.upload_model(DIGITS)
        await FakeNode(bus, "sat-a", tmp_path).online([model])
        await asyncio.sleep(0.05)
        assert gs.placeable(gs.nodes["sat-a"], gs.clock.now())
        await asyncio.sleep(0.7)  # no heartbeat for longer than a lease
        assert not gs.placeable(gs.nodes["sat-a"], gs.clock.now())


async def test_only_the_lease_holder_ends_a_job_on_its_own_topic(tmp_path: Path) -> None:
    """Finding 2: a result from any topic, naming any node, used to be recorded."""
    async with ground(tmp_path) as (bus, gs, gc), bus.subscribe("odc/sat/+/job") as jobs:
        model = await gc.upload_model(DIGITS)
        a, b = FakeNode(bus, "sat-a", tmp_path), FakeNode(bus, "sat-b", tmp_path)
        await a.online([model])
        job_id = await gc.submit(model, {"input": digits_inputs(1)}, node="sat-a")
        _, job = await next_job(jobs)
        rogue = FakeNode(bus, "rogue", tmp_path)
        await rogue.result(job, outputs_from="rogue")  # another topic, its own name
        await rogue.result(job, outputs_from="sat-a")  # another topic, the holder's name
        await b.result(job)  # a real node, its own topic, not the holder
        await asyncio.sleep(0.2)
        assert (await gc.job(job_id)).state == "uplinked"
        assert gs.rejected == 3
        await a.result(job)
        rec = await state_of(gc, job_id, "done")
        assert rec.node == "sat-a" and rec.duplicates == 0


async def test_a_job_pinned_to_an_unknown_node_is_refused_at_submission(tmp_path: Path) -> None:
    async with ground(tmp_path) as (_bus, _gs, gc):
        model = await gc.upload_model(DIGITS)
        with pytest.raises(GroundError, match=r"^node: no node 'sat-999' is known"):
            await gc.submit(model, {"input": digits_inputs(1)}, node="sat-999")


async def test_a_job_over_the_nodes_payload_limit_is_refused_at_submission(
    tmp_path: Path,
) -> None:
    """Finding 6: a 50 MB input got ok=true and went round the lease for ever."""
    async with ground(tmp_path, max_job_bytes=64 * 1024) as (_bus, gs, gc):
        model = await gc.upload_model(DIGITS)
        big = np.zeros((300, 64), np.float32)  # 76,800 bytes of inputs
        with pytest.raises(GroundError, match=r"^job\.inputs: the job is \d+ bytes, over the "
                                              r"65536-byte payload limit"):
            await gc.submit(model, {"input": big})
        assert gs.table.counts() == {}


async def test_a_job_no_node_keeps_ends_failed_after_its_attempts(tmp_path: Path) -> None:
    """Finding 6: a job a node refuses (or loses) used to be re-queued at epoch 1, 2, ..."""
    async with (
        ground(tmp_path, lease_s=0.3, max_attempts=3) as (bus, _gs, gc),
        bus.subscribe("odc/sat/+/job") as jobs,
    ):
        model = await gc.upload_model(DIGITS)
        sink = FakeNode(bus, "sat-a", tmp_path)

        async def heartbeats() -> None:  # alive, but never holds the job
            while True:
                await sink.online([model])
                await asyncio.sleep(0.05)

        beat = asyncio.create_task(heartbeats())
        job_id = await gc.submit(model, {"input": digits_inputs(1)})
        epochs = [(await next_job(jobs))[1].epoch for _ in range(3)]
        rec = await state_of(gc, job_id, "failed")
        beat.cancel()
        assert epochs == [0, 1, 2]
        assert rec.reason is not None and rec.reason.startswith(
            "undeliverable: lease lapsed after 3 uplinks")


# -- requests: every one with a readable reply address is answered -------------------------
async def ask(bus: MemoryBus, req: dict[str, Any], client: str = "raw") -> Reply | None:
    async with bus.subscribe(reply_topic(client)) as rep:
        await bus.publish(REQUEST_TOPIC, msgpack.packb(req, use_bin_type=True))
        try:
            msg = await asyncio.wait_for(rep.get(), 1.0)
        except TimeoutError:
            return None
    return parse(Reply, msg.payload)


async def test_every_bad_request_gets_a_reply_naming_the_field(tmp_path: Path) -> None:
    """Finding 7: these got only a log line, so a client resending until a reply looped."""
    async with ground(tmp_path) as (bus, _gs, gc):
        model = await gc.upload_model(DIGITS)
        x = {"dtype": "float32", "shape": [1, 64], "data": bytes(256)}
        job = {"job_id": "j1", "model": model, "inputs": {"input": x}}
        base = {"kind": "ground_request", "req_id": "r1", "client": "raw"}
        cases: list[tuple[dict[str, Any], str | None, str]] = [
            ({**base, "op": "launch"}, "op", r"^op: Input should be"),
            ({**base, "op": "jobs", "colour": 1}, "colour", r"^colour: Extra inputs"),
            ({**base, "op": "submit", "args": [1, 2]}, "args", r"^args: Input should be a valid"),
            ({**base, "op": "job", "args": {}}, "args.job_id", r"^args\.job_id: expected"),
            ({**base, "op": "submit", "args": {"job": {**job, "deadline_s": math.nan}}},
             "job.deadline_s", r"^job\.deadline_s: Input should be a finite number"),
            ({**base, "op": "submit", "args": {"job": {**job, "value": math.inf}}},
             "job.value", r"^job\.value: Input should be a finite number"),
            ({**base, "op": "submit", "args": {"job": {**job, "job_id": "a/b#"}}},
             "job.job_id", r"^job\.job_id: String should match pattern"),
            ({**base, "op": "submit", "args": {"job": {**job, "job_id": "x" * 129}}},
             "job.job_id", r"^job\.job_id: String should match pattern"),
        ]
        for req, field, error in cases:
            rep = await ask(bus, req)
            assert rep is not None, req
            assert (rep.ok, rep.req_id, rep.field) == (False, "r1", field), rep
            assert rep.error is not None
            assert re.match(error, rep.error), rep.error
        rep = await ask(bus, {**base, "req_id": 7, "op": "jobs"})  # echoed, and refused
        assert rep is not None and (rep.ok, rep.req_id, rep.field) == (False, 7, "req_id")
        assert await ask(bus, {"op": "jobs", "req_id": "r2"}) is None  # no reply address
        assert await ask(bus, {**base, "client": "a/b", "op": "jobs"}, client="a") is None
        assert [r.job_id for r in await gc.jobs()] == []  # still serving


# -- with node keys: only sealed, fresh messages of known nodes count -----------------------
async def test_with_keys_unsealed_and_forged_node_messages_are_refused(tmp_path: Path) -> None:
    async with (
        ground(tmp_path, node_keys=KEYS) as (bus, gs, gc),
        bus.subscribe("odc/sat/+/job") as jobs,
    ):
        model = await gc.upload_model(DIGITS)
        await FakeNode(bus, "sat-a", tmp_path).online([model])  # unsealed
        await FakeNode(bus, "sat-b", tmp_path, key=KEYS["sat-a"]).online([model])  # wrong key
        await FakeNode(bus, "ghost", tmp_path, key=bytes(32)).online([model])  # no key held
        await asyncio.sleep(0.2)
        assert gs.rejected == 6 and gs.nodes == {}
        with pytest.raises(GroundError, match="node: no node 'ghost'"):
            await gc.submit(model, {"input": digits_inputs(1)}, node="ghost")
        a = FakeNode(bus, "sat-a", tmp_path, key=KEYS["sat-a"])
        await a.online([model])
        job_id = await gc.submit(model, {"input": digits_inputs(1)})
        node, job = await next_job(jobs)
        assert node == "sat-a"
        await a.result(job)
        await state_of(gc, job_id, "done")


async def test_with_keys_a_replayed_message_is_refused_also_after_a_restart(
    tmp_path: Path,
) -> None:
    async with (
        ground(tmp_path, node_keys=KEYS) as (bus, gs, gc),
        bus.subscribe("odc/sat/+/job") as jobs,
    ):
        model = await gc.upload_model(DIGITS)
        a = FakeNode(bus, "sat-a", tmp_path, key=KEYS["sat-a"])
        await a.online([model])
        j1 = await gc.submit(model, {"input": digits_inputs(1)})
        _, job = await next_job(jobs)
        done = await a.result(job)
        await state_of(gc, j1, "done")
        await bus.publish(topics.result("sat-a"), done)  # the same bytes again
        await asyncio.sleep(0.1)
        assert gs.rejected == 1 and gs.duplicates == 0
    async with ground(tmp_path, node_keys=KEYS) as (bus, gs, gc):  # restarted
        for topic, payload in a.sent:
            await bus.publish(topic, payload)
        await asyncio.sleep(0.2)
        # the status in force is taken again (a broker hands its retained copy to a
        # restarted ground); the heartbeat and the result are refused
        assert gs.rejected == len(a.sent) - 1 and gs.nodes["sat-a"].state is None
        a.bus = bus
        await a.online([model])  # new numbers: accepted
        await asyncio.sleep(0.1)
        assert gs.nodes["sat-a"].status == "online"


async def test_with_keys_the_last_will_counts_once(tmp_path: Path) -> None:
    async with ground(tmp_path, node_keys=KEYS) as (bus, gs, gc):
        model = await gc.upload_model(DIGITS)
        a = FakeNode(bus, "sat-a", tmp_path, key=KEYS["sat-a"])
        off = Status(node="sat-a", state="offline", t=T0).model_dump(mode="python")
        will = encode(a.sealer.seal(topics.status("sat-a"), off))  # sealed at connect
        seq = decode(will)["auth"]["seq"]
        await a.send(topics.status("sat-a"),
                     Status(node="sat-a", state="online", t=T0, will_seq=seq))
        await a.send(topics.state("sat-a"), heartbeat("sat-a", [model]))
        await asyncio.sleep(0.1)
        assert gs.nodes["sat-a"].status == "online"
        await bus.publish(topics.status("sat-a"), will)  # the broker publishes it
        await asyncio.sleep(0.1)
        assert gs.nodes["sat-a"].status == "offline" and gs.rejected == 0
        await a.online([model])
        await bus.publish(topics.status("sat-a"), will)  # a replay of it
        await asyncio.sleep(0.1)
        assert gs.nodes["sat-a"].status == "online" and gs.rejected == 1
    # the node reconnects with a new will, then the ground restarts, then the node dies: the
    # restarted ground knows the will's number from its table
    will2 = encode(a.sealer.seal(topics.status("sat-a"), off))
    async with ground(tmp_path, node_keys=KEYS) as (bus, gs, gc):
        a.bus = bus
        await a.send(topics.status("sat-a"), Status(node="sat-a", state="online", t=T0,
                                                    will_seq=decode(will2)["auth"]["seq"]))
        await a.send(topics.state("sat-a"), heartbeat("sat-a", [model]))
        await asyncio.sleep(0.1)
        assert gs.rejected == 0
    async with ground(tmp_path, node_keys=KEYS) as (bus, gs, gc):
        await bus.publish(topics.status("sat-a"), will2)
        await asyncio.sleep(0.1)
        assert gs.rejected == 0 and gs.nodes["sat-a"].status == "offline"


async def test_with_a_warrant_key_every_uplinked_job_carries_the_grounds_signature(
    tmp_path: Path,
) -> None:
    priv, pub = new_warrant_key()
    signer, verifier = WarrantSigner(bytes.fromhex(priv)), WarrantVerifier(bytes.fromhex(pub))
    async with (
        ground(tmp_path, warrants=signer) as (bus, _gs, gc),
        bus.subscribe("odc/sat/+/job") as jobs,
    ):
        model = await gc.upload_model(DIGITS)
        await FakeNode(bus, "sat-a", tmp_path).online([model])
        await gc.submit(model, {"input": digits_inputs(2)}, priority=3)
        _, job = await next_job(jobs)
        verifier.check(job)
        assert job.warrant is not None


async def test_refusals_name_their_field_and_odd_reply_addresses_are_not_used(
    tmp_path: Path,
) -> None:
    async with ground(tmp_path) as (bus, gs, gc):
        model = await gc.upload_model(DIGITS)
        bad_batch = {"a": {"dtype": "float32", "shape": [2, 64], "data": bytes(512)},
                     "b": {"dtype": "float32", "shape": [3, 64], "data": bytes(768)}}
        base = {"kind": "ground_request", "req_id": "r", "client": "raw"}
        rep = await ask(bus, {**base, "op": "submit",
                              "args": {"job": {"job_id": "j", "model": model,
                                               "inputs": bad_batch}}})
        assert rep is not None and (rep.ok, rep.field) == (False, "inputs")
        rep = await ask(bus, {**base, "op": "job", "args": {"job_id": "nope"}})
        assert rep is not None and (rep.ok, rep.field) == (False, "args.job_id")
        assert await ask(bus, {**base, "client": "raw\n", "op": "jobs"}) is None
        # a heartbeat with a non-finite figure is refused (placement would read it)
        nan = heartbeat("sat-a", [model]).model_copy(update={"queued_work_s": math.nan})
        await bus.publish(topics.state("sat-a"), dump(nan))
        await asyncio.sleep(0.1)
        assert "sat-a" not in gs.nodes
