"""Pydantic models of every message on the bus (see ``docs/protocol.md``).

Every message is a msgpack map; ``kind`` names its type. Validation errors become
:class:`ProtocolError` whose text names the offending field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)

from flightsw.exceptions import ProtocolError
from flightsw.physics.ground import Station
from flightsw.protocol.codec import decode, decode_tensor, encode, encode_tensor

__all__ = [
    "Ack",
    "Auth",
    "CircularOrbitInfo",
    "Command",
    "CommandName",
    "ErrorEvent",
    "GroundStations",
    "Handover",
    "JobEvent",
    "JobId",
    "JobResult",
    "JobState",
    "JobSubmit",
    "Message",
    "ModelChunk",
    "ModelMissing",
    "ModelStored",
    "NodeEvent",
    "NodeId",
    "NodeState",
    "OrbitInfo",
    "Pipeline",
    "Progress",
    "Sha256",
    "StageReturn",
    "StationInfo",
    "Status",
    "Telemetry",
    "Tensor",
    "TleOrbitInfo",
    "dump",
    "parse",
    "parse_event",
]

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
# ids travel inside topics (odc/ground/job/<job_id>): no '/', '+', '#' or spaces
JobId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")]
NodeId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
Finite = Annotated[float, Field(allow_inf_nan=False)]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class Auth(Message):
    """A node's seal on a message (``flightsw.protocol.sign``): sequence number and MAC."""

    seq: Annotated[int, Field(ge=0, lt=2**63)]
    mac: Sha256


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


class Pipeline(Message):
    """A job split into stages over several nodes (``flightsw.models.partition``).

    ``stages`` are the stage models in order, ``inputs_sha256`` the digest of the job's
    original inputs (what stage 0 runs on; ``flightsw.protocol.warrant.inputs_sha256``),
    ``stage`` the stage this copy of the job runs, ``members`` the node of each stage,
    chosen by the ground when it uplinks stage 0 (empty until then), ``spent_s`` and
    ``spent_j`` what the stages before this one took (modelled), ``accepted_at`` and
    ``started_at`` when stage 0 was accepted and started.
    """

    stages: list[Sha256] = Field(min_length=2, max_length=64)
    inputs_sha256: Sha256
    stage: Annotated[int, Field(ge=0)] = 0
    members: list[NodeId] = Field(default_factory=list)
    # modelled seconds (stage runs and hops) and joules of the stages before this one, as
    # their nodes reported them; the last stage's result adds its own
    spent_s: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    spent_j: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    # mission times stage 0 was accepted and started (nil at stage 0)
    accepted_at: Finite | None = None
    started_at: Finite | None = None
    # the stage the ground uplinked this copy at: 0, or the first stage left when a member
    # gave the job back after its stage and the ground re-planned the rest (StageReturn);
    # members before it are the nodes that ran the stages done. Omitted when 0.
    start: Annotated[int, Field(ge=0)] = 0

    @model_validator(mode="after")
    def _consistent(self) -> Pipeline:
        if self.stage >= len(self.stages):
            raise ValueError(f"stage {self.stage} of a {len(self.stages)}-stage pipeline")
        if self.start > self.stage:
            raise ValueError(f"start {self.start} is after stage {self.stage}")
        if self.members and len(self.members) != len(self.stages):
            raise ValueError(f"{len(self.members)} members for {len(self.stages)} stages")
        ahead = self.members[self.start:]  # a done stage's node may run a later one
        if len(set(ahead)) != len(ahead):
            raise ValueError("members: a node appears twice")
        return self

    @model_serializer(mode="wrap")
    def _without_zero_start(self, handler: SerializerFunctionWrapHandler) -> Any:
        # a pipeline uplinked from stage 0 travels without ``start``, as before re-planning
        data = handler(self)
        if isinstance(data, dict) and data.get("start", 1) == 0:
            del data["start"]
        return data


class Progress(Message):
    """What earlier runs of a suspended job did: ``outputs`` of items ``[0, done)`` (first
    axis ``done``) and how often it was suspended. A node that hands such a job over sends
    it along, so the next holder runs only the items left (issue #12)."""

    done: Annotated[int, Field(ge=1)]
    outputs: dict[str, Tensor] = Field(min_length=1)
    suspensions: Annotated[int, Field(ge=0)] = 0


class JobSubmit(Message):
    """An inference job: run ``model`` on ``inputs`` (first axis = items of a batch).

    A stage of a pipeline job carries ``pipeline``; its ``model`` is the stage's model and
    its ``inputs`` the previous stage's outputs (the original inputs at stage 0).
    """

    kind: Literal["job"] = "job"
    job_id: JobId
    epoch: Annotated[int, Field(ge=0)] = 0
    model: Sha256
    inputs: dict[str, Tensor] = Field(min_length=1)
    priority: Annotated[int, Field(ge=0, le=9)] = 5
    deadline: Finite | None = None
    value: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 1.0
    submitted_at: Finite = 0.0
    origin: str = "ground"
    migrations: Annotated[int, Field(ge=0)] = 0
    # the ground's Ed25519 signature on what the job is (flightsw.protocol.warrant)
    warrant: Annotated[str, Field(pattern=r"^[0-9a-f]{128}$")] | None = None
    pipeline: Pipeline | None = None
    # a suspended job handed over with the items it has done (none from the ground)
    progress: Progress | None = None

    @model_serializer(mode="wrap")
    def _without_absent_pipeline(self, handler: SerializerFunctionWrapHandler) -> Any:
        # a job that is not a pipeline's (or carries no progress) travels without the key,
        # so a node from before pipeline jobs and progress (which forbids unknown fields)
        # still takes it
        data = handler(self)
        if isinstance(data, dict):
            for key in ("pipeline", "progress"):
                if key in data and data[key] is None:
                    del data[key]
        return data

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        return tensors_to_arrays(self.inputs, "inputs")


JobState = Literal[
    "accepted", "queued", "deferred", "running", "migrating", "cancelled", "shed", "handed_over",
    "suspended",
]


class JobResult(Message):
    kind: Literal["result"] = "result"
    auth: Auth | None = None
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
    suspensions: int = 0  # times it was suspended at an item boundary (pre-emption)
    # emulator ground truth: radiation upsets in the job's memory while it ran, how many the
    # profile's mitigations caught, and whether one got through into the outputs
    upsets_hit: int = 0
    upsets_mitigated: int = 0
    corrupted: bool = False

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        return tensors_to_arrays(self.outputs, "outputs")


class JobEvent(Message):
    kind: Literal["job_event"] = "job_event"
    auth: Auth | None = None
    job_id: JobId
    epoch: int
    node: NodeId
    state: JobState
    t: float
    detail: str | None = None
    target: str | None = None


class StageReturn(Message):
    """A pipeline job given back to the ground, on the node's result topic, by the member
    that finished stage ``job.pipeline.stage - 1`` and found the next member unusable
    (``reason``). ``epoch`` is the epoch it held; ``job`` is the next stage as the next
    member would have received it (its model, the finished stage's outputs as inputs, the
    pipeline's account so far), for the ground to place on a new chain."""

    kind: Literal["stage_return"] = "stage_return"
    auth: Auth | None = None
    node: NodeId
    epoch: Annotated[int, Field(ge=0)]
    t: Finite
    reason: str
    job: JobSubmit


class ErrorEvent(Message):
    """Something sent to a node was refused; ``field`` names the bad part if known."""

    kind: Literal["error"] = "error"
    auth: Auth | None = None
    node: NodeId
    t: float
    code: str
    message: str
    field: str | None = None
    job_id: str | None = None
    topic: str | None = None


class ModelStored(Message):
    """A node holds ``model`` now: every chunk arrived and the sha256 matched (event topic)."""

    kind: Literal["model_stored"] = "model_stored"
    auth: Auth | None = None
    node: NodeId
    t: float
    model: Sha256


class ModelMissing(Message):
    """A node lacks ``model``, which job ``job_id`` needs: it holds the job for a while and
    asks the ground to send the model (event topic)."""

    kind: Literal["model_missing"] = "model_missing"
    auth: Auth | None = None
    node: NodeId
    t: float
    model: Sha256
    job_id: JobId | None = None


NodeEvent = JobEvent | ErrorEvent | ModelStored | ModelMissing


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
    # the peers it has an inter-satellite link to now (None: not reported)
    isl_peers: list[NodeId] | None = None


class CircularOrbitInfo(Message):
    """A circular orbit by its elements at ``epoch`` (mission time)."""

    type: Literal["circular"] = "circular"
    altitude_km: Annotated[float, Field(gt=100, lt=100_000)]
    inclination_deg: Annotated[float, Field(ge=0, le=180)]
    raan_deg: Finite
    arg_latitude_deg: Finite
    epoch: Finite


class TleOrbitInfo(Message):
    """An orbit as TLE text; ``name`` picks one satellite of several (None: the only one)."""

    type: Literal["tle"] = "tle"
    name: str | None = None
    text: Annotated[str, Field(min_length=1)]


# the orbit in a node's Status, so the ground can predict its contacts
OrbitInfo = Annotated[CircularOrbitInfo | TleOrbitInfo, Field(discriminator="type")]


class Status(Message):
    kind: Literal["status"] = "status"
    auth: Auth | None = None
    node: NodeId
    state: Literal["online", "offline", "safe"]
    t: float
    profile: str | None = None
    orbit: OrbitInfo | None = None
    # the sequence number of the sealed last will this session left with the broker
    will_seq: Annotated[int, Field(ge=0, lt=2**63)] | None = None


class StationInfo(Message):
    """One ground station: WGS-84 geodetic latitude and longitude (deg), height (m)."""

    name: Annotated[str, Field(min_length=1, max_length=128)]
    lat_deg: Annotated[float, Field(ge=-90, le=90)]
    lon_deg: Annotated[float, Field(ge=-180, lt=360)]
    alt_m: Annotated[float, Field(ge=-500, le=100_000)] = 0.0

    @classmethod
    def from_station(cls, station: Station) -> StationInfo:
        """The station as it travels (:class:`ProtocolError` naming a bad field)."""
        # a Station may say 360 for 0 degrees east; the wire takes [-180, 360)
        lon = 0.0 if station.lon_deg == 360.0 else station.lon_deg
        fields = {"name": station.name, "lat_deg": station.lat_deg, "lon_deg": lon,
                  "alt_m": station.alt_m}
        return parse(cls, fields)

    def to_station(self) -> Station:
        return Station(self.name, self.lat_deg, self.lon_deg, self.alt_m)


class GroundStations(Message):
    """The ground stations, retained on ``odc/ground/stations`` by the ground station
    service; no station means always in contact (a relay network)."""

    kind: Literal["ground_stations"] = "ground_stations"
    stations: list[StationInfo] = Field(default_factory=list)
    min_elevation_deg: Annotated[float, Field(ge=0, lt=90)] = 10.0


CommandName = Literal[
    "set_power_mode", "pause", "resume", "enter_safe", "leave_safe", "cancel_job", "ping"
]


class Command(Message):
    kind: Literal["command"] = "command"
    cmd_id: Annotated[str, Field(min_length=1, max_length=128)]
    name: CommandName
    args: dict[str, Any] = Field(default_factory=dict)
    counter: Annotated[int, Field(ge=0)] = 0
    t: Finite = 0.0
    hmac: str | None = None


class Ack(Message):
    kind: Literal["ack"] = "ack"
    auth: Auth | None = None
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
    auth: Auth | None = None
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
    auth: Auth | None = None
    src: NodeId
    dst: NodeId
    t: Finite
    job: JobSubmit


M = TypeVar("M", bound=Message)


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc)


def parse(cls: type[M], payload: bytes | Any, *, max_bytes: int | None = None) -> M:
    """Decode msgpack bytes (or an already decoded map) into ``cls``.

    Raises :class:`ProtocolError` naming the first bad field (its ``code`` is ``oversize``,
    ``undecodable`` or ``schema``, its ``field`` the bad field's dotted path).
    """
    obj = decode(payload, max_bytes=max_bytes) if isinstance(payload, bytes) else payload
    if not isinstance(obj, dict):
        raise ProtocolError(f"expected a map for {cls.__name__}, got {type(obj).__name__}")
    try:
        return cls.model_validate(obj)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = _field_path(tuple(err["loc"]))
        raise ProtocolError(f"{path or '(message)'}: {err['msg']}", field=path or None) from exc


def parse_event(payload: bytes | Any, *, max_bytes: int | None = None) -> NodeEvent:
    """A message of a node's event topic, by its ``kind``; :class:`ProtocolError` as
    :func:`parse` (field ``kind`` for a kind that is not an event)."""
    obj = decode(payload, max_bytes=max_bytes) if isinstance(payload, bytes) else payload
    kind = obj.get("kind") if isinstance(obj, dict) else None
    if kind == "job_event":
        return parse(JobEvent, obj)
    if kind == "error":
        return parse(ErrorEvent, obj)
    if kind == "model_stored":
        return parse(ModelStored, obj)
    if kind == "model_missing":
        return parse(ModelMissing, obj)
    if not isinstance(obj, dict):
        raise ProtocolError(f"expected a map for an event, got {type(obj).__name__}")
    raise ProtocolError(
        f"kind: {kind!r} is not an event (job_event, error, model_stored, model_missing)",
        field="kind",
    )


def dump(message: Message) -> bytes:
    """msgpack bytes of a message (bytes fields stay binary)."""
    return encode(message.model_dump(mode="python"))
