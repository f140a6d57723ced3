"""Publish/subscribe bus: one interface, an MQTT adapter and an in-memory implementation."""

from flightsw.bus.base import (
    Bus,
    Message,
    Subscription,
    check_topic,
    check_topic_filter,
    topic_matches,
)
from flightsw.bus.memory import MemoryBus
from flightsw.bus.mqtt import MqttBus, Will
from flightsw.bus.url import BrokerUrl, default_broker_url, parse_broker_url

__all__ = [
    "BrokerUrl",
    "Bus",
    "MemoryBus",
    "Message",
    "MqttBus",
    "Subscription",
    "Will",
    "check_topic",
    "check_topic_filter",
    "default_broker_url",
    "parse_broker_url",
    "topic_matches",
]
