"""The bus interface every service talks through (MQTT semantics: topics, wildcards, QoS)."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from flightsw.exceptions import BusError

__all__ = [
    "Bus",
    "Message",
    "Subscription",
    "check_topic",
    "check_topic_filter",
    "topic_matches",
]

#: Entries kept in a bus's topic -> subscriptions routing cache before it is reset.
_ROUTE_CACHE_MAX = 10_000


@dataclass(frozen=True, slots=True)
class Message:
    """One received message."""

    topic: str
    payload: bytes
    retain: bool = False


def topic_matches(pattern: str, topic: str) -> bool:
    """MQTT topic filter matching with ``+`` (one level) and ``#`` (the rest)."""
    pat = pattern.split("/")
    top = topic.split("/")
    for i, part in enumerate(pat):
        if part == "#":
            return True
        if i >= len(top):
            return False
        if part not in ("+", top[i]):
            return False
    return len(pat) == len(top)


def check_topic(topic: str) -> None:
    """Raise :class:`BusError` naming ``topic`` unless it is a valid MQTT topic name."""
    if not isinstance(topic, str) or not topic:
        raise BusError(f"topic must be a non-empty string, got {topic!r}")
    if "+" in topic or "#" in topic:
        raise BusError(f"topic {topic!r} must not contain the wildcards '+' or '#'")
    if "\0" in topic or len(topic.encode()) > 65535:
        raise BusError(f"topic {topic[:80]!r} contains NUL or is longer than 65535 bytes")


def check_topic_filter(pattern: str) -> None:
    """Raise :class:`BusError` naming ``pattern`` unless it is a valid MQTT topic filter.

    ``+`` must fill a whole level; ``#`` must fill the last level.
    """
    if not isinstance(pattern, str) or not pattern:
        raise BusError(f"topic filter must be a non-empty string, got {pattern!r}")
    if "\0" in pattern or len(pattern.encode()) > 65535:
        raise BusError(f"topic filter {pattern[:80]!r} contains NUL or is too long")
    levels = pattern.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise BusError(f"topic filter {pattern!r}: '#' must be the whole last level")
        if "+" in level and level != "+":
            raise BusError(f"topic filter {pattern!r}: '+' must be a whole level")


class Subscription:
    """Messages matching one topic filter, in arrival order.

    Use as ``async with bus.subscribe("sat/+/telemetry") as sub: async for msg in sub``.
    """

    def __init__(self, bus: Bus, pattern: str, qos: int) -> None:
        self.bus = bus
        self.pattern = pattern
        self.qos = qos
        self._queue: asyncio.Queue[Message] = asyncio.Queue()

    def deliver(self, message: Message) -> None:
        """Called by the bus for every message matching ``pattern``."""
        self._queue.put_nowait(message)

    async def get(self) -> Message:
        return await self._queue.get()

    def qsize(self) -> int:
        """Messages received and not yet taken."""
        return self._queue.qsize()

    def get_nowait(self) -> Message | None:
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    async def get_before(self, *until: Awaitable[Any]) -> Message | None:
        """The next message, or ``None`` if one of ``until`` (a sleep on a clock, an
        event's wait) ends first; a message that came meanwhile is taken all the same."""
        got = asyncio.ensure_future(self._queue.get())
        stops = [asyncio.ensure_future(u) for u in until]
        try:
            await asyncio.wait({got, *stops}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for stop in stops:
                stop.cancel()
            if not got.done():
                got.cancel()
        return got.result() if got.done() and not got.cancelled() else None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Message:
        return await self._queue.get()

    async def __aenter__(self) -> Self:
        await self.bus._add_subscription(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.bus._remove_subscription(self)


class Bus(abc.ABC):
    """Publish/subscribe with MQTT semantics. Services use it as an async context manager."""

    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        # topic -> matching subscriptions; reset whenever the subscriptions change
        self._routes: dict[str, tuple[Subscription, ...]] = {}

    @abc.abstractmethod
    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        """Send ``payload`` on ``topic``. QoS 1 where loss matters; retained if asked."""

    def subscribe(self, pattern: str, *, qos: int = 1) -> Subscription:
        """A subscription to ``pattern``; enter it (``async with``) to start receiving.

        Raises :class:`BusError` naming the pattern if it is not a valid topic filter.
        """
        check_topic_filter(pattern)
        if qos not in (0, 1, 2):
            raise BusError(f"subscription qos must be 0, 1 or 2, got {qos!r} for {pattern!r}")
        return Subscription(self, pattern, qos)

    async def flush(self) -> None:
        """Wait until everything published so far has left this process (no-op here)."""
        return

    async def _add_subscription(self, sub: Subscription) -> None:
        self._subs.append(sub)
        self._routes.clear()

    async def _remove_subscription(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)
            self._routes.clear()

    def _dispatch(self, message: Message) -> None:
        topic = message.topic
        routes = self._routes.get(topic)
        if routes is None:
            if len(self._routes) >= _ROUTE_CACHE_MAX:
                self._routes.clear()
            routes = tuple(s for s in self._subs if topic_matches(s.pattern, topic))
            self._routes[topic] = routes
        for sub in routes:
            sub.deliver(message)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None
