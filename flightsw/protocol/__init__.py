"""The wire protocol: topics, msgpack codec and message models."""

from flightsw.protocol import topics
from flightsw.protocol.codec import decode, decode_tensor, encode, encode_tensor
from flightsw.protocol.messages import (
    Ack,
    Command,
    ErrorEvent,
    Handover,
    JobEvent,
    JobResult,
    JobSubmit,
    ModelChunk,
    NodeState,
    Status,
    Telemetry,
    Tensor,
    dump,
    parse,
)

__all__ = [
    "Ack",
    "Command",
    "ErrorEvent",
    "Handover",
    "JobEvent",
    "JobResult",
    "JobSubmit",
    "ModelChunk",
    "NodeState",
    "Status",
    "Telemetry",
    "Tensor",
    "decode",
    "decode_tensor",
    "dump",
    "encode",
    "encode_tensor",
    "parse",
    "topics",
]
