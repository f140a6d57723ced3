"""With the nodes' keys the console believes a node's status, state, events and acks only
when sealed by that node, as the ground does: a real keyed node on a real mosquitto shows,
while forged messages (unsealed, a wrong MAC, a replayed state) are refused and counted,
and never reach the fleet, the event log or the map."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from mosquitto import MosquittoProcess
from node_harness import running_node
from prometheus_client.parser import text_string_to_metric_families

from flightsw.bus import Bus
from flightsw.bus.mqtt import MqttBus
from flightsw.clock import WallClock
from flightsw.protocol import Ack, JobEvent, Status, dump, topics
from flightsw.protocol.codec import encode
from flightsw.protocol.messages import Auth
from flightsw.protocol.sign import load_keys, mac, new_key
from groundstation.console.service import ConsoleService

pytestmark = pytest.mark.mqtt

NODE = "sat-k"


async def _until(what: str, cond: Callable[[], bool], timeout: float = 15.0) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not cond():  # noqa: ASYNC110 (the state is the service's)
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def _event(t: float, job: str, target: str) -> JobEvent:
    return JobEvent(job_id=job, epoch=1, node=NODE, state="handed_over", t=t, target=target)


async def _next_payload(bus: Bus, topic: str) -> bytes:
    async with bus.subscribe(topic, qos=1) as sub:
        return (await sub.get()).payload


async def test_forged_node_messages_do_not_reach_the_console(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    (tmp_path / "keys").mkdir()
    key_file = tmp_path / "keys" / f"{NODE}.key"
    key_file.write_text(new_key() + "\n")
    keys = load_keys(tmp_path / "keys")
    clock = WallClock()
    async with (
        MqttBus(mosquitto.url, "seals-console", clean_start=True) as cbus,
        MqttBus(mosquitto.url, "seals-node", clean_start=True) as nbus,
        MqttBus(mosquitto.url, "seals-forger", clean_start=True) as fbus,
        ConsoleService(cbus, clock, tmp_path / "ground", port=0, push_period_s=0.05,
                       node_keys=keys) as c,
        # a real node sealing with its key: its status, state and telemetry show
        running_node(nbus, clock, tmp_path / "node", node_id=NODE, node_key_file=key_file,
                     telemetry_period_s=1.0, state_period_s=1.0),
    ):
        await _until("the sealed node online with its state",
                     lambda: NODE in c.fleet.rows and c.fleet.rows[NODE].status == "online"
                     and c.fleet.rows[NODE].state is not None)
        assert c.rejected == 0  # nothing the node sealed was refused
        old_state = await _next_payload(fbus, topics.state(NODE))
        await _next_payload(fbus, topics.state(NODE))  # a newer one was accepted since

        t = clock.now()
        forged: list[tuple[str, bytes]] = [
            # unsealed: a false safe mode, and a handover that never happened
            (topics.status(NODE), dump(Status(node=NODE, state="safe", t=t))),
            (topics.event(NODE), dump(_event(t, "f" * 32, "sat-forged"))),
            (topics.ack(NODE), dump(Ack(node=NODE, cmd_id="c" * 32, name="pause", ok=True,
                                        t=t))),
            # sealed with a MAC that does not verify
            (topics.event(NODE), dump(_event(t, "e" * 32, "sat-badmac").model_copy(
                update={"auth": Auth(seq=10**9, mac="0" * 64)}))),
            # a real sealed state of the node, sent again
            (topics.state(NODE), old_state),
        ]
        for topic, payload in forged:
            await fbus.publish(topic, payload, qos=1)
        await _until("every forgery refused", lambda: c.rejected == len(forged))
        # a message sealed with the node's key passes: the check is the key, not a block
        body = _event(t, "a" * 32, "sat-real").model_dump(exclude={"auth"})
        seq = 10**12
        body["auth"] = {"seq": seq, "mac": mac(keys[NODE], topics.event(NODE), seq, body)}
        await fbus.publish(topics.event(NODE), encode(body), qos=1)
        await _until("the sealed handover in the event log",
                     lambda: any("sat-real" in e["text"] for e in c.events))

        assert c.fleet.rows[NODE].status == "online"
        texts = " ".join(e["text"] for e in c.events)
        assert "sat-forged" not in texts and "sat-badmac" not in texts
        assert "safe" not in texts and "ack pause" not in texts
        assert [i["dst"] for i in c.isls_in_use()] == ["sat-real"]
        async with aiohttp.ClientSession() as s, s.get(c.url + "metrics") as r:
            fams = {f.name: f for f in text_string_to_metric_families(await r.text())}
        assert fams["odc_console_messages_rejected"].samples[0].value == len(forged)


async def test_without_keys_the_console_takes_what_it_hears(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    """The control: the same unsealed status is believed by a console with no node keys."""
    clock = WallClock()
    async with (
        MqttBus(mosquitto.url, "nokeys-console", clean_start=True) as cbus,
        MqttBus(mosquitto.url, "nokeys-forger", clean_start=True) as fbus,
        ConsoleService(cbus, clock, tmp_path, port=0, push_period_s=0.05) as c,
    ):
        await fbus.publish(topics.status(NODE), dump(Status(node=NODE, state="safe",
                                                            t=clock.now())), qos=1)
        await _until("the status shown", lambda: NODE in c.fleet.rows
                     and c.fleet.rows[NODE].status == "safe")
        assert c.rejected == 0


def test_serve_hands_its_node_keys_to_the_console(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``groundstation serve --node-keys DIR --http ...``: the console gets the same keys."""
    monkeypatch.delenv("ODC_NODE_KEYS", raising=False)
    from groundstation.cli import build_parser
    from groundstation.cli.keys import node_keys_from_args
    from groundstation.cli.serve import console_from_args

    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / f"{NODE}.key").write_text(new_key() + "\n")
    args = build_parser().parse_args([
        "serve", "--archive", str(tmp_path / "a"), "--node-keys", str(tmp_path / "keys"),
        "--http", "127.0.0.1:0"])
    console = console_from_args(args, None, WallClock(), tmp_path / "a", None,
                                node_keys_from_args(args))
    assert isinstance(console, ConsoleService)
    assert console.verifier is not None and console.verifier.knows(NODE)
    args = build_parser().parse_args(["serve", "--archive", str(tmp_path / "a"),
                                      "--http", "127.0.0.1:0"])
    bare = console_from_args(args, None, WallClock(), tmp_path / "a", None,
                             node_keys_from_args(args))
    assert isinstance(bare, ConsoleService) and bare.verifier is None
