"""Jobs and the ground's job table (the ledger): epochs, owners, exactly-once outcomes.

The ledger is the ground's view, kept apart from where copies of a job actually are (node
queues, links, outboxes), so the end-of-run audit can catch a job that vanished or is held
twice. Its rules are the ground station's, from one rulebook
(:mod:`flightsw.protocol.jobrules`):

* every job has an *epoch* (fencing token); a handover carries the next epoch, and so does a
  re-run of a job whose owner's lease lapsed;
* a result (done or failed) is recorded only if the job has no outcome yet and its epoch is
  at least the job's current epoch (the ledger then takes that epoch); anything else is
  counted (stale or duplicate) and ignored;
* every job ends with exactly one outcome: ``done`` or ``failed`` with a reason.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from flightsw.protocol.jobrules import judge_result, next_epoch
from flightsw.sim.world import ClassSpec

__all__ = ["GROUND", "Job", "Ledger", "Ticket"]

GROUND = -1


@dataclass(slots=True, eq=False)
class Job:
    """One job: what it costs and what the ground knows of it."""

    jid: str
    cls: ClassSpec
    items: int
    flops: float
    mem_bytes: float  # memory traffic of the roofline: weights + per-item activations
    input_bytes: float
    output_bytes: float
    submitted_at: float
    deadline: float | None
    origin_node: int  # GROUND for ground jobs
    # the ground's view
    epoch: int = 0
    owner: int = GROUND
    outcome: str = ""  # "", "done", "failed"
    reason: str = ""
    node: int = GROUND  # node that produced the outcome
    accepted_at: float = math.nan
    started_at: float = math.nan
    finished_at: float = math.nan
    delivered_at: float = math.nan
    energy_j: float = 0.0
    latency_s: float = 0.0  # modelled run time of the recorded result (a duration)
    mode: str = ""
    migrations: int = 0

    @property
    def value(self) -> float:
        return self.cls.value

    @property
    def priority(self) -> int:
        return self.cls.priority

    @property
    def model(self) -> str:
        return self.cls.model_key

    @property
    def model_bytes(self) -> float:
        return self.cls.weight_bytes

    @property
    def on_time(self) -> bool:
        return self.outcome == "done" and (
            self.deadline is None or self.finished_at <= self.deadline + 1e-9
        )


@dataclass(slots=True)
class Ticket:
    """A node's copy of a job (what travels in a handover): the job and its move count."""

    job: Job
    migrations: int = 0


@dataclass(slots=True)
class Ledger:
    """The ground's job table (see the module docstring)."""

    jobs: dict[str, Job] = field(default_factory=dict)
    owned: dict[int, dict[str, Job]] = field(default_factory=dict)
    recorded: Counter[str] = field(default_factory=Counter)
    stale_results: int = 0
    duplicate_deliveries: int = 0
    stale_failures: int = 0

    def submit(self, job: Job, owner: int) -> None:
        self.jobs[job.jid] = job
        job.owner = owner
        self.owned.setdefault(owner, {})[job.jid] = job

    def set_owner(self, job: Job, owner: int, epoch: int | None = None) -> None:
        if job.outcome:
            return
        self.owned.get(job.owner, {}).pop(job.jid, None)
        job.owner = owner
        if epoch is not None and epoch > job.epoch:
            job.epoch = epoch
        self.owned.setdefault(owner, {})[job.jid] = job

    def bump(self, job: Job) -> int:
        """A new epoch for ``job`` (a handover or a re-run); returns it."""
        job.epoch = next_epoch(job.epoch)
        return job.epoch

    def jobs_of(self, owner: int) -> list[Job]:
        """Unresolved jobs the ground believes ``owner`` holds, in submission order."""
        return list(self.owned.get(owner, {}).values())

    def _resolve(self, job: Job) -> None:
        self.owned.get(job.owner, {}).pop(job.jid, None)

    def record_result(
        self,
        job: Job,
        epoch: int,
        node: int,
        *,
        finished_at: float,
        delivered_at: float,
        started_at: float,
        accepted_at: float,
        energy_j: float,
        mode: str,
        migrations: int,
    ) -> str:
        """Record a delivered result: ``"recorded"``, ``"stale"`` or ``"duplicate"``."""
        verdict = judge_result(bool(job.outcome), job.epoch, epoch)
        if verdict == "duplicate":
            self.duplicate_deliveries += 1
            return "duplicate"
        if verdict == "stale":
            self.stale_results += 1
            return "stale"
        self._resolve(job)
        self.recorded[job.jid] += 1
        job.epoch = epoch
        job.outcome = "done"
        job.node = node
        job.finished_at = finished_at
        job.delivered_at = delivered_at
        job.started_at = started_at
        job.accepted_at = accepted_at
        job.energy_j = energy_j
        job.mode = mode
        job.migrations = migrations
        return "recorded"

    def fail(self, job: Job, epoch: int | None, node: int, reason: str, t: float) -> bool:
        """Record a failure by the rule of results (``epoch`` ``None``: the ground's own
        decision, about the current epoch); True if it was recorded."""
        epoch = job.epoch if epoch is None else epoch
        verdict = judge_result(bool(job.outcome), job.epoch, epoch)
        if verdict == "duplicate":
            return False
        if verdict == "stale":
            self.stale_failures += 1
            return False
        self._resolve(job)
        self.recorded[job.jid] += 1
        job.epoch = epoch
        job.outcome = "failed"
        job.reason = reason
        job.node = node
        job.finished_at = t
        return True

    def unresolved(self) -> list[Job]:
        return [j for j in self.jobs.values() if not j.outcome]

    def duplicate_outcomes(self) -> int:
        """Jobs with more than one recorded outcome (must be 0)."""
        return sum(1 for n in self.recorded.values() if n > 1)
