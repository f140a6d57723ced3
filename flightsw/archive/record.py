"""One archived message and the helper that decodes its payload."""

from __future__ import annotations

from typing import Any, NamedTuple

from flightsw.exceptions import ArchiveError, ProtocolError
from flightsw.protocol.codec import decode
from flightsw.protocol.topics import PREFIX

__all__ = ["Record", "decode_record", "node_of"]

_NODE_PREFIX = PREFIX + "/"


def node_of(topic: str) -> str | None:
    """The node id in ``odc/sat/{node}/...``, or ``None`` for other topics."""
    if not topic.startswith(_NODE_PREFIX):
        return None
    parts = topic.split("/", 3)
    return parts[2] if len(parts) >= 4 and parts[2] else None


class Record(NamedTuple):
    """A message as archived: reception mission time, topic, payload bytes as received."""

    t: float
    topic: str
    payload: bytes

    @property
    def node(self) -> str | None:
        return node_of(self.topic)

    @property
    def leaf(self) -> str:
        """The last topic level (``telemetry``, ``result``, ``status``, ...)."""
        return self.topic.rpartition("/")[2]


def decode_record(record: Record) -> dict[str, Any]:
    """The payload decoded from msgpack to a map (bytes fields such as tensors stay bytes).

    Raises :class:`ArchiveError` naming the record if the payload is not a msgpack map.
    """
    try:
        obj = decode(record.payload)
    except ProtocolError as exc:
        raise ArchiveError(f"record {record.topic} @ t={record.t!r}: {exc}") from exc
    if not isinstance(obj, dict):
        raise ArchiveError(
            f"record {record.topic} @ t={record.t!r}: payload is a msgpack "
            f"{type(obj).__name__}, not a map"
        )
    return obj
