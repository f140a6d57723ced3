"""Messages between ground clients and the ground station service (over the same bus).

A client publishes a :class:`Request` on ``odc/ground/req``; the service answers with a
:class:`Reply` on ``odc/ground/rep/{client}``, and publishes every change of a job as a
:class:`JobRecord` on ``odc/ground/job/{job_id}``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

from flightsw.protocol.messages import JobId, Message, NodeId, Sha256, Tensor

__all__ = [
    "JOB_STATES",
    "REQUEST_TOPIC",
    "TERMINAL",
    "JobRecord",
    "Reply",
    "Request",
    "SubmitArgs",
    "SubmitJob",
    "job_topic",
    "reply_topic",
]

REQUEST_TOPIC = "odc/ground/req"

JOB_STATES = (
    "queued",
    "uplinked",
    "accepted",
    "deferred",
    "running",
    "suspended",
    "migrating",
    "done",
    "failed",
)
TERMINAL = frozenset({"done", "failed"})


def reply_topic(client: str) -> str:
    return f"odc/ground/rep/{client}"


def job_topic(job_id: str) -> str:
    return f"odc/ground/job/{job_id}"


class Request(Message):
    """``op``: submit | model_chunk | has_model | jobs | job | result."""

    kind: Literal["ground_request"] = "ground_request"
    req_id: Annotated[str, Field(min_length=1, max_length=128)]
    client: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
    op: Literal["submit", "model_chunk", "has_model", "jobs", "job", "result"]
    args: dict[str, Any] = Field(default_factory=dict)


class SubmitJob(Message):
    """The job of a ``submit`` request: what the client chooses of a ``JobSubmit``.

    The service sets ``epoch`` (0) and ``submitted_at`` (its mission time) and turns
    ``deadline_s`` (seconds after submission, None for none) into the job's ``deadline``.
    ``job_id`` is chosen by the client, so a resent request is harmless. ``stages``, the
    stage models of a pipeline job in order (``model`` the first), makes it one: the ground
    runs stage ``k`` on the ``k``-th of as many distinct nodes. ``micro_batches`` M > 1
    streams a pipeline job: the ground cuts its inputs into M parts along the first axis,
    each run as a pipeline job of its own on one chain (:mod:`groundstation.microbatch`);
    left off the wire at its default 1, so a ground from before it takes the request.
    """

    job_id: JobId
    model: Sha256
    inputs: dict[str, Tensor] = Field(min_length=1)
    priority: Annotated[int, Field(ge=0, le=9)] = 5
    deadline_s: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    value: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 1.0
    stages: Annotated[list[Sha256], Field(min_length=2, max_length=64)] | None = None
    micro_batches: Annotated[int, Field(ge=1, le=256)] = 1

    @model_serializer(mode="wrap")
    def _without_one_micro_batch(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict) and data.get("micro_batches") == 1:
            del data["micro_batches"]
        return data


class SubmitArgs(Message):
    """``args`` of a ``submit`` request: the job, and the node it must run on (None: the
    ground chooses)."""

    job: SubmitJob
    node: NodeId | None = None


class Reply(Message):
    """The answer to one request; ``req_id`` as the request gave it (string or integer),
    ``field`` the offending field of a refused request when one is to blame."""

    kind: Literal["ground_reply"] = "ground_reply"
    req_id: str | int
    ok: bool
    error: str | None = None
    field: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class JobRecord(Message):
    """The ground's view of one job (its row in the job table)."""

    kind: Literal["job_record"] = "job_record"
    job_id: str
    model: str
    state: str
    epoch: int = 0
    node: str | None = None
    target: str | None = None
    attempts: int = 0
    priority: int = 5
    deadline: float | None = None
    value: float = 1.0
    items: int = 0
    submitted_at: float = 0.0
    uplinked_at: float | None = None
    accepted_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    host_wall_s: float | None = None
    modelled_latency_s: float | None = None
    modelled_energy_j: float | None = None
    power_mode: str | None = None
    migrations: int = 0
    duplicates: int = 0
    stages: int = 0  # a pipeline job's stage count (0: not a pipeline)
    replans: int = 0  # times a member gave a pipeline job back and the rest was re-planned
    micro_batches: int = 0  # a micro-batched job's children (0: not one)
    parent: str | None = None  # a micro-batch's parent job (groundstation.microbatch)
    reason: str | None = None
    detail: str | None = None
    outputs: dict[str, Tensor] | None = None

    @model_serializer(mode="wrap")
    def _without_zero_stages(self, handler: SerializerFunctionWrapHandler) -> Any:
        # a plain job's record travels without ``stages``, so a client from before pipeline
        # jobs (which forbids unknown fields) still reads it; the same for micro-batches
        data = handler(self)
        if isinstance(data, dict):
            for key in ("stages", "replans", "micro_batches"):
                if data.get(key, 1) == 0:  # replans: omitted too, for the same clients
                    del data[key]
            if "parent" in data and data["parent"] is None:
                del data["parent"]
        return data
