"""Pydantic models of every message on the bus (see ``docs/protocol.md``).

Every message is a msgpack map; ``kind`` names its type. Validation errors become
:class:`ProtocolError` whose text names the offending field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flightsw.exceptions import ProtocolError
from flightsw.protocol.codec import decode, decode_tensor, encode, encode_tensor

__all__ = [
    "Ack",
    "Command",
    "CommandName",
    "ErrorEvent",
    "Handover",
    "JobEvent",
    "JobResult",
    "JobState",
    "JobSubmit",
    "Message",
    "ModelChunk",
    "NodeState",
    "Status",
    "Telemetry",
    "Tensor",
    "dump",
    "parse",
]

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
JobId = Annotated[str, Field(min_length=1, max_length=128)]
NodeId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class Tensor(Message):
    """A numpy array as dtype + shape + raw little-endian C-order bytes."""

    dtype: str
    shape: list[Annotated[int, Field(ge=0)]]
    data: bytes

    @classmethod
    def from_array(cls, array: npt.NDArray[Any]) -> Tensor:
        return cls.model_validate(encode_tensor(array))

    def to_array(self, field: str = "tensor") -> npt.NDArray[Any]:
        return decode_tensor(
            {"dtype": self.dtype, "shape": self.shape, "data": self.data}, field=field
        )


def tensors_to_arrays(tensors: dict[str, Tensor], field: str) -> dict[str, npt.NDArray[Any]]:
    return {name: t.to_array(f"{field}.{name}") for name, t in tensors.items()}


def arrays_to_tensors(arrays: dict[str, npt.NDArray[Any]]) -> dict[str, Tensor]:
    return {name: Tensor.from_array(np.asarray(a)) for name, a in arrays.items()}


class JobSubmit(Message):
    """An inference job: run ``model`` on ``inputs`` (first axis = items of a batch)."""

    kind: Literal["job"] = "job"
    job_id: JobId
    epoch: Annotated[int, Field(ge=0)] = 0
    model: Sha256
    inputs: dict[str, Tensor] = Field(min_length=1)
    priority: Annotated[int, Field(ge=0, le=9)] = 5
    deadline: float | None = None
    value: Annotated[float, Field(ge=0)] = 1.0
    submitted_at: float = 0.0
    origin: str = "ground"
    migrations: Annotated[int, Field(ge=0)] = 0

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        return tensors_to_arrays(self.inputs, "inputs")


JobState = Literal[
    "accepted", "queued", "deferred", "running", "migrating", "cancelled", "shed", "handed_over"
]


class JobResult(Message):
    kind: Literal["result"] = "result"
    job_id: JobId
    epoch: int
    node: NodeId
    status: Literal["done", "failed"]
    reason: str | None = None
    outputs: dict[str, Tensor] = Field(default_factory=dict)
    items: int = 0
    host_wall_s: float = 0.0
    modelled_latency_s: float = 0.0
    modelled_energy_j: float = 0.0
    power_mode: str | None = None
    submitted_at: float = 0.0
    accepted_at: float | None = None
    started_at: float | None = None
    finished_at: float = 0.0
    deadline: float | None = None
    value: float = 0.0
    migrations: int = 0
    # emulator ground truth: radiation upsets in the job's memory while it ran, how many the
    # profile's mitigations caught, and whether one got through into the outputs
    upsets_hit: int = 0
    upsets_mitigated: int = 0
    corrupted: bool = False

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        return tensors_to_arrays(self.outputs, "outputs")


class JobEvent(Message):
    kind: Literal["job_event"] = "job_event"
    job_id: JobId
    epoch: int
    node: NodeId
    state: JobState
    t: float
    detail: str | None = None
    target: str | None = None


class ErrorEvent(Message):
    """Something sent to a node was refused; ``field`` names the bad part if known."""

    kind: Literal["error"] = "error"
    node: NodeId
    t: float
    code: str
    message: str
    field: str | None = None
    job_id: str | None = None
    topic: str | None = None


class Telemetry(Message):
    kind: Literal["telemetry"] = "telemetry"
    node: NodeId
    seq: int
    t: float
    profile: str
    lat_deg: float
    lon_deg: float
    alt_km: float
    sunlit: float
    beta_deg: float
    solar_w: float
    load_w: float
    battery_wh: float
    soc: float
    temperature_c: float
    power_mode: str
    safe_mode: bool
    paused: bool
    queue_depth: int
    jobs_running: int
    jobs_done: int
    jobs_failed: int
    energy_used_j: float
    upsets: int
    in_contact: bool = True
    migrations_out: int = 0
    migrations_in: int = 0
    upsets_mitigated: int = 0
    silent_corruptions: int = 0


class Status(Message):
    kind: Literal["status"] = "status"
    node: NodeId
    state: Literal["online", "offline", "safe"]
    t: float
    profile: str | None = None
    orbit: dict[str, Any] | None = None  # see docs/protocol.md: circular elements or a TLE


CommandName = Literal[
    "set_power_mode", "pause", "resume", "enter_safe", "leave_safe", "cancel_job", "ping"
]


class Command(Message):
    kind: Literal["command"] = "command"
    cmd_id: Annotated[str, Field(min_length=1, max_length=128)]
    name: CommandName
    args: dict[str, Any] = Field(default_factory=dict)
    counter: Annotated[int, Field(ge=0)] = 0
    t: float = 0.0
    hmac: str | None = None


class Ack(Message):
    kind: Literal["ack"] = "ack"
    cmd_id: str
    node: NodeId
    name: str
    ok: bool
    t: float
    reason: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class ModelChunk(Message):
    kind: Literal["model_chunk"] = "model_chunk"
    model: Sha256
    index: Annotated[int, Field(ge=0)]
    total: Annotated[int, Field(ge=1)]
    size: Annotated[int, Field(ge=1)]
    data: bytes


class NodeState(Message):
    """Compact state every node publishes for the constellation scheduler."""

    kind: Literal["node_state"] = "node_state"
    node: NodeId
    t: float
    soc: float
    battery_wh: float
    floor_wh: float
    temperature_c: float
    throttle_c: float
    queue_depth: int
    queued_work_s: float
    sunlit: float
    next_eclipse_s: float | None
    eclipse_s: float
    effective_ops_per_s: float
    power_w: float
    position_km: list[float]
    models: list[str] = Field(default_factory=list)
    leases: dict[str, int] = Field(default_factory=dict)
    safe_mode: bool = False
    margin_wh: float = 0.0  # spendable now, keeping the floor through the next eclipse
    heat_capacity_j_per_k: float = 1.0
    isl_rate_bps: float = 0.0
    isl_max_range_km: float = 0.0
    uplink_rate_bps: float = 0.0
    alt_km: float = 0.0
    running_s: float = 0.0  # modelled seconds left of the running job
    work_by_priority: list[float] = Field(default_factory=list)  # queued s per priority 0..9


class Handover(Message):
    """A job moving from ``src`` to ``dst`` with epoch + 1 (fencing token)."""

    kind: Literal["handover"] = "handover"
    src: NodeId
    dst: NodeId
    t: float
    job: JobSubmit


M = TypeVar("M", bound=Message)


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(message)"


def parse(cls: type[M], payload: bytes | Any, *, max_bytes: int | None = None) -> M:
    """Decode msgpack bytes (or an already decoded map) into ``cls``.

    Raises :class:`ProtocolError` naming the first bad field.
    """
    obj = decode(payload, max_bytes=max_bytes) if isinstance(payload, bytes) else payload
    if not isinstance(obj, dict):
        raise ProtocolError(f"expected a map for {cls.__name__}, got {type(obj).__name__}")
    try:
        return cls.model_validate(obj)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = _field_path(tuple(err["loc"]))
        raise ProtocolError(f"{path}: {err['msg']}") from exc


def dump(message: Message) -> bytes:
    """msgpack bytes of a message (bytes fields stay binary)."""
    return encode(message.model_dump(mode="python"))
