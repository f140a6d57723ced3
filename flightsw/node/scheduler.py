"""Onboard scheduler: priority + deadline queue, admission control, DVFS, shedding.

Pure logic with no I/O and no clock: every method takes ``now`` (mission seconds), so the
same code serves the emulated node and the simulator.

Order: higher ``priority`` first, then earlier deadline (EDF), then arrival order.
Admission: a job runs only if, after paying its modelled energy (drawn from the battery at
its discharge efficiency), the battery stays above the depth-of-discharge floor through the
end of the next eclipse (``Budget.margin_wh``); a job that runs past that eclipse is walked
through the eclipse timeline (:class:`~flightsw.node.outlook.Outlook`) until the first
eclipse that ends after it. A node whose bus alone loses energy over an orbit computes
nothing: every joule it spent would bring its floor crossing nearer. Work below
:data:`URGENT_PRIORITY` also leaves the node's
reserve for urgent work untouched, and, in eclipse, waits for sunlight when it has the slack
and the battery is below its comfort level. The temperature must stay under the maximum.
The power mode is the one that spends the least energy above idle while meeting the
deadline (the fastest when others wait), capped by the thermal throttle.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from flightsw.node.outlook import Outlook

__all__ = [
    "COMFORT_SHARE",
    "URGENT_PRIORITY",
    "Admission",
    "Decision",
    "ModeSpec",
    "OnboardScheduler",
    "Queued",
    "Work",
]

#: jobs of this priority or more are urgent: they may spend the reserve and pre-empt
URGENT_PRIORITY = 7
#: in eclipse, deferrable work waits for sunlight while the battery after it would be below
#: the floor plus this share of the usable capacity
COMFORT_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class ModeSpec:
    """A power mode: compute watts and effective ops/s at that mode."""

    name: str
    watts: float
    ops_per_s: float


@dataclass(frozen=True, slots=True)
class Work:
    """The modelled cost of a job: FLOPs and bytes for all its items."""

    flops: float
    bytes: float

    def latency_s(self, mode: ModeSpec, bandwidth_bps: float) -> float:
        """Roofline: max(compute time, memory time)."""
        return max(self.flops / mode.ops_per_s, self.bytes / bandwidth_bps)

    def share(self, frac: float) -> Work:
        """This work scaled by ``frac`` (what is left of it after a checkpoint)."""
        return Work(self.flops * frac, self.bytes * frac)


@dataclass(slots=True)
class Queued:
    job_id: str
    epoch: int
    priority: int
    deadline: float | None
    value: float
    work: Work
    accepted_at: float
    payload: Any = None  # whatever the caller needs to run it (decoded inputs, message)
    seq: int = 0
    deferred: str | None = None
    until: float = math.inf  # a deferral that only time ends (sunlight): when it ends
    items: int = 1  # items (batch rows) the job has in all; a checkpoint falls between two
    done: int = 0  # items finished by earlier runs (kept across suspensions and moves)
    overhead_s: float = 0.0  # resume cost its next run pays first (restore the checkpoint)
    spent_j: float = 0.0  # energy of its earlier runs (suspend costs included)
    suspensions: int = 0
    first_start: float | None = None  # when its first run started

    def sort_key(self) -> tuple[float, float, int]:
        dl = self.deadline if self.deadline is not None else float("inf")
        return (-float(self.priority), dl, self.seq)


class Admission(NamedTuple):
    """What the budget allows now (immutable; a named tuple: made at every dispatch)."""

    margin_wh: float  # battery energy that may be spent before the floor is at risk
    temperature_c: float
    max_c: float
    heat_capacity_j_per_k: float
    mode_cap_w: float  # thermal throttle / telecommand cap on compute watts
    forced_mode: str | None = None
    compute_allowed: bool = True
    reason: str | None = None
    outlook: Outlook | None = None  # the eclipse timeline, for jobs past the next eclipse
    reserve_wh: float = 0.0  # margin kept for urgent work (non-urgent jobs leave it)
    idle_w: float = 0.0  # compute idle watts (paid anyway: DVFS weighs watts above it)
    gate: Callable[[Queued], str | None] | None = None  # a policy's own run rule, if any


class Decision(NamedTuple):
    """The job to run now, its power mode and modelled cost (a named tuple, as Admission)."""

    job: Queued
    mode: ModeSpec
    latency_s: float
    energy_j: float
    late: bool  # will finish after its deadline even at the chosen mode


class OnboardScheduler:
    """The queue of one node and its admission / mode / shedding rules."""

    def __init__(self, modes: list[ModeSpec], bandwidth_bps: float) -> None:
        if not modes:
            raise ValueError("a node needs at least one power mode")
        self.modes = sorted(modes, key=lambda m: m.watts)
        self.bandwidth_bps = bandwidth_bps
        # the queue in run order, kept sorted as jobs come and go (an insertion or a deletion
        # found by bisection, not a sort per look); keys are unique (they end with ``seq``)
        self._order: list[tuple[tuple[float, float, int], Queued]] = []
        self._by_id: dict[str, Queued] = {}
        self._seq = itertools.count()

    # -- queue ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._by_id

    def __iter__(self) -> Iterator[Queued]:
        """The queued jobs in run order (a snapshot: the queue may change meanwhile)."""
        return iter([q for _, q in self._order])

    def values(self) -> Iterable[Queued]:
        """The queued jobs in no particular order (a live view: do not change the queue
        while reading it)."""
        return self._by_id.values()

    def get(self, job_id: str) -> Queued | None:
        return self._by_id.get(job_id)

    def push(self, job: Queued) -> None:
        """Queue ``job`` (replacing a queued job of the same id)."""
        self.remove(job.job_id)
        job.seq = next(self._seq)
        self._by_id[job.job_id] = job
        bisect.insort(self._order, (job.sort_key(), job))

    def remove(self, job_id: str) -> Queued | None:
        """Take a job out of the queue (cancel, migrate); ``None`` if absent."""
        q = self._by_id.pop(job_id, None)
        if q is not None:
            self._unorder(q)
        return q

    def _unorder(self, q: Queued) -> None:
        key = q.sort_key()
        k = bisect.bisect_left(self._order, (key,))  # (key,) sorts just before (key, q)
        assert self._order[k][1] is q, "queue order out of step with its table"
        del self._order[k]

    def fastest(self) -> ModeSpec:
        return max(self.modes, key=lambda m: m.ops_per_s)

    def backlog_s(self) -> float:
        """Modelled seconds of queued work at the fastest mode."""
        f = self.fastest()
        return sum(q.work.latency_s(f, self.bandwidth_bps) for q in self._by_id.values())

    # -- policy --------------------------------------------------------------------------
    def expired(self, now: float) -> list[Queued]:
        """Remove and return queued jobs whose deadline has already passed."""
        gone = [q for q in self._by_id.values() if q.deadline is not None and q.deadline < now]
        for q in gone:
            del self._by_id[q.job_id]
            self._unorder(q)
        return gone

    def shed(self, backlog_limit_s: float, max_queue: int) -> list[Queued]:
        """Remove the lowest-value work (value per modelled second) until not overloaded."""
        f = self.fastest()
        shed: list[Queued] = []

        def density(q: Queued) -> tuple[float, float, int]:
            lat = max(q.work.latency_s(f, self.bandwidth_bps), 1e-9)
            return (q.value / lat, float(q.priority), -q.seq)

        backlog = self.backlog_s()
        while self._by_id and (backlog > backlog_limit_s or len(self._by_id) > max_queue):
            victim = min(self._by_id.values(), key=density)
            del self._by_id[victim.job_id]
            self._unorder(victim)
            backlog -= victim.work.latency_s(f, self.bandwidth_bps)
            shed.append(victim)
        return shed

    def choose_mode(
        self, q: Queued, now: float, adm: Admission, *, busy: bool = False
    ) -> tuple[ModeSpec, float, float, bool] | str:
        """(mode, latency, energy, late) for ``q`` under ``adm``, or the reason it must wait."""
        if not adm.compute_allowed:
            return adm.reason or "compute not allowed"
        if adm.forced_mode is not None:
            candidates = [m for m in self.modes if m.name == adm.forced_mode]
        else:
            candidates = [m for m in self.modes if m.watts <= adm.mode_cap_w + 1e-9]
            if not candidates:
                candidates = [self.modes[0]]
        feasible: list[tuple[ModeSpec, float, float]] = []
        refused: tuple[str, ModeSpec, float] | None = None  # the first mode refused, and why
        ol = adm.outlook
        if ol is not None and ol.deficit:
            return ("energy: the bus alone loses energy over an orbit; compute waits until "
                    "it no longer does")
        eta_d = ol.eta_d if ol is not None else 1.0
        reserve = 0.0 if q.priority >= URGENT_PRIORITY else adm.reserve_wh
        covered = ol.covered_until() if ol is not None else math.inf
        for m in candidates:
            lat = q.work.latency_s(m, self.bandwidth_bps) + q.overhead_s
            energy = m.watts * lat
            if energy / 3600.0 / eta_d + reserve > adm.margin_wh:
                refused = refused or ("energy", m, energy)
                continue
            if ol is not None and now + lat > covered and ol.lowest_wh(m.watts, lat) < reserve:
                refused = refused or ("energy", m, energy)
                continue
            rise = energy / adm.heat_capacity_j_per_k
            if adm.temperature_c + rise > adm.max_c:
                refused = refused or ("thermal", m, rise)
                continue
            feasible.append((m, lat, energy))
        if not feasible:
            return self._refusal(refused, adm)
        on_time = [f for f in feasible if q.deadline is None or now + f[1] <= q.deadline]
        if on_time:
            if busy:
                # others wait behind this job: finish it fast to keep the queue moving
                m, lat, e = min(on_time, key=lambda f: (f[1], f[2]))
            else:
                # alone: the least energy above idle that still meets the deadline (DVFS:
                # the idle draw is paid whatever the mode)
                idle = adm.idle_w
                m, lat, e = min(on_time, key=lambda f: ((f[0].watts - idle) * f[1], f[1]))
            wait = self._sunlight(q, now, adm, lat, e)
            if wait is not None:
                assert ol is not None  # only an eclipse timeline makes work wait for sunlight
                q.until = ol.eclipses[0][1]
                return wait
            return (m, lat, e, False)
        m, lat, e = min(feasible, key=lambda f: f[1])
        return (m, lat, e, True)

    @staticmethod
    def _sunlight(q: Queued, now: float, adm: Admission, lat: float,
                  energy_j: float) -> str | None:
        """Why deferrable work waits for sunlight now, or ``None``: in eclipse, below the
        urgent class, on time if started when the eclipse ends, and the battery after it
        would sit below its comfort level (energy-aware timing)."""
        ol = adm.outlook
        if ol is None or q.priority >= URGENT_PRIORITY or not ol.eclipses:
            return None
        start, end = ol.eclipses[0]
        if start > now:
            return None
        if q.deadline is not None and end + 1.2 * lat > q.deadline:
            return None
        comfort = ol.floor_wh + COMFORT_SHARE * (ol.capacity_wh - ol.floor_wh)
        if ol.battery_wh - energy_j / 3600.0 / ol.eta_d >= comfort:
            return None
        return f"energy: waiting for sunlight (eclipse ends in {end - now:.0f} s)"

    @staticmethod
    def _refusal(refused: tuple[str, ModeSpec, float] | None, adm: Admission) -> str:
        """Why no mode may run (worded only when needed: dispatch tries often)."""
        if refused is None:
            return "no power mode available"
        kind, m, amount = refused
        if kind == "energy":
            return (f"energy: needs {amount / 3600.0:.3f} Wh at mode {m.name}, "
                    f"only {max(adm.margin_wh, 0.0):.3f} Wh above the floor through next eclipse")
        return (f"thermal: {adm.temperature_c:.1f} C + {amount:.1f} K would pass max "
                f"{adm.max_c:.1f} C at mode {m.name}")

    def next(self, now: float, adm: Admission) -> Decision | list[Queued]:
        """The next job to run, or the list of jobs now deferred (each with ``deferred`` set).

        Jobs are tried in queue order; a job that does not fit the budget is deferred and
        the next one is tried (a smaller job may fit where a big one does not).
        """
        deferred: list[Queued] = []
        busy = len(self._by_id) > 1
        gate = adm.gate
        for k, (_, q) in enumerate(self._order):
            q.until = math.inf
            held = gate(q) if gate is not None else None
            got = held if held is not None else self.choose_mode(q, now, adm, busy=busy)
            if isinstance(got, str):
                q.deferred = got
                deferred.append(q)
                continue
            m, lat, e, late = got
            del self._by_id[q.job_id]
            del self._order[k]  # the loop ends here: deleting under it is safe
            q.deferred = None
            return Decision(job=q, mode=m, latency_s=lat, energy_j=e, late=late)
        return deferred
