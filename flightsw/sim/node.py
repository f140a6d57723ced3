"""One simulated node's onboard state: its queue (the same :class:`OnboardScheduler` as
the emulated node), the job it runs, the models it holds and the results it keeps until a
downlink path opens (store and forward)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from flightsw.node.scheduler import Decision, ModeSpec, OnboardScheduler, Queued, Work
from flightsw.sim.ledger import Job, Ticket
from hardware_profiles import HardwareProfile

__all__ = ["NodeSpec", "OutResult", "Run", "SimNode", "modes_of"]


def modes_of(profile: HardwareProfile) -> list[ModeSpec]:
    return [
        ModeSpec(m.name, m.watts, profile.effective_ops_per_s(m.name))
        for m in profile.compute.power_modes
    ]


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """Per-profile constants a node needs on its hot paths."""

    profile: HardwareProfile
    modes: tuple[ModeSpec, ...]  # sorted by watts
    fastest: ModeSpec
    bandwidth_bps: float

    @classmethod
    def of(cls, profile: HardwareProfile) -> NodeSpec:
        modes = sorted(modes_of(profile), key=lambda m: m.watts)
        fastest = max(modes, key=lambda m: (m.ops_per_s, -m.watts))
        return cls(profile, tuple(modes), fastest, profile.compute.memory_bandwidth_bps)

    def cheapest_wh(self, work: Work, cap_w: float) -> float:
        """Least energy (Wh) any allowed mode needs for ``work``."""
        best = math.inf
        for m in self.modes:
            if m.watts <= cap_w + 1e-9:
                best = min(best, m.watts * work.latency_s(m, self.bandwidth_bps))
        return best / 3600.0


@dataclass(slots=True)
class Run:
    q: Queued
    d: Decision
    start: float
    end: float
    token: int


@dataclass(slots=True)
class OutResult:
    """A finished job's result waiting for a downlink path."""

    job: Job
    epoch: int
    node: int
    finished_at: float
    started_at: float
    accepted_at: float
    energy_j: float
    latency_s: float
    mode: str
    migrations: int


@dataclass(slots=True, eq=False)
class SimNode:
    """A node's onboard state (the engine drives it; see :mod:`flightsw.sim.engine`)."""

    i: int
    name: str
    spec: NodeSpec
    sched: OnboardScheduler
    models: set[str] = field(default_factory=set)
    run: Run | None = None
    outbox: list[OutResult] = field(default_factory=list)
    throttled: bool = False
    safe: str | None = None
    token: int = 0
    crashes: int = 0
    lease_checked: int = 0
    mode: str = ""
    tele_seq: int = 0
    jobs_done: int = 0
    jobs_failed: int = 0
    energy_j: float = 0.0
    migrations_in: int = 0
    migrations_out: int = 0
    _models_frozen: frozenset[str] | None = None
    _queued_s: float | None = None  # cached sched.backlog_s(); None after a queue change
    _by_prio: tuple[float, ...] | None = None

    @classmethod
    def new(cls, i: int, name: str, spec: NodeSpec) -> SimNode:
        return cls(i, name, spec, OnboardScheduler(list(spec.modes), spec.bandwidth_bps),
                   mode=spec.profile.compute.default_mode)

    def touch(self) -> None:
        """Call after any change to the queue (drops the cached backlog)."""
        self._queued_s = None
        self._by_prio = None

    def _queue_work(self) -> None:
        """Queued seconds of work at the fastest mode, in total and per priority 0..9 (the
        same sums as ``OnboardScheduler.backlog_s``), cached until the queue changes."""
        f = self.spec.fastest
        bw = self.spec.bandwidth_bps
        acc = [0.0] * 10
        for q in self.sched._by_id.values():  # read-only walk of its table
            acc[q.priority] += q.work.latency_s(f, bw)
        self._by_prio = tuple(acc)
        self._queued_s = sum(acc)

    def work_by_priority(self) -> tuple[float, ...]:
        """Queued seconds of work (fastest mode) per priority 0..9."""
        if self._by_prio is None:
            self._queue_work()
        assert self._by_prio is not None
        return self._by_prio

    def queued_s(self) -> float:
        """Queued seconds of work at the fastest mode."""
        if self._queued_s is None:
            self._queue_work()
        assert self._queued_s is not None
        return self._queued_s

    def running_s(self, now: float) -> float:
        return max(0.0, self.run.end - now) if self.run is not None else 0.0

    def reset_volatile(self) -> None:
        """What a crash loses: the queue, the running job, the throttle/safe state."""
        self.sched = OnboardScheduler(list(self.spec.modes), self.spec.bandwidth_bps)
        self._queued_s = None
        self.run = None
        self.throttled = False
        self.safe = None

    def add_model(self, key: str) -> None:
        if key not in self.models:
            self.models.add(key)
            self._models_frozen = None

    def models_frozen(self) -> frozenset[str]:
        if self._models_frozen is None:
            self._models_frozen = frozenset(self.models)
        return self._models_frozen

    def backlog_s(self, now: float) -> float:
        """Seconds of work ahead of a new job: the running job's remaining time plus the
        queue at the fastest mode."""
        left = max(0.0, self.run.end - now) if self.run is not None else 0.0
        return left + self.queued_s()


def ticket(q: Queued) -> Ticket:
    assert isinstance(q.payload, Ticket)
    return q.payload
