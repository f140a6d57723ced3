"""The test helper ``MosquittoProcess``: config, a clear error without the binary, restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from mosquitto import MosquittoProcess

from flightsw.broker import free_port
from flightsw.bus import Message, MqttBus, Subscription
from flightsw.exceptions import BrokerError, ConfigError


async def receive(sub: Subscription, count: int) -> list[Message]:
    async with asyncio.timeout(10):
        return [await sub.get() for _ in range(count)]


def test_mosquitto_config_listens_on_loopback_only(tmp_path: Path) -> None:
    proc = MosquittoProcess(1999, data_dir=tmp_path, password_file=tmp_path / "pw",
                            config_extra="max_inflight_messages 50")
    text = proc.config_text()
    assert "listener 1999 127.0.0.1\n" in text
    assert "allow_anonymous false\n" in text
    assert f"password_file {tmp_path / 'pw'}\n" in text
    assert f"persistence_location {tmp_path}/\n" in text
    assert text.endswith("max_inflight_messages 50\n")
    assert "allow_anonymous true" in MosquittoProcess(data_dir=tmp_path).config_text()
    assert proc.url == "mqtt://127.0.0.1:1999"
    with pytest.raises(ConfigError, match="port"):
        MosquittoProcess(70000, data_dir=tmp_path)


async def test_missing_mosquitto_binary_is_a_clear_error(tmp_path: Path) -> None:
    proc = MosquittoProcess(data_dir=tmp_path, binary=str(tmp_path / "no-such-mosquitto"))
    with pytest.raises(BrokerError, match="cannot run mosquitto"):
        await proc.start()


@pytest.mark.mqtt
async def test_mosquitto_restart_keeps_retained_and_sessions(
    mosquitto: MosquittoProcess,
) -> None:
    assert mosquitto.running
    async with MqttBus(mosquitto.url, "a") as a:
        await a.publish("cfg/x", b"kept", retain=True)
        await a.flush(10)
    await mosquitto.restart()
    async with MqttBus(mosquitto.url, "b") as b, b.subscribe("cfg/#") as sub:
        assert await receive(sub, 1) == [Message("cfg/x", b"kept", retain=True)]
    await mosquitto.kill()
    assert not mosquitto.running


@pytest.mark.mqtt
async def test_mosquitto_port_in_use_reports_its_log(
    mosquitto: MosquittoProcess, tmp_path: Path,
) -> None:
    clash = MosquittoProcess(mosquitto.port, data_dir=tmp_path / "clash")
    with pytest.raises(BrokerError, match="did not start") as info:
        await clash.start()
    assert "Address already in use" in str(info.value)
    assert not clash.running
    assert free_port() != mosquitto.port
