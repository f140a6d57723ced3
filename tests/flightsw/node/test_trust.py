"""Trust on the wire at the node: telecommand counters survive a restart, handovers that
do not add up are answered, and a node with a key seals everything it says."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgpack
from node_harness import DIGITS, digits_inputs, kind, model_hash, running_node, upload, wait_for

from flightsw.bus import MemoryBus
from flightsw.clock import WallClock
from flightsw.protocol import Command, Handover, JobSubmit, Tensor, dump, topics
from flightsw.protocol.auth import sign_command
from flightsw.protocol.codec import decode
from flightsw.protocol.sign import Verifier
from flightsw.protocol.warrant import WarrantSigner, new_warrant_key

T0 = 1_790_000_000.0
CMD_KEY = "sat-cmd-key"


async def test_a_telecommand_replayed_after_a_restart_is_refused(tmp_path: Path) -> None:
    """Finding 5: the accepted counter was kept in memory only."""
    ping = dump(sign_command(Command(cmd_id="c1", name="ping", counter=5, t=T0), CMD_KEY))
    for round_ in ("first", "after restart"):
        bus = MemoryBus()
        clock = WallClock(epoch=T0)
        async with (
            running_node(bus, clock, tmp_path / "n1", command_key=CMD_KEY),
            bus.subscribe(topics.ack("n1")) as acks,
        ):
            await bus.publish(topics.command("n1"), ping)
            _, ack = await wait_for(acks, kind("ack", cmd_id="c1"))
            if round_ == "first":
                assert ack["ok"], ack
            else:
                assert not ack["ok"] and "counter: 5 is not above the last accepted 5" in (
                    ack["reason"])
    assert (tmp_path / "n1" / "command.counter").read_text().strip() == "5"


async def test_a_command_mac_covers_the_map_as_sent_in_any_key_order(tmp_path: Path) -> None:
    signed = sign_command(Command(cmd_id="c2", name="ping", counter=1, t=T0), CMD_KEY)
    body = signed.model_dump(mode="python")
    reordered = dict(reversed(list(body.items())))  # another client, another key order
    bus = MemoryBus()
    async with (
        running_node(bus, WallClock(epoch=T0), tmp_path / "n1", command_key=CMD_KEY),
        bus.subscribe(topics.ack("n1")) as acks,
    ):
        await bus.publish(topics.command("n1"), msgpack.packb(reordered, use_bin_type=True))
        _, ack = await wait_for(acks, kind("ack", cmd_id="c2"))
        assert ack["ok"], ack


async def test_handovers_that_do_not_add_up_are_answered_not_run(tmp_path: Path) -> None:
    """Finding 3: a handover whose dst is not the receiver got no answer at all; one whose
    src is not the node whose topic carried it ran."""
    bus = MemoryBus()
    async with (
        running_node(bus, WallClock(epoch=T0), tmp_path / "n1"),
        bus.subscribe(topics.event("n1")) as events,
    ):
        model = await upload(bus, "n1", DIGITS)
        assert model == model_hash(DIGITS)
        job = JobSubmit(job_id="h1", epoch=1, model=model,
                        inputs={"input": Tensor.from_array(digits_inputs(1))})
        wrong_dst = Handover(src="sat-b", dst="sat-z", t=T0, job=job)
        await bus.publish(topics.handover("sat-b", "n1"), dump(wrong_dst))
        _, err = await wait_for(events, kind("error", code="invalid_handover"))
        assert err["field"] == "dst" and err["job_id"] == "h1"
        spoofed = Handover(src="sat-c", dst="n1", t=T0, job=job)  # sent by sat-b
        await bus.publish(topics.handover("sat-b", "n1"), dump(spoofed))
        _, err = await wait_for(events, kind("error", code="invalid_handover"))
        assert err["field"] == "src" and "sender sat-b" in err["message"]
        good = Handover(src="sat-b", dst="n1", t=T0, job=job)
        await bus.publish(topics.handover("sat-b", "n1"), dump(good))
        await wait_for(events, kind("job_event", job_id="h1", state="accepted"))


async def test_a_node_with_a_key_seals_what_it_says(tmp_path: Path) -> None:
    key = bytes(range(32))
    (tmp_path / "n1.key").write_text(key.hex() + "\n")
    bus = MemoryBus()
    verifier = Verifier({"n1": key})
    async with (
        bus.subscribe("odc/sat/n1/#") as said,
        running_node(bus, WallClock(epoch=T0), tmp_path / "n1",
                     node_key_file=tmp_path / "n1.key") as node,
    ):
        model = await upload(bus, "n1", DIGITS)
        job = JobSubmit(job_id="s1", model=model,
                        inputs={"input": Tensor.from_array(digits_inputs(2))})
        await bus.publish(topics.job("n1"), dump(job))
        leaves: set[str] = set()
        async with asyncio.timeout(20):
            while "result" not in leaves:
                msg = await said.get()
                leaf = msg.topic.rsplit("/", 1)[-1]
                if leaf in ("job", "model", "telemetry"):
                    continue  # to the node, or unsealed housekeeping
                verifier.check("n1", msg.topic, decode(msg.payload))
                leaves.add(leaf)
        assert {"status", "state", "event", "result"} <= leaves
        assert node.sealer.key == key
    assert int((tmp_path / "n1" / "auth.seq").read_text()) > verifier.high("n1")


async def test_with_the_grounds_key_a_node_runs_only_jobs_the_ground_signed(
    tmp_path: Path,
) -> None:
    """Finding 3: a node handed a job another node made up ran it."""
    priv, pub = new_warrant_key()
    (tmp_path / "ground.warrant.pub").write_text(pub + "\n")
    signer = WarrantSigner(bytes.fromhex(priv))
    bus = MemoryBus()
    async with (
        running_node(bus, WallClock(epoch=T0), tmp_path / "n1",
                     ground_public_key_file=tmp_path / "ground.warrant.pub"),
        bus.subscribe(topics.event("n1")) as events,
        bus.subscribe(topics.result("n1")) as results,
    ):
        model = await upload(bus, "n1", DIGITS)
        x = {"input": Tensor.from_array(digits_inputs(1))}
        made_up = JobSubmit(job_id="fake", epoch=1, model=model, inputs=x)
        await bus.publish(topics.handover("sat-b", "n1"),
                          dump(Handover(src="sat-b", dst="n1", t=T0, job=made_up)))
        _, err = await wait_for(events, kind("error", code="invalid_handover"))
        assert err["field"] == "warrant" and "missing" in err["message"]
        altered = signer.sign(JobSubmit(job_id="real", model=model, inputs=x, priority=2))
        altered = altered.model_copy(update={"priority": 0, "epoch": 1})  # jumps the queue
        await bus.publish(topics.handover("sat-b", "n1"),
                          dump(Handover(src="sat-b", dst="n1", t=T0, job=altered)))
        _, err = await wait_for(events, kind("error", code="invalid_handover"))
        assert err["field"] == "warrant" and "does not verify" in err["message"]
        await bus.publish(topics.job("n1"), dump(made_up))  # straight to the job topic
        _, res = await wait_for(results, kind("result", job_id="fake"))
        assert res["status"] == "failed" and res["reason"].startswith("unauthenticated: warrant")
        good = signer.sign(JobSubmit(job_id="real", model=model, inputs=x)).model_copy(
            update={"epoch": 1, "migrations": 1})  # moved on by a node: still the ground's job
        await bus.publish(topics.handover("sat-b", "n1"),
                          dump(Handover(src="sat-b", dst="n1", t=T0, job=good)))
        _, res = await wait_for(results, kind("result", job_id="real"))
        assert res["status"] == "done"


async def test_a_job_id_a_result_could_not_carry_gets_a_named_error_only(
    tmp_path: Path,
) -> None:
    bus = MemoryBus()
    async with (
        running_node(bus, WallClock(epoch=T0), tmp_path / "n1"),
        bus.subscribe(topics.event("n1")) as events,
        bus.subscribe(topics.result("n1")) as results,
    ):
        model = await upload(bus, "n1", DIGITS)
        x = {"input": Tensor.from_array(digits_inputs(1)).model_dump()}
        for bad in ("a/b#", "x" * 129):
            await bus.publish(topics.job("n1"), msgpack.packb(
                {"kind": "job", "job_id": bad, "model": model, "inputs": x}, use_bin_type=True))
            _, err = await wait_for(events, lambda _m, o: o.get("kind") == "error")
            assert (err["code"], err["field"], err["job_id"]) == ("invalid_job", "job_id", None)
        await bus.publish(topics.job("n1"), dump(JobSubmit(
            job_id="ok", model=model, inputs={"input": Tensor.from_array(digits_inputs(1))})))
        _, res = await wait_for(results, kind("result"))
        assert res["job_id"] == "ok"  # the first result: nothing for the bad ids
