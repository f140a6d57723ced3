"""The demo's embedded broker (amqtt) and the port helpers."""

from __future__ import annotations

import asyncio

import pytest

from flightsw.broker import EmbeddedBroker, check_port, free_port
from flightsw.bus import Message, MqttBus, Subscription
from flightsw.exceptions import BrokerError, ConfigError


async def receive(sub: Subscription, count: int) -> list[Message]:
    async with asyncio.timeout(10):
        return [await sub.get() for _ in range(count)]


async def test_embedded_broker_round_trip() -> None:
    async with EmbeddedBroker(port=None) as broker:
        assert broker.url == f"mqtt://127.0.0.1:{broker.port}"
        async with MqttBus(broker.url, "a") as a, MqttBus(broker.url, "b") as b:
            await a.publish("node/a/status", b"online", retain=True)
            await a.flush(10)
            async with b.subscribe("sat/+/telemetry") as telemetry, \
                    b.subscribe("node/#") as status:
                assert await receive(status, 1) == [
                    Message("node/a/status", b"online", retain=True)]
                for i in range(20):
                    await a.publish(f"sat/{i % 2}/telemetry", bytes([i]), qos=i % 2)
                got = await receive(telemetry, 20)
        assert sorted(m.payload for m in got) == [bytes([i]) for i in range(20)]


async def test_embedded_broker_port_in_use_is_a_broker_error() -> None:
    async with EmbeddedBroker(port=None) as first:
        with pytest.raises(BrokerError, match=first.url):
            async with EmbeddedBroker(port=first.port):
                pass


def test_port_helpers() -> None:
    assert check_port(1883) == 1883
    for bad in (0, 65536, -1, "1883"):
        with pytest.raises(ConfigError, match=r"port must be an integer in 1\.\.65535"):
            check_port(bad)  # type: ignore[arg-type]
    assert 1 <= free_port() <= 65535
