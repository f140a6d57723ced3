"""Messages and topics of data-parallel training jobs (see ``docs/protocol.md``).

A training job has K members; member ``i`` gets a :class:`TrainJob` with shard ``i`` of
the training set on ``odc/sat/{node}/train``. Every step each member publishes its
:class:`TrainGrad` on ``odc/sat/{node}/train/{job_id}/grad`` and reads every member's
(``odc/sat/+/train/{job_id}/grad``); at the end each publishes a :class:`TrainDone` on
``odc/sat/{node}/train/{job_id}/done``. With ``checkpoint_every`` N the first member also
publishes a :class:`TrainCheckpoint` (parameters and Adam state) every N steps on
``odc/sat/{node}/train/{job_id}/ckpt``. A re-planned job keeps its id and raises ``epoch``
by one (a fencing token): a member refuses a gradient of an older epoch, and a
:class:`TrainJob` may carry a :class:`TrainState` to resume from.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from flightsw.protocol.messages import Auth, JobId, Message, NodeId, Tensor
from flightsw.protocol.sign import canonical
from flightsw.protocol.topics import PREFIX

__all__ = [
    "TrainCheckpoint",
    "TrainDone",
    "TrainGrad",
    "TrainJob",
    "TrainState",
    "ckpt_topic",
    "ckpts_of_job",
    "done_topic",
    "grad_topic",
    "grads_of_job",
    "train_inbox",
]


def train_inbox(node: str) -> str:
    return f"{PREFIX}/{node}/train"


def grad_topic(node: str, job_id: str) -> str:
    return f"{PREFIX}/{node}/train/{job_id}/grad"


def grads_of_job(job_id: str) -> str:
    """Every member's gradients of one job (a subscription filter)."""
    return f"{PREFIX}/+/train/{job_id}/grad"


def done_topic(node: str, job_id: str) -> str:
    return f"{PREFIX}/{node}/train/{job_id}/done"


def ckpt_topic(node: str, job_id: str) -> str:
    return f"{PREFIX}/{node}/train/{job_id}/ckpt"


def ckpts_of_job(job_id: str) -> str:
    """Every member's checkpoints of one job (a subscription filter)."""
    return f"{PREFIX}/+/train/{job_id}/ckpt"


class _Compatible(Message):
    """A message that gained fields after its first version: each field of ``LATER`` whose
    value is the one named there travels without its key, so a peer from before it (which
    forbids unknown fields) still takes what means the same to it."""

    LATER: ClassVar[dict[str, Any]] = {}

    @model_serializer(mode="wrap")
    def _without_later_defaults(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            for key, default in self.LATER.items():
                if key in data and data[key] == default:
                    del data[key]
        return data


class TrainState(Message):
    """Training state after ``step`` steps: the parameters (``W0, b0, W1, b1, ...``) and
    the Adam optimiser's moments and step count. Full-batch training draws no random
    numbers after the seeded initialisation, so this is all a run needs to go on."""

    step: Annotated[int, Field(ge=0)]
    params: list[Tensor] = Field(min_length=2)
    adam_t: Annotated[int, Field(ge=0)]
    adam_m: list[Tensor]
    adam_v: list[Tensor]

    @model_validator(mode="after")
    def _shapes(self) -> TrainState:
        n = len(self.params)
        if self.adam_t and (len(self.adam_m) != n or len(self.adam_v) != n):
            raise ValueError(f"adam_m, adam_v: {n} tensors each needed, got "
                             f"{len(self.adam_m)} and {len(self.adam_v)}")
        return self

    def sha256(self) -> str:
        return hashlib.sha256(canonical(self.model_dump(mode="python"))).hexdigest()


class TrainJob(_Compatible):
    """One member's part of a data-parallel training job: the plan every member shares,
    and this member's shard (``x`` features, ``y`` integer labels)."""

    LATER: ClassVar[dict[str, Any]] = {"epoch": 0, "checkpoint_every": 0, "resume": None}

    kind: Literal["train_job"] = "train_job"
    job_id: JobId
    members: list[NodeId] = Field(min_length=1, max_length=64)
    sizes: list[Annotated[int, Field(ge=1, le=4096)]] = Field(min_length=2, max_length=16)
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 0
    steps: Annotated[int, Field(ge=1, le=100_000)]
    lr: Annotated[float, Field(gt=0, le=10, allow_inf_nan=False)]
    total_items: Annotated[int, Field(ge=1)]  # items of the whole training set
    step_timeout_s: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 60.0
    x: Tensor
    y: Tensor
    epoch: Annotated[int, Field(ge=0)] = 0  # raised by one at every re-plan
    checkpoint_every: Annotated[int, Field(ge=0, le=100_000)] = 0  # 0: no checkpoints
    resume: TrainState | None = None  # start from this state instead of the seed's

    @model_validator(mode="after")
    def _distinct(self) -> TrainJob:
        if len(set(self.members)) != len(self.members):
            raise ValueError("members: a node appears twice")
        if self.resume is not None and self.resume.step >= self.steps:
            raise ValueError(f"resume.step: {self.resume.step} is not below steps "
                             f"{self.steps}")
        if self.resume is not None and len(self.resume.params) != 2 * (len(self.sizes) - 1):
            raise ValueError(f"resume.params: {2 * (len(self.sizes) - 1)} tensors needed, "
                             f"got {len(self.resume.params)}")
        return self

    @property
    def start_step(self) -> int:
        return 0 if self.resume is None else self.resume.step

    def plan_sha256(self) -> str:
        """The digest of what every member must agree on (all but the shard). The fields
        of re-planning count only when set, so a first epoch without checkpoints has the
        digest members from before them compute."""
        plan: dict[str, Any] = {
            "job_id": self.job_id, "members": list(self.members), "sizes": list(self.sizes),
            "seed": self.seed, "steps": self.steps, "lr": self.lr,
            "total_items": self.total_items,
        }
        if self.epoch:
            plan["epoch"] = self.epoch
        if self.checkpoint_every:
            plan["checkpoint_every"] = self.checkpoint_every
        if self.resume is not None:
            plan["resume"] = self.resume.sha256()
        return hashlib.sha256(canonical(plan)).hexdigest()


class TrainGrad(_Compatible):
    """One member's gradient of one step (already divided by the job's ``total_items``)."""

    LATER: ClassVar[dict[str, Any]] = {"epoch": 0}

    kind: Literal["train_grad"] = "train_grad"
    auth: Auth | None = None
    job_id: JobId
    node: NodeId
    plan: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    step: Annotated[int, Field(ge=0)]
    loss: Annotated[float, Field(allow_inf_nan=False)]
    grads: list[Tensor]
    epoch: Annotated[int, Field(ge=0)] = 0


class TrainCheckpoint(Message):
    """The first member's training state after ``state.step`` steps, and the whole set's
    loss of each step this epoch has done: ``losses[-1]`` is step ``state.step - 1``'s."""

    kind: Literal["train_ckpt"] = "train_ckpt"
    auth: Auth | None = None
    job_id: JobId
    node: NodeId
    plan: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    epoch: Annotated[int, Field(ge=0)]
    losses: list[Annotated[float, Field(allow_inf_nan=False)]]
    state: TrainState


class TrainDone(_Compatible):
    """A member's end of a training job: its parameters after the last step, or why it
    failed."""

    LATER: ClassVar[dict[str, Any]] = {"epoch": 0, "missing": [], "stale_in": 0,
                                       "start_step": 0}

    kind: Literal["train_done"] = "train_done"
    auth: Auth | None = None
    job_id: JobId
    node: NodeId
    status: Literal["done", "failed"]
    reason: str | None = None
    epoch: Annotated[int, Field(ge=0)] = 0
    missing: list[NodeId] = Field(default_factory=list)  # members whose gradient never came
    stale_in: int = 0  # gradients refused as of an older epoch
    start_step: int = 0  # the step this epoch started from
    steps: int = 0  # the steps done in all (the start step included)
    losses: list[float] = Field(default_factory=list)  # whole set's loss, per step this epoch
    params: list[Tensor] = Field(default_factory=list)
    host_wall_s: float = 0.0
    messages_in: int = 0  # gradients received from the other members
    # this member's modelled compute: seconds of its steps' gradients at its fastest mode,
    # and their energy above idle (charged to its power budget)
    modelled_compute_s: float = 0.0
    modelled_energy_j: float = 0.0
