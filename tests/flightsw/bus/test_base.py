"""The Bus contract, run against every implementation (MemoryBus and MqttBus on mosquitto)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import pytest
from mosquitto import MosquittoProcess

from flightsw.bus import (
    Bus,
    MemoryBus,
    Message,
    MqttBus,
    Subscription,
    check_topic,
    check_topic_filter,
    topic_matches,
)
from flightsw.exceptions import BusError

WAIT_S = 10.0  # generous upper bound for a broker round trip on a loaded CI machine


async def receive(sub: Subscription, count: int) -> list[Message]:
    async with asyncio.timeout(WAIT_S):
        return [await sub.get() for _ in range(count)]


async def until_marker(sub: Subscription, marker_topic: str) -> list[Message]:
    """Everything ``sub`` receives up to (excluding) a message on ``marker_topic``."""
    got: list[Message] = []
    async with asyncio.timeout(WAIT_S):
        while (msg := await sub.get()).topic != marker_topic:
            got.append(msg)
    return got


@pytest.fixture(params=["memory", pytest.param("mqtt", marks=pytest.mark.mqtt)])
async def buses(
    request: pytest.FixtureRequest,
    mosquitto_factory: Callable[[], Awaitable[MosquittoProcess]],
) -> AsyncIterator[tuple[Bus, Bus]]:
    """(publisher, subscriber): one shared MemoryBus, or two MqttBus clients."""
    if request.param == "memory":
        bus = MemoryBus()
        async with bus:
            yield bus, bus
        return
    broker = await mosquitto_factory()
    async with AsyncExitStack() as stack:
        pub = await stack.enter_async_context(MqttBus(broker.url, "contract-pub"))
        sub = await stack.enter_async_context(MqttBus(broker.url, "contract-sub"))
        yield pub, sub


def test_topic_matching() -> None:
    assert topic_matches("sat/+/telemetry", "sat/n1/telemetry")
    assert not topic_matches("sat/+/telemetry", "sat/n1/x/telemetry")
    assert topic_matches("sat/#", "sat/n1/x/telemetry")
    assert topic_matches("sat/#", "sat")
    assert not topic_matches("sat/n1", "sat/n1/x")


@pytest.mark.parametrize("pattern", ["", "a/#/b", "a/b#", "a/+b/c", "a/\0"])
def test_invalid_filters_are_refused_naming_them(pattern: str, memory_bus: MemoryBus) -> None:
    with pytest.raises(BusError, match="topic filter"):
        check_topic_filter(pattern)
    with pytest.raises(BusError):
        memory_bus.subscribe(pattern)


@pytest.mark.parametrize("topic", ["", "a/+/b", "a/#"])
def test_invalid_topics_are_refused_naming_them(topic: str) -> None:
    with pytest.raises(BusError, match="topic"):
        check_topic(topic)


async def test_wildcard_pub_sub(buses: tuple[Bus, Bus]) -> None:
    pub, sub_bus = buses
    topics = ["sat/n1/telemetry", "sat/n2/telemetry", "sat/n1/status", "sat/n1/x/telemetry",
              "ground/jobs", "sat"]
    async with (
        sub_bus.subscribe("sat/+/telemetry") as one_level,
        sub_bus.subscribe("sat/#") as everything_sat,
        sub_bus.subscribe("sat/n1/+") as node1,
        sub_bus.subscribe("ground/jobs") as exact,
        sub_bus.subscribe("end") as end,
    ):
        for i, topic in enumerate(topics):
            await pub.publish(topic, f"{i}".encode())
        await pub.publish("end", b"")
        await receive(end, 1)
        expected = {
            one_level: ["sat/n1/telemetry", "sat/n2/telemetry"],
            everything_sat: [t for t in topics if t.startswith("sat")],
            node1: ["sat/n1/telemetry", "sat/n1/status"],
            exact: ["ground/jobs"],
        }
        for sub, want in expected.items():
            got = await receive(sub, len(want))
            assert [m.topic for m in got] == want, sub.pattern
            assert [m.payload for m in got] == [str(topics.index(t)).encode() for t in want]
            assert not any(m.retain for m in got)
            assert sub.get_nowait() is None


async def test_retained_message_reaches_late_subscriber_with_retain_flag(
    buses: tuple[Bus, Bus],
) -> None:
    pub, sub_bus = buses
    await pub.publish("node/n7/status", b"online", retain=True)
    await pub.publish("node/n8/status", b"offline", retain=True)
    await pub.publish("node/n9/status", b"gone", retain=True)
    await pub.publish("node/n9/status", b"", retain=True)  # empty retained clears it
    await pub.flush()
    async with sub_bus.subscribe("node/+/status") as late:
        got = sorted(await receive(late, 2), key=lambda m: m.topic)
        assert got == [Message("node/n7/status", b"online", retain=True),
                       Message("node/n8/status", b"offline", retain=True)]
        await pub.publish("node/n7/status", b"busy", retain=True)
        live = await receive(late, 1)
        assert live == [Message("node/n7/status", b"busy", retain=False)]


async def test_many_subscriptions_dispatch(buses: tuple[Bus, Bus]) -> None:
    pub, sub_bus = buses
    nodes = [f"n{i}" for i in range(60)]
    async with AsyncExitStack() as stack:
        exact = {n: await stack.enter_async_context(sub_bus.subscribe(f"sat/{n}/telemetry"))
                 for n in nodes}
        duplicate = await stack.enter_async_context(sub_bus.subscribe("sat/n0/telemetry"))
        wild = await stack.enter_async_context(sub_bus.subscribe("sat/+/telemetry"))
        for round_ in range(3):
            for n in nodes:
                await pub.publish(f"sat/{n}/telemetry", f"{n}:{round_}".encode())
        for n, sub in exact.items():
            got = await receive(sub, 3)
            assert [m.payload for m in got] == [f"{n}:{r}".encode() for r in range(3)]
        assert len(await receive(duplicate, 3)) == 3
        everything = await receive(wild, 3 * len(nodes))
        assert {m.payload for m in everything} == {f"{n}:{r}".encode() for n in nodes
                                                   for r in range(3)}


async def test_leaving_a_subscription_stops_delivery(buses: tuple[Bus, Bus]) -> None:
    pub, sub_bus = buses
    async with sub_bus.subscribe("marker") as marker:
        async with sub_bus.subscribe("jobs/#") as jobs:
            await pub.publish("jobs/1", b"a")
            assert (await receive(jobs, 1))[0].payload == b"a"
        await pub.publish("jobs/2", b"b")
        await pub.publish("marker", b"")
        await receive(marker, 1)
        assert jobs.get_nowait() is None


async def test_concurrent_publishers_keep_their_own_order(buses: tuple[Bus, Bus]) -> None:
    pub, sub_bus = buses
    per_task = 200
    async with sub_bus.subscribe("load/#") as sub:

        async def producer(k: int) -> None:
            for i in range(per_task):
                await pub.publish(f"load/{k}", i.to_bytes(4, "big"))

        async with asyncio.TaskGroup() as tg:
            for k in range(5):
                tg.create_task(producer(k), name=f"producer-{k}")
        got = await receive(sub, 5 * per_task)
    for k in range(5):
        seq = [int.from_bytes(m.payload, "big") for m in got if m.topic == f"load/{k}"]
        assert seq == list(range(per_task))


async def test_get_before_takes_a_message_or_gives_up_when_told(buses: tuple[Bus, Bus]) -> None:
    pub, sub_bus = buses
    stop = asyncio.Event()
    async with sub_bus.subscribe("gb/#", qos=1) as sub:
        # nothing comes: the first of the stops ends the wait, and no message is lost to it
        assert await sub.get_before(asyncio.sleep(0.05), stop.wait()) is None
        stop.set()
        assert await sub.get_before(asyncio.sleep(WAIT_S), stop.wait()) is None
        await pub.publish("gb/a", b"1", qos=1)
        got = await sub.get_before(asyncio.sleep(WAIT_S))
        assert got is not None and got.payload == b"1"
        await pub.publish("gb/b", b"2", qos=1)
        (late,) = await receive(sub, 1)
        assert late.payload == b"2"
