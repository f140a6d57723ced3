"""What a node core tells its driver: start a run, stop it, a job changed state, a job
failed here, the node's status changed (the effects of :class:`~flightsw.node.core.NodeCore`)."""

from __future__ import annotations

from typing import Literal, NamedTuple

from flightsw.node.scheduler import Decision, Queued

__all__ = [
    "Effect",
    "Failed",
    "JobNote",
    "Run",
    "Started",
    "StatusChanged",
    "Stopped",
    "Suspended",
]


class Run(NamedTuple):
    """The job running now: its decision, when it started, when it will end and the token
    of the start. ``end`` schedules the run's end and prices the backlog; a job's duration
    and energy are its decision's, never ``end - start``."""

    q: Queued
    d: Decision
    start: float
    end: float
    token: int


class Started(NamedTuple):
    """Start ``run`` now (run it for real, or schedule its end)."""

    run: Run


class Stopped(NamedTuple):
    """The running job was stopped: cancel its execution; ``spent_j`` was paid for it."""

    run: Run
    reason: str
    requeued: bool
    spent_j: float


class Suspended(NamedTuple):
    """The running job was suspended at an item boundary and queued again with ``done``
    items finished (pre-emption, energy guard): stop its execution; ``spent_j`` (its run so
    far and the checkpoint's write) was paid for it. The job itself is not lost."""

    run: Run
    reason: str
    done: int
    spent_j: float


class JobNote(NamedTuple):
    """A job changed state on this node (the job event the ground follows)."""

    q: Queued
    state: str  # queued, deferred, shed, cancelled, handed_over, suspended
    detail: str | None = None
    target: str | None = None


class Failed(NamedTuple):
    """The job ended here without a result: send the failed result."""

    q: Queued
    reason: str


class StatusChanged(NamedTuple):
    state: Literal["online", "safe"]


Effect = Started | Stopped | Suspended | JobNote | Failed | StatusChanged
