"""Placement policies for job migration, pluggable by name.

Every policy runs on the same protocol and the same rules (:class:`MigrationRules`): which
queued jobs are *considered* for migration (the trigger), the hysteresis that keeps jobs
from bouncing, the admission control at the receiving node. A policy only answers one
question: given this job, this node and the peers it has a link to right now, which peer
(if any) should take the job? So baselines are honest: only the placement differs.

``forecast`` (the project's own) estimates, for here and each linked peer, when the job
would finish: transfer time (inputs, plus the model if the peer lacks it) + the work that
would run before it there (the running job's rest and the queued work of at least its
priority, when the peer publishes that detail; else its whole backlog) + the job's run time
at the peer's speed, and whether the peer can afford it: its energy margin through its
*next eclipse* (known from its orbit) and its thermal headroom. Among the peers that can
afford the job and finish it by its deadline it picks the earliest finish, and moves the job
if here cannot run it or would finish it late. A job on time here keeps its place when it
has a quarter of its remaining time to spare (moving it would only fill a neighbour that a
tighter job may need); otherwise it moves only for a marked gain (the shared hysteresis).
Energy-aware placement: when here cannot pay, through its next eclipse, for the work of at
least the job's priority and the job, the job goes to the linked peer that can pay for its
own such work and the job with the most to spare, if it finishes the job on time there. A
transfer longer than ``link_hold_s`` is not started (links between passing satellites last
minutes).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

__all__ = [
    "Candidate",
    "MigrationRules",
    "Peer",
    "Policy",
    "transfer_time_s",
]


class Peer(NamedTuple):
    """What a node knows of a node (itself or a neighbour) at decision time.

    Immutable; a named tuple rather than a frozen dataclass because the simulator builds
    about a million per simulated day of 1,000 satellites (five times cheaper to make)."""

    node: str
    soc: float
    margin_wh: float  # energy spendable now, keeping the DoD floor through next eclipse
    temperature_c: float
    throttle_c: float
    queued_work_s: float  # modelled seconds of work queued ahead (fastest mode)
    queue_depth: int
    sunlit: float
    next_eclipse_s: float | None  # seconds until next eclipse starts (0 = in eclipse)
    eclipse_s: float  # its duration
    ops_per_s: float  # effective ops/s at the fastest mode
    watts: float  # compute watts at that mode
    heat_capacity_j_per_k: float
    models: frozenset[str]
    safe_mode: bool = False
    link_rate_bps: float = 0.0  # rate of the link from the deciding node (0 = no link)
    link_latency_s: float = 0.0
    # optional detail (empty when a node does not publish it): remaining seconds of the
    # running job, and queued seconds of work per priority 0..9 (fastest mode)
    running_s: float = 0.0
    work_by_priority: tuple[float, ...] = ()


class Candidate(NamedTuple):
    """A queued job considered for migration (immutable; a named tuple, as :class:`Peer`)."""

    job_id: str
    flops: float
    input_bytes: int
    model: str
    model_bytes: int
    deadline: float | None
    value: float
    priority: int
    migrations: int
    ahead_s: float | None = None  # seconds of work ahead of it where it is (if known)


@dataclass(frozen=True, slots=True)
class MigrationRules:
    """Shared by every policy: trigger and hysteresis."""

    max_migrations: int = 2  # a job moves at most this often
    min_gain_s: float = 5.0  # a move must finish the job at least this much sooner ...
    min_gain_frac: float = 0.2  # ... and this fraction sooner than staying
    consider_wait_s: float = 30.0  # consider jobs expected to wait longer than this here
    max_per_round: int = 8  # jobs one node hands over per decision round


def transfer_time_s(job: Candidate, peer: Peer) -> float:
    """Seconds to move ``job`` to ``peer``: latency + inputs (+ model if missing) / rate."""
    if peer.link_rate_bps <= 0:
        return math.inf
    size = job.input_bytes + (0 if job.model in peer.models else job.model_bytes)
    return peer.link_latency_s + 8.0 * size / peer.link_rate_bps


def run_time_s(job: Candidate, peer: Peer) -> float:
    return job.flops / max(peer.ops_per_s, 1.0)


def finish_time_s(job: Candidate, peer: Peer, *, here: bool) -> float:
    """Seconds from now until ``peer`` would finish ``job`` (0 transfer if ``here``)."""
    move = 0.0 if here else transfer_time_s(job, peer)
    return move + peer.queued_work_s + run_time_s(job, peer)


def affordable(job: Candidate, peer: Peer) -> bool:
    """The peer can pay the job's energy and heat now (the receiving admission rule)."""
    if peer.safe_mode:
        return False
    energy_j = peer.watts * run_time_s(job, peer)
    if energy_j / 3600.0 > peer.margin_wh:
        return False
    return peer.temperature_c + energy_j / peer.heat_capacity_j_per_k < peer.throttle_c


class Policy(abc.ABC):
    """Placement decision; ``rng`` is the run's seeded generator."""

    name: str = "base"

    def __init__(self, rules: MigrationRules | None = None) -> None:
        self.rules = rules or MigrationRules()

    def should_consider(self, job: Candidate, here: Peer, now: float) -> bool:
        """The shared trigger: the job would wait long, miss its deadline, or cannot run."""
        if job.migrations >= self.rules.max_migrations:
            return False
        wait = here.queued_work_s
        finish = finish_time_s(job, here, here=True)
        late = job.deadline is not None and now + finish > job.deadline
        return late or wait > self.rules.consider_wait_s or not affordable(job, here)

    @abc.abstractmethod
    def choose(
        self, job: Candidate, here: Peer, peers: Sequence[Peer], now: float,
        rng: np.random.Generator,
    ) -> str | None:
        """The peer that should take ``job``, or ``None`` to keep it."""

    @staticmethod
    def linked(peers: Sequence[Peer]) -> list[Peer]:
        return [p for p in peers if p.link_rate_bps > 0 and not p.safe_mode]


class LocalPolicy(Policy):
    name = "local"

    def should_consider(self, job: Candidate, here: Peer, now: float) -> bool:
        return False

    def choose(self, job: Candidate, here: Peer, peers: Sequence[Peer], now: float,
               rng: np.random.Generator) -> str | None:
        return None


class RandomPolicy(Policy):
    name = "random"

    def choose(self, job: Candidate, here: Peer, peers: Sequence[Peer], now: float,
               rng: np.random.Generator) -> str | None:
        linked = self.linked(peers)
        if not linked:
            return None
        return linked[int(rng.integers(len(linked)))].node


class RoundRobinPolicy(Policy):
    name = "round-robin"

    def __init__(self, rules: MigrationRules | None = None) -> None:
        super().__init__(rules)
        self._next: dict[str, int] = {}

    def choose(self, job: Candidate, here: Peer, peers: Sequence[Peer], now: float,
               rng: np.random.Generator) -> str | None:
        linked = sorted(self.linked(peers), key=lambda p: p.node)
        if not linked:
            return None
        i = self._next.get(here.node, 0)
        self._next[here.node] = i + 1
        return linked[i % len(linked)].node


class LeastLoadedPolicy(Policy):
    """Power of two choices: sample two linked peers, take the less loaded if lighter."""

    name = "least-loaded"

    def choose(self, job: Candidate, here: Peer, peers: Sequence[Peer], now: float,
               rng: np.random.Generator) -> str | None:
        linked = self.linked(peers)
        if not linked:
            return None
        k = min(2, len(linked))
        picks = [linked[int(i)] for i in rng.choice(len(linked), size=k, replace=False)]
        best = min(picks, key=lambda p: (p.queued_work_s, p.node))
        return best.node if best.queued_work_s < here.queued_work_s else None


class GreedyEnergyPolicy(Policy):
    """Highest battery first, sunlit preferred; only toward more energy than here."""

    name = "greedy-energy"

    def choose(self, job: Candidate, here: Peer, peers: Sequence[Peer], now: float,
               rng: np.random.Generator) -> str | None:
        linked = self.linked(peers)
        if not linked:
            return None
        best = max(linked, key=lambda p: (p.sunlit >= 0.5, p.soc, p.node))
        if (best.sunlit >= 0.5, best.soc) > (here.sunlit >= 0.5, here.soc):
            return best.node
        return None


class ForecastPolicy(Policy):
    """The project's policy: earliest feasible finish, counting transfer, energy through
    the next eclipse and thermal headroom (see the module docstring)."""

    name = "forecast"
    #: a job that finishes where it is with this share of its remaining time to spare stays
    keep_slack_frac: float = 0.25
    #: a transfer longer than this is not started: a link between passing satellites lasts
    #: minutes, and a handover cut by the link's end returns the job later than it left
    link_hold_s: float = 120.0

    @staticmethod
    def wait_s(job: Candidate, p: Peer) -> float:
        """Seconds before ``job`` could start at ``p``: the running job's remaining time
        plus the queued work of at least the job's priority (queues run in priority order);
        the whole backlog when ``p`` does not publish that detail."""
        if not p.work_by_priority:
            return p.queued_work_s
        return p.running_s + sum(p.work_by_priority[job.priority:])

    def choose(self, job: Candidate, here: Peer, peers: Sequence[Peer], now: float,
               rng: np.random.Generator) -> str | None:
        ahead = job.ahead_s if job.ahead_s is not None else self.wait_s(job, here)
        stay = ahead + run_time_s(job, here)
        stay_ok = affordable(job, here)
        deadline = job.deadline
        stay_on_time = deadline is None or now + stay <= deadline
        if stay_ok and self._energy_short(job, here):
            relief = self._energy_relief(job, here, peers, now)
            if relief is not None:
                return relief
        if (stay_ok and deadline is not None
                and deadline - (now + stay) >= self.keep_slack(job, now)):
            return None  # on time here with room to spare: leave the neighbours free
        best: tuple[float, str] | None = None
        for p in self.linked(peers):
            move = transfer_time_s(job, p)
            if move > self.link_hold_s:
                continue
            run = run_time_s(job, p)
            fin = move + self.wait_s(job, p) + run
            if deadline is not None and now + fin > deadline:
                continue
            if best is not None and (fin, p.node) >= best:
                continue
            if not affordable(job, p):
                continue
            # work must not land on a node about to enter eclipse with too little margin
            if (p.next_eclipse_s is not None and fin > p.next_eclipse_s and p.sunlit >= 0.5
                    and p.watts * run / 3600.0 > 0.5 * p.margin_wh):
                continue
            best = (fin, p.node)
        if best is None:
            return None
        fin, node = best
        if not stay_ok or not stay_on_time:
            return node
        gain = stay - fin
        if gain >= self.rules.min_gain_s and gain >= self.rules.min_gain_frac * stay:
            return node
        return None

    @staticmethod
    def _energy_need_wh(job: Candidate, p: Peer) -> float:
        """Energy (Wh) of the work at ``p`` that runs before and with ``job``."""
        return p.watts * (ForecastPolicy.wait_s(job, p) + run_time_s(job, p)) / 3600.0

    def _energy_short(self, job: Candidate, here: Peer) -> bool:
        """Here cannot pay, through its next eclipse, for the work queued at the job's
        priority or above and the job itself: something of it will wait for energy."""
        return here.margin_wh < self._energy_need_wh(job, here)

    def _energy_relief(self, job: Candidate, here: Peer, peers: Sequence[Peer],
                       now: float) -> str | None:
        """A linked peer that can pay for its own work and this job and still finish the job
        on time (the one with the most margin to spare), or ``None``. Moving the job leaves
        here's energy to the work that stays (energy-aware placement)."""
        best: tuple[float, str] | None = None
        for p in self.linked(peers):
            move = transfer_time_s(job, p)
            if move > self.link_hold_s or not affordable(job, p):
                continue
            fin = move + self.wait_s(job, p) + run_time_s(job, p)
            if job.deadline is not None and now + fin > job.deadline:
                continue
            spare = p.margin_wh - self._energy_need_wh(job, p)
            if spare <= 0.0:
                continue
            if best is None or (-spare, p.node) < best:
                best = (-spare, p.node)
        return None if best is None else best[1]

    def keep_slack(self, job: Candidate, now: float) -> float:
        """Spare time (s) that makes a job on time where it is not worth moving."""
        assert job.deadline is not None
        return self.keep_slack_frac * max(0.0, job.deadline - now)
