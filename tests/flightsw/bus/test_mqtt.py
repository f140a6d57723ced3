"""MqttBus against a real mosquitto: sessions, will, outages, backoff, errors."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import ssl
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from mosquitto import MosquittoProcess

from flightsw.broker import free_port
from flightsw.bus import Message, MqttBus, Subscription, Will
from flightsw.exceptions import BusError, ConfigError

pytestmark = pytest.mark.mqtt

WAIT_S = 10.0
FAST: dict[str, Any] = {"reconnect_min_s": 0.05, "reconnect_max_s": 0.3, "connect_timeout_s": 5.0}
REPO = Path(__file__).resolve().parents[3]


async def receive(sub: Subscription, count: int) -> list[Message]:
    async with asyncio.timeout(WAIT_S):
        return [await sub.get() for _ in range(count)]


async def wait_until_disconnected(bus: MqttBus) -> None:
    async with asyncio.timeout(WAIT_S):
        await bus.disconnected.wait()


async def test_last_will_is_published_when_a_node_process_is_killed(
    mosquitto: MosquittoProcess,
) -> None:
    script = textwrap.dedent(f"""
        import asyncio
        from flightsw.bus import MqttBus, Will

        async def main():
            will = Will("node/victim/status", b"offline", qos=1, retain=True)
            async with MqttBus({mosquitto.url!r}, "victim", will=will) as bus:
                await bus.publish("node/victim/status", b"online", retain=True)
                await bus.flush()
                print("ready", flush=True)
                await asyncio.Event().wait()

        asyncio.run(main())
    """)
    async with MqttBus(mosquitto.url, "watcher") as watcher:
        async with watcher.subscribe("node/+/status") as status:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", script, cwd=REPO, stdout=asyncio.subprocess.PIPE,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )
            try:
                assert proc.stdout is not None
                async with asyncio.timeout(WAIT_S):
                    assert await proc.stdout.readline() == b"ready\n"
                assert await receive(status, 1) == [
                    Message("node/victim/status", b"online", retain=False)]
                proc.kill()  # SIGKILL: no DISCONNECT reaches the broker
                await proc.wait()
                assert await receive(status, 1) == [
                    Message("node/victim/status", b"offline", retain=False)]
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        async with watcher.subscribe("node/victim/status") as late:
            assert await receive(late, 1) == [
                Message("node/victim/status", b"offline", retain=True)]


async def test_will_fires_on_a_dropped_link_but_not_on_a_clean_close(
    mosquitto: MosquittoProcess, tcp_proxy: Callable[[int], Awaitable[Any]],
) -> None:
    proxy = await tcp_proxy(mosquitto.port)
    async with MqttBus(mosquitto.url, "watcher") as watcher, \
            watcher.subscribe("node/+/status") as status:
        will = Will("node/a/status", b"offline")
        async with MqttBus(proxy.url, "a", will=will, **FAST) as node:
            proxy.blocked = True
            proxy.sever()
            assert await receive(status, 1) == [Message("node/a/status", b"offline")]
            proxy.blocked = False
            async with asyncio.timeout(WAIT_S):
                await node.connected.wait()
            await node.publish("node/a/status", b"online", retain=True)
            assert await receive(status, 1) == [Message("node/a/status", b"online")]
        # a clean close sends DISCONNECT: the broker discards the will
        async with MqttBus(mosquitto.url, "marker") as marker:
            await marker.publish("node/marker/status", b"x")
        assert await receive(status, 1) == [Message("node/marker/status", b"x")]


async def test_broker_restart_loses_nothing_and_keeps_order(
    mosquitto: MosquittoProcess,
) -> None:
    n = 200
    async with MqttBus(mosquitto.url, "ground", **FAST) as ground, \
            ground.subscribe("sat/+/telemetry") as telemetry, \
            MqttBus(mosquitto.url, "sat-1", **FAST) as node:
        await node.publish("sat/1/telemetry", b"before")
        assert (await receive(telemetry, 1))[0].payload == b"before"

        await mosquitto.stop()
        await wait_until_disconnected(node)
        for i in range(n):  # waits in the outbox: publish must not block or fail
            await node.publish("sat/1/telemetry", i.to_bytes(4, "big"))
        assert node.pending == n
        await node.publish("sat/1/telemetry", b"qos0 while down", qos=0)
        assert node.dropped == 1

        await mosquitto.start()  # same port, sessions restored from the data directory
        await node.flush(WAIT_S)
        got = await receive(telemetry, n)
        if got[0].payload == b"before":
            # at-least-once: the broker may have stopped before our PUBACK for "before"
            # reached it, and then delivers it again
            got = got[1:] + await receive(telemetry, 1)
        assert [int.from_bytes(m.payload, "big") for m in got] == list(range(n))
        assert node.reconnects == 1
        assert ground.reconnects == 1
        assert node.stats()["pending"] == 0


async def test_persistent_session_queues_messages_while_the_link_is_down(
    mosquitto: MosquittoProcess, tcp_proxy: Callable[[int], Awaitable[Any]],
) -> None:
    proxy = await tcp_proxy(mosquitto.port)
    async with MqttBus(proxy.url, "node-7", **FAST) as node, \
            node.subscribe("tc/node-7/#") as commands, \
            MqttBus(mosquitto.url, "ground") as ground:
        proxy.blocked = True
        proxy.sever()
        await wait_until_disconnected(node)
        for i in range(50):
            await ground.publish(f"tc/node-7/{i % 3}", f"cmd-{i}".encode())
        await ground.flush(WAIT_S)
        assert commands.get_nowait() is None
        proxy.blocked = False
        got = await receive(commands, 50)
        assert [m.payload for m in got] == [f"cmd-{i}".encode() for i in range(50)]
        assert node.reconnects == 1


async def test_session_survives_a_process_restart_when_subscribed_before_connecting(
    mosquitto: MosquittoProcess,
) -> None:
    first = MqttBus(mosquitto.url, "node-9")
    # entering the subscription before the bus: it is made at connect and kept by the
    # broker's session after the bus closes
    async with first.subscribe("tc/node-9/#"), first:
        pass
    async with MqttBus(mosquitto.url, "ground") as ground:
        for i in range(5):
            await ground.publish("tc/node-9/run", f"job-{i}".encode())
        await ground.flush(WAIT_S)
    second = MqttBus(mosquitto.url, "node-9")
    async with second.subscribe("tc/node-9/#") as commands, second:
        got = await receive(commands, 5)
    assert [m.payload for m in got] == [f"job-{i}".encode() for i in range(5)]


async def test_clean_start_discards_the_old_session(mosquitto: MosquittoProcess) -> None:
    first = MqttBus(mosquitto.url, "node-4")
    async with first.subscribe("tc/node-4/#"), first:
        pass
    async with MqttBus(mosquitto.url, "ground") as ground:
        await ground.publish("tc/node-4/run", b"stale")
        await ground.flush(WAIT_S)
    fresh = MqttBus(mosquitto.url, "node-4", clean_start=True)
    async with fresh.subscribe("tc/node-4/#") as commands, fresh, \
            MqttBus(mosquitto.url, "ground") as ground:
        await ground.publish("tc/node-4/run", b"new")
        assert await receive(commands, 1) == [Message("tc/node-4/run", b"new")]


async def test_subscribing_during_an_outage_takes_effect_after_reconnect(
    mosquitto: MosquittoProcess, tcp_proxy: Callable[[int], Awaitable[Any]],
) -> None:
    proxy = await tcp_proxy(mosquitto.port)
    async with MqttBus(proxy.url, "node-2", **FAST) as node, \
            MqttBus(mosquitto.url, "ground") as ground:
        proxy.blocked = True
        proxy.sever()
        await wait_until_disconnected(node)
        async with node.subscribe("late/#") as late:
            proxy.blocked = False
            async with asyncio.timeout(WAIT_S):
                await node.connected.wait()
            await ground.publish("late/1", b"hello")
            assert await receive(late, 1) == [Message("late/1", b"hello")]


async def test_reconnects_back_off_without_a_storm_or_busy_loop(
    mosquitto: MosquittoProcess, tcp_proxy: Callable[[int], Awaitable[Any]],
) -> None:
    proxy = await tcp_proxy(mosquitto.port)
    async with MqttBus(proxy.url, "node-5", reconnect_min_s=0.1, reconnect_max_s=0.4) as node:
        proxy.blocked = True
        accepted = proxy.accepted
        cpu0, wall0 = time.process_time(), time.perf_counter()
        proxy.sever()
        await proxy.wait_accepted(accepted + 6)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        # delays 0.1, 0.2, 0.4, 0.4, 0.4 (x 0.8..1.2 jitter) between the 6 attempts
        assert wall >= 0.8 * (0.1 + 0.2 + 0.4 + 0.4 + 0.4)
        assert cpu < 0.5 * wall, f"{cpu:.2f} s CPU in {wall:.2f} s while the broker is down"
        assert not node.connected.is_set()
        proxy.blocked = False
        async with asyncio.timeout(WAIT_S):
            await node.connected.wait()
        assert node.reconnects == 1


async def test_duplicate_client_ids_back_off_instead_of_kicking_each_other_in_a_loop(
    mosquitto: MosquittoProcess, tcp_proxy: Callable[[int], Awaitable[Any]],
) -> None:
    proxy = await tcp_proxy(mosquitto.port)
    options: dict[str, Any] = {"reconnect_min_s": 0.1, "reconnect_max_s": 0.4}
    t0 = time.perf_counter()
    async with MqttBus(proxy.url, "twin", **options), MqttBus(proxy.url, "twin", **options):
        # each connect kicks the other one off; the one kicked sleeps before it returns
        await proxy.wait_accepted(10)
        elapsed = time.perf_counter() - t0
    # 8 take-overs after the two first connects, each after the loser's backoff
    # (0.1, 0.1, 0.2, 0.2, 0.4, 0.4, 0.4, 0.4 s, x 0.8..1.2): no storm
    assert elapsed >= 0.8 * 2.2


async def test_connect_timeout_names_the_url() -> None:
    url = f"mqtt://user:hunter2@127.0.0.1:{free_port()}"
    t0 = time.perf_counter()
    with pytest.raises(BusError) as info:
        async with MqttBus(url, "lonely", connect_timeout_s=0.5, reconnect_max_s=0.2):
            pass
    assert time.perf_counter() - t0 < 3.0
    message = str(info.value)
    assert url.replace("hunter2", "***") in message
    assert "hunter2" not in message
    assert "0.5 s" in message


async def test_connection_reset_before_connack_is_retried_then_times_out(
    mosquitto: MosquittoProcess, tcp_proxy: Callable[[int], Awaitable[Any]],
) -> None:
    proxy = await tcp_proxy(mosquitto.port)
    proxy.reset_on_accept = True
    t0 = time.perf_counter()
    with pytest.raises(BusError, match=f"cannot connect to MQTT broker {proxy.url}"):
        async with MqttBus(proxy.url, "node-3", connect_timeout_s=1.0, reconnect_max_s=0.2):
            pass
    assert time.perf_counter() - t0 < 3.0
    assert proxy.accepted >= 1
    proxy.reset_on_accept = False
    async with MqttBus(proxy.url, "node-3", connect_timeout_s=5.0) as node:
        assert node.connected.is_set()


async def test_bad_credentials_fail_fast_naming_the_url(
    mosquitto_factory: Callable[..., Awaitable[MosquittoProcess]], tmp_path: Path,
) -> None:
    passwords = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwords), "node-1", "right"],
                   check=True, capture_output=True)
    broker = await mosquitto_factory(password_file=passwords)
    ok = f"mqtt://node-1:right@127.0.0.1:{broker.port}"
    async with MqttBus(ok, "node-1") as bus, bus.subscribe("x") as sub:
        await bus.publish("x", b"authenticated")
        assert (await receive(sub, 1))[0].payload == b"authenticated"
    bad = f"mqtt://node-1:wrong@127.0.0.1:{broker.port}"
    t0 = time.perf_counter()
    with pytest.raises(BusError, match="refused") as info:
        async with MqttBus(bad, "node-1", connect_timeout_s=5.0):
            pass
    assert time.perf_counter() - t0 < 2.0  # no retrying until the timeout
    assert f"mqtt://node-1:***@127.0.0.1:{broker.port}" in str(info.value)


async def test_tls_connection_with_a_private_ca(
    mosquitto_factory: Callable[..., Awaitable[MosquittoProcess]], tmp_path: Path,
) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    tls_port = free_port()
    broker = await mosquitto_factory(config_extra=(
        f"listener {tls_port} 127.0.0.1\ncertfile {cert}\nkeyfile {key}\n"))
    url = f"mqtts://127.0.0.1:{tls_port}"
    context = ssl.create_default_context(cafile=str(cert))
    async with MqttBus(url, "tls-node", tls_context=context) as node, \
            MqttBus(broker.url, "plain-ground") as ground, ground.subscribe("secure/#") as sub:
        await node.publish("secure/hello", b"over tls")
        assert await receive(sub, 1) == [Message("secure/hello", b"over tls")]
    # the system CA store does not trust the private certificate: a clear BusError
    with pytest.raises(BusError, match=re.escape(url)):
        async with MqttBus(url, "tls-node", connect_timeout_s=1.0):
            pass


async def test_bad_arguments_are_named(mosquitto: MosquittoProcess) -> None:
    with pytest.raises(ConfigError, match="scheme"):
        MqttBus("http://127.0.0.1", "x")
    with pytest.raises(ConfigError, match="client_id"):
        MqttBus(mosquitto.url, "")
    with pytest.raises(ConfigError, match="reconnect_max_s"):
        MqttBus(mosquitto.url, "x", reconnect_min_s=2, reconnect_max_s=1)
    with pytest.raises(BusError, match="topic"):
        MqttBus(mosquitto.url, "x", will=Will("a/#", b""))
    async with MqttBus(mosquitto.url, "x", max_payload_bytes=100) as bus:
        with pytest.raises(BusError, match=r"101 bytes on 'big'"):
            await bus.publish("big", bytes(101))
        with pytest.raises(BusError, match="wildcards"):
            await bus.publish("a/+", b"")
        with pytest.raises(BusError, match="wildcards"):
            await bus.publish("a/#", b"", qos=0)
        with pytest.raises(BusError, match="qos"):
            await bus.publish("a", b"", qos=3)
    with pytest.raises(BusError, match="not running"):
        await bus.publish("a", b"")


async def test_an_error_in_the_body_propagates_unwrapped(mosquitto: MosquittoProcess) -> None:
    with pytest.raises(KeyError, match="mine"):
        async with MqttBus(mosquitto.url, "x") as bus, bus.subscribe("a"):
            raise KeyError("mine")
    assert not bus.connected.is_set()
    assert bus.disconnected.is_set()
    async with bus:  # the same bus can be entered again
        await bus.publish("a", b"again")
        await bus.flush(WAIT_S)


async def test_publish_waits_for_room_when_the_outbox_is_full(
    mosquitto: MosquittoProcess,
) -> None:
    async with MqttBus(mosquitto.url, "node-8", max_inflight=5, outbox_limit=10, **FAST) as node, \
            MqttBus(mosquitto.url, "ground") as ground, ground.subscribe("q") as sub:
        await mosquitto.stop()
        await wait_until_disconnected(node)
        for i in range(9):
            await node.publish("q", bytes([i]))
        blocked = asyncio.create_task(node.publish("q", bytes([9])))
        await asyncio.sleep(0.2)
        assert not blocked.done()  # the 10th waits for room instead of growing the outbox
        await mosquitto.start()
        async with asyncio.timeout(WAIT_S):
            await blocked
        await node.flush(WAIT_S)
        got = await receive(sub, 10)
        assert [m.payload for m in got] == [bytes([i]) for i in range(10)]


async def test_flush_times_out_with_a_clear_error(mosquitto: MosquittoProcess) -> None:
    async with MqttBus(mosquitto.url, "node-6", **FAST) as node:
        await mosquitto.stop()
        await wait_until_disconnected(node)
        await node.publish("x", b"stuck")
        with pytest.raises(BusError, match="1 messages unacknowledged"):
            await node.flush(0.2)
        await mosquitto.start()
        await node.flush(WAIT_S)
        assert node.acked == 1
