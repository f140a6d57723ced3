"""MQTT topic names. Every node publishes only under ``odc/sat/{node}/``.

See ``docs/protocol.md`` for who publishes what, with which QoS and retain flag.
"""

from __future__ import annotations

import re

from flightsw.exceptions import ConfigError

__all__ = [
    "GROUND_STATIONS",
    "PREFIX",
    "ack",
    "command",
    "event",
    "handover",
    "handover_inbox",
    "job",
    "model",
    "node_from_topic",
    "result",
    "state",
    "status",
    "telemetry",
    "validate_node_id",
]

PREFIX = "odc/sat"
GROUND_STATIONS = "odc/ground/stations"  # retained by the ground station service
_NODE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def validate_node_id(node: str) -> str:
    """Node ids are 1-64 of ``[A-Za-z0-9_.-]`` (safe as one MQTT topic level)."""
    if not _NODE_ID.fullmatch(node):  # match() would let a trailing newline through
        raise ConfigError(f"node id {node!r}: use 1-64 letters, digits, '_', '.', '-'")
    return node


def _t(node: str, leaf: str) -> str:
    return f"{PREFIX}/{node}/{leaf}"


def telemetry(node: str) -> str:
    return _t(node, "telemetry")


def status(node: str) -> str:
    return _t(node, "status")


def job(node: str) -> str:
    return _t(node, "job")


def result(node: str) -> str:
    return _t(node, "result")


def event(node: str) -> str:
    return _t(node, "event")


def command(node: str) -> str:
    return _t(node, "cmd")


def ack(node: str) -> str:
    return _t(node, "ack")


def model(node: str) -> str:
    return _t(node, "model")


def state(node: str) -> str:
    return _t(node, "state")


def handover(src: str, dst: str) -> str:
    """A migrating job, published by its current owner ``src`` for ``dst``."""
    return f"{PREFIX}/{src}/handover/{dst}"


def handover_inbox(dst: str) -> str:
    """Filter a node subscribes to for jobs handed to it."""
    return f"{PREFIX}/+/handover/{dst}"


def node_from_topic(topic: str) -> str | None:
    """The node id of a ``odc/sat/{node}/...`` topic, else ``None``."""
    parts = topic.split("/")
    if len(parts) >= 3 and f"{parts[0]}/{parts[1]}" == PREFIX:
        return parts[2]
    return None
