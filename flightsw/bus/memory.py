"""In-memory bus for in-process runs (simulation, tests of logic above the bus)."""

from __future__ import annotations

from flightsw.bus.base import Bus, Message, Subscription, topic_matches

__all__ = ["MemoryBus"]


class MemoryBus(Bus):
    """Delivers every publish synchronously to matching subscriptions; keeps retained ones.

    Several services in one process share one ``MemoryBus``; a late subscriber receives the
    retained message of every matching topic first, as with an MQTT broker.
    """

    def __init__(self) -> None:
        super().__init__()
        self._retained: dict[str, bytes] = {}
        self.published = 0

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        self.published += 1
        if retain:
            if payload:
                self._retained[topic] = payload
            else:
                self._retained.pop(topic, None)
        self._dispatch(Message(topic, payload, retain=False))

    async def _add_subscription(self, sub: Subscription) -> None:
        await super()._add_subscription(sub)
        for topic, payload in sorted(self._retained.items()):
            if topic_matches(sub.pattern, topic):
                sub.deliver(Message(topic, payload, retain=True))
