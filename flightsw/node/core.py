"""The node core: every onboard decision of one satellite, with no I/O and no clock.

The sans-I/O shape of h11 and wsproto: a synchronous object that takes events (a job was
accepted, time advanced to ``now`` with this temperature and margin, the running job
finished, a telecommand arrived) and returns effects (start this run, stop that one, tell
the ground this job moved, fail that job with this reason, the node's status changed). It
never publishes, sleeps or reads a clock: ``now`` and the physics readings are passed in.

Two drivers carry its effects out and decide nothing themselves:

* :class:`flightsw.node.service.Node`, the asyncio node over MQTT with real inference;
* :class:`flightsw.sim.engine.Simulation`, thousands of nodes on virtual time.

Durations are computed as durations (the decision's modelled latency and energy), never as
differences of absolute mission times, whose float64 resolution near 1.8e9 s is ~2.4e-7 s.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from flightsw.node.effects import Effect, Failed, JobNote, Run, Started, StatusChanged, Stopped
from flightsw.node.limits import limit_flags
from flightsw.node.scheduler import Admission, OnboardScheduler, Queued
from flightsw.node.spec import NodeSpec

__all__ = ["PRIORITIES", "RETRY_S", "NodeCore"]

RETRY_S = 60.0  # an idle node with deferred work tries again at least this often
PRIORITIES = 10

_EXPIRED = "deadline expired before start"
_NONE: list[Effect] = []  # returned (never mutated) when nothing happens


class NodeCore:
    """One node's decisions (see the module docstring)."""

    __slots__ = (
        "_by_prio",
        "_queued_s",
        "deferred",
        "energy_used_j",
        "forced_mode",
        "jobs_done",
        "jobs_failed",
        "last_try",
        "max_queue",
        "migrations_in",
        "migrations_out",
        "mode",
        "name",
        "need_wh",
        "overload_backlog_s",
        "paused",
        "run",
        "safe_auto",
        "safe_manual",
        "sched",
        "spec",
        "throttled",
        "token",
    )

    def __init__(self, name: str, spec: NodeSpec, *, overload_backlog_s: float = 1800.0,
                 max_queue: int = 10_000) -> None:
        self.name = name
        self.spec = spec
        self.overload_backlog_s = overload_backlog_s
        self.max_queue = max_queue
        self.sched = OnboardScheduler(list(spec.modes), spec.bandwidth_bps)
        self.run: Run | None = None
        self.mode = spec.profile.compute.default_mode
        self.throttled = False
        self.safe_auto: str | None = None
        self.safe_manual = False
        self.paused = False
        self.forced_mode: str | None = None
        self.token = 0
        self.jobs_done = 0
        self.jobs_failed = 0
        self.energy_used_j = 0.0
        self.migrations_in = 0
        self.migrations_out = 0
        self.deferred: dict[str, str] = {}  # job -> last reason told to the ground
        self.need_wh = math.inf  # energy the cheapest deferred job waits for
        self.last_try = -math.inf  # when dispatch last looked at the queue
        self._queued_s: float | None = None
        self._by_prio: tuple[float, ...] | None = None

    # -- state read by drivers ----------------------------------------------------------
    @property
    def safe_mode(self) -> bool:
        return self.safe_manual or self.safe_auto is not None

    def _touch(self) -> None:
        self._queued_s = None
        self._by_prio = None

    def _queue_work(self) -> None:
        fastest, bandwidth = self.spec.fastest, self.spec.bandwidth_bps
        acc = [0.0] * PRIORITIES
        for q in self.sched.values():
            acc[q.priority] += q.work.latency_s(fastest, bandwidth)
        self._by_prio = tuple(acc)
        self._queued_s = sum(acc)

    def work_by_priority(self) -> tuple[float, ...]:
        """Queued seconds of work (fastest mode) per priority 0..9 (cached)."""
        if self._by_prio is None:
            self._queue_work()
        assert self._by_prio is not None
        return self._by_prio

    def queued_s(self) -> float:
        """Queued seconds of work at the fastest mode (cached until the queue changes)."""
        if self._queued_s is None:
            self._queue_work()
        assert self._queued_s is not None
        return self._queued_s

    def running_s(self, now: float) -> float:
        """Seconds the running job still needs."""
        r = self.run
        return 0.0 if r is None else max(0.0, r.end - now)

    def backlog_s(self, now: float) -> float:
        """Seconds of work ahead of a new job: the running job's rest and the queue."""
        r = self.run
        q = self._queued_s
        if q is None:
            q = self.queued_s()
        return q if r is None else max(0.0, r.end - now) + q

    def leases(self) -> dict[str, int]:
        """Jobs this node holds, with their epochs (its heartbeat renews them)."""
        out = {q.job_id: q.epoch for q in self.sched}
        if self.run is not None:
            out[self.run.q.job_id] = self.run.q.epoch
        return out

    def admission(self, temp_c: float, margin_wh: float) -> Admission:
        th = self.spec.profile.thermal
        cap = self.spec.modes[0].watts if self.throttled else self.spec.modes[-1].watts
        allowed, reason = True, None
        if self.paused:
            allowed, reason = False, "compute paused by telecommand"
        elif self.safe_mode:
            allowed, reason = False, f"safe mode ({self.safe_auto or 'commanded'})"
        elif temp_c >= th.max_c:
            allowed, reason = False, f"thermal: {temp_c:.1f} C at or above max {th.max_c:.1f} C"
        return Admission(margin_wh, temp_c, th.max_c, th.heat_capacity_j_per_k, cap,
                         self.forced_mode, allowed, reason)

    # -- events -------------------------------------------------------------------------
    def accept(self, q: Queued, now: float) -> list[Effect]:
        """Queue a job (from the ground, a peer or a sensor); shed under overload."""
        q.accepted_at = now
        self.sched.push(q)
        self._touch()
        if self.queued_s() <= self.overload_backlog_s and len(self.sched) <= self.max_queue:
            return _NONE
        out: list[Effect] = []
        for victim in self.sched.shed(self.overload_backlog_s, self.max_queue):
            out.append(JobNote(victim, "shed", "overload"))
            out.append(self._fail(victim, "shed: overload (queued work above "
                                  f"{self.overload_backlog_s:.0f} s); lowest value per "
                                  "second of work goes first"))
        self._touch()
        return out

    def dispatch(self, now: float, temp_c: float, margin_wh: float) -> list[Effect]:
        """If idle, start the next job the budget allows; fail what expired meanwhile."""
        if self.run is not None:
            return _NONE
        self.last_try = now
        out: list[Effect] = _NONE
        sched = self.sched
        gone = sched.expired(now)
        if gone:
            out = []
            self._touch()
            for q in gone:
                out.append(JobNote(q, "shed", _EXPIRED))
                out.append(self._fail(q, _EXPIRED))
        if not len(sched):
            self.need_wh = math.inf
            return out
        adm = self.admission(temp_c, margin_wh)
        got = sched.next(now, adm)
        if isinstance(got, list):
            self.need_wh = (
                min((self.spec.cheapest_wh(q.work, adm.mode_cap_w) for q in got), default=math.inf)
                if adm.compute_allowed
                else math.inf
            )
            told = self.deferred
            for q in got:
                if q.deferred is not None and told.get(q.job_id) != q.deferred:
                    told[q.job_id] = q.deferred
                    if out is _NONE:
                        out = []
                    out.append(JobNote(q, "deferred", q.deferred))
            return out
        self.need_wh = math.inf
        self.deferred.pop(got.job.job_id, None)
        self._touch()
        self.token += 1
        run = self.run = Run(got.job, got, now, now + got.latency_s, self.token)
        self.mode = got.mode.name
        if out is _NONE:
            return [Started(run)]
        out.append(Started(run))
        return out

    def waiting(self) -> bool:
        """Idle with work queued (deferred by the budget, or not yet looked at)."""
        return self.run is None and len(self.sched) > 0

    def due(self, now: float, margin_wh: float) -> bool:
        """A waiting node looks at its queue again when the margin has grown to what its
        cheapest deferred job needs, or ``RETRY_S`` after it last looked (a step's twin
        of this rule, vectorised, is the simulator's)."""
        return margin_wh >= self.need_wh or now - self.last_try >= RETRY_S

    def finish(self, token: int) -> Run | None:
        """The run of ``token`` completed; ``None`` if that run was stopped meanwhile."""
        r = self.run
        if r is None or r.token != token:
            return None
        self.run = None
        self.jobs_done += 1
        self.energy_used_j += r.d.energy_j
        return r

    def abort(self, token: int) -> Run | None:
        """The run of ``token`` failed while executing (its energy was spent)."""
        r = self.finish(token)
        if r is not None:
            self.jobs_done -= 1
            self.jobs_failed += 1
        return r

    def stop(self, now: float, reason: str, *, requeue: bool) -> list[Effect]:
        """Stop the running job (safe mode, throttle, command, crash)."""
        r = self.run
        if r is None:
            return _NONE
        self.run = None
        self.token += 1
        spent = min(max(0.0, now - r.start) * r.d.mode.watts, r.d.energy_j)
        self.energy_used_j += spent
        out: list[Effect] = [Stopped(r, reason, requeue, spent)]
        if requeue:
            self.sched.push(r.q)
            self._touch()
            out.append(JobNote(r.q, "queued", reason))
        return out

    def limits(self, now: float, temp_c: float, soc: float) -> tuple[bool, list[Effect]]:
        """Apply the thermal and battery limits (:func:`limit_flags`) to this node: whether
        a limit changed, and what follows."""
        p = self.spec.profile
        f = limit_flags(np.array([temp_c]), np.array([soc]), np.array([self.throttled]),
                        np.array([self.safe_auto is not None]), np.array([p.thermal.throttle_c]),
                        np.array([p.thermal.max_c]), np.array([p.bus.dod_floor]))
        flags = (bool(f.throttle_on[0]), bool(f.throttle_off[0]), bool(f.safe_on[0]),
                 bool(f.safe_off[0]))
        if not any(flags):
            return False, _NONE
        return True, self.apply_limits(now, temp_c, soc, *flags)

    def apply_limits(self, now: float, temp_c: float, soc: float, throttle_on: bool,
                     throttle_off: bool, safe_on: bool, safe_off: bool) -> list[Effect]:
        """Act on one row of :func:`limit_flags` (the drivers' shared rule)."""
        out: list[Effect] = []
        was_safe = self.safe_mode
        low = self.spec.modes[0]
        if throttle_on:
            self.throttled = True
            self.mode = low.name
            r = self.run
            if r is not None and r.d.mode.watts > low.watts and self.forced_mode is None:
                out += self.stop(now, "thermal throttle: re-planned at lower mode", requeue=True)
        elif throttle_off:
            self.throttled = False
        if safe_on:
            p = self.spec.profile
            self.safe_auto = (
                f"over-temperature {temp_c:.1f} C" if temp_c >= p.thermal.max_c
                else f"battery {soc:.0%} below floor {p.bus.dod_floor:.0%}"
            )
            out += self.stop(now, f"safe mode: {self.safe_auto}", requeue=True)
        elif safe_off:
            self.safe_auto = None
        if self.safe_mode != was_safe:
            out.append(StatusChanged("safe" if self.safe_mode else "online"))
        return out

    def hand_over(self, job_id: str) -> Queued | None:
        """Give a queued job away: it leaves the queue; the driver sends it with epoch + 1."""
        q = self.sched.remove(job_id)
        if q is None:
            return None
        self._touch()
        self.deferred.pop(job_id, None)
        self.migrations_out += 1
        return q

    def crash(self) -> None:
        """What a crash loses: the queue, the running job, the throttle and safe state."""
        self.sched = OnboardScheduler(list(self.spec.modes), self.spec.bandwidth_bps)
        self._touch()
        self.run = None
        self.token += 1
        self.throttled = False
        self.safe_auto = None
        self.safe_manual = False
        self.paused = False
        self.forced_mode = None
        self.deferred.clear()
        self.need_wh = math.inf

    def _fail(self, q: Queued, reason: str) -> Failed:
        self.jobs_failed += 1
        self.deferred.pop(q.job_id, None)
        return Failed(q, reason)

    # -- telecommands -------------------------------------------------------------------
    def command(self, name: str, args: dict[str, Any], now: float
                ) -> tuple[bool, str | None, dict[str, Any], list[Effect]]:
        """Execute a verified telecommand: (ok, reason, data, effects)."""
        out: list[Effect] = []
        if name == "ping":
            return True, None, {"t": now, "queue_depth": len(self.sched)}, out
        if name == "pause":
            self.paused = True
            return True, None, {}, self.stop(now, "paused by telecommand", requeue=True)
        if name == "resume":
            self.paused = False
            return True, None, {}, out
        if name == "enter_safe":
            was = self.safe_mode
            self.safe_manual = True
            out = list(self.stop(now, "safe mode: compute stopped", requeue=True))
            if not was:
                out.append(StatusChanged("safe"))
            return True, None, {}, out
        if name == "leave_safe":
            self.safe_manual = False
            if self.safe_auto is not None:
                return False, f"cannot leave safe mode: {self.safe_auto}", {}, out
            return True, None, {}, [StatusChanged("online")]
        if name == "set_power_mode":
            mode = args.get("mode")
            valid = [m.name for m in self.spec.modes]
            if mode in (None, "auto"):
                self.forced_mode = None
                return True, None, {"mode": "auto"}, out
            if mode not in valid:
                return False, f"args.mode: {mode!r} is not one of {valid} or 'auto'", {}, out
            self.forced_mode = self.mode = str(mode)
            return True, None, {"mode": mode}, out
        if name == "cancel_job":
            jid = args.get("job_id")
            if not isinstance(jid, str):
                return False, "args.job_id: missing", {}, out
            r = self.run
            if r is not None and r.q.job_id == jid:
                out = list(self.stop(now, "cancelled", requeue=False))
                q = r.q
            else:
                got = self.sched.remove(jid)
                if got is None:
                    return False, f"args.job_id: {jid} is not queued or running here", {}, out
                self._touch()
                q = got
            out.append(JobNote(q, "cancelled", "by telecommand"))
            out.append(self._fail(q, "cancelled by telecommand"))
            return True, None, {}, out
        return False, f"name: unknown command {name!r}", {}, out
