"""Publish/subscribe bus: one interface, an MQTT adapter and an in-memory implementation."""

from flightsw.bus.base import Bus, Message, Subscription, topic_matches
from flightsw.bus.memory import MemoryBus

__all__ = ["Bus", "MemoryBus", "Message", "Subscription", "topic_matches"]
