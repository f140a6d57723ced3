"""The bus interface every service talks through (MQTT semantics: topics, wildcards, QoS)."""

from __future__ import annotations

import abc
import asyncio
from dataclasses import dataclass
from types import TracebackType
from typing import Self

__all__ = ["Bus", "Message", "Subscription", "topic_matches"]


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

    def get_nowait(self) -> Message | None:
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

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

    @abc.abstractmethod
    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        """Send ``payload`` on ``topic``. QoS 1 where loss matters; retained if asked."""

    def subscribe(self, pattern: str, *, qos: int = 1) -> Subscription:
        """A subscription to ``pattern``; enter it (``async with``) to start receiving."""
        return Subscription(self, pattern, qos)

    async def _add_subscription(self, sub: Subscription) -> None:
        self._subs.append(sub)

    async def _remove_subscription(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    def _dispatch(self, message: Message) -> None:
        for sub in list(self._subs):
            if topic_matches(sub.pattern, message.topic):
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
