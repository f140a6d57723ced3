"""The node core: every onboard decision of one satellite, with no I/O and no clock.

The sans-I/O shape of h11 and wsproto: a synchronous object that takes events (a job was
accepted, time advanced to ``now`` with this temperature and margin, the running job
finished, a telecommand arrived) and returns effects (start this run, stop that one, tell
the ground this job moved, fail that job with this reason, the node's status changed). It
never publishes, sleeps or reads a clock: ``now`` and the physics readings are passed in.

Two drivers carry its effects out and decide nothing themselves:

* :class:`flightsw.node.service.Node`, the asyncio node over MQTT with real inference;
* :class:`flightsw.sim.engine.Simulation`, thousands of nodes on virtual time.

Pre-emption (issue #12): a job of :data:`URGENT_PRIORITY` or more that would miss its
deadline waiting for a lower-priority run suspends that run at an item boundary
(:mod:`flightsw.node.checkpoint`); the suspended job goes back to the queue with the items it
finished and resumes later, here or on a peer. The same suspension is the energy guard: a run
whose remaining energy the battery can no longer pay above the floor is suspended
(:meth:`NodeCore.guard`), so the floor holds whatever the forecast missed. Non-urgent work
leaves a reserve for urgent work (:meth:`NodeCore.reserve_wh`).

Durations are computed as durations (the decision's modelled latency and energy), never as
differences of absolute mission times, whose float64 resolution near 1.8e9 s is ~2.4e-7 s.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from flightsw.node.checkpoint import RESUME_S, SUSPEND_S, checkpoint
from flightsw.node.effects import (
    Effect,
    Failed,
    JobNote,
    Run,
    Started,
    StatusChanged,
    Stopped,
    Suspended,
)
from flightsw.node.lifetime import FAILED_REASON, MANOEUVRE_REASON, NodeLifetime
from flightsw.node.limits import limit_flags
from flightsw.node.outlook import Outlook
from flightsw.node.scheduler import URGENT_PRIORITY, Admission, OnboardScheduler, Queued
from flightsw.node.spec import NodeSpec

__all__ = ["MAX_SUSPENSIONS", "PRIORITIES", "RESERVE_WINDOW_S", "RETRY_S", "NodeCore"]

RETRY_S = 60.0  # an idle node with deferred work tries again at least this often
PRIORITIES = 10
MAX_SUSPENSIONS = 12  # a job is pre-empted at most this often (each costs a resume)
RESERVE_WINDOW_S = 6000.0  # urgent energy accepted over this past window sets the reserve
RESERVE_FACTOR = 1.5  # the reserve covers this many times the urgent energy expected

_EXPIRED = "deadline expired before start"
_NONE: list[Effect] = []  # returned (never mutated) when nothing happens


class NodeCore:
    """One node's decisions (see the module docstring)."""

    __slots__ = (
        "_by_prio",
        "_queued_s",
        "busy_until",
        "deferred",
        "energy_used_j",
        "forced_mode",
        "jobs_done",
        "jobs_failed",
        "lifetime",
        "max_queue",
        "migrations_in",
        "migrations_out",
        "mode",
        "name",
        "need_wh",
        "overload_backlog_s",
        "paused",
        "preemptions",
        "retry_at",
        "run",
        "safe_auto",
        "safe_manual",
        "sched",
        "spec",
        "throttled",
        "token",
        "typical_vps",
        "urgent_seen",
        "value_gate",
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
        self.retry_at = -math.inf  # when dispatch looks at the deferred queue again anyway
        self._queued_s: float | None = None
        self._by_prio: tuple[float, ...] | None = None
        self.preemptions = 0  # runs suspended (pre-empted or stopped by the energy guard)
        self.urgent_seen: deque[tuple[float, float]] = deque()  # (accepted at, Wh) of urgent
        self.busy_until = -math.inf  # a suspension's checkpoint is written until then
        # a policy's own rule for running a job now (Equinox: value beats the barrier cost):
        # (value/s, typical value/s, soc, temperature, throttle) -> run it?
        self.value_gate: Callable[[float, float, float, float, float], bool] | None = None
        self.typical_vps = 0.0  # running mean of accepted jobs' value per second of work
        # lifetime events (flightsw.node.lifetime): a manoeuvre pauses compute, a lost
        # accelerator halts it for good; None: no events drawn for this node
        self.lifetime: NodeLifetime | None = None

    # -- state read by drivers ----------------------------------------------------------
    @property
    def safe_mode(self) -> bool:
        lt = self.lifetime
        return (self.safe_manual or self.safe_auto is not None
                or (lt is not None and lt.failed))

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

    def reserve_wh(self, now: float, outlook: Outlook | None) -> float:
        """Margin non-urgent work leaves for urgent work: ``RESERVE_FACTOR`` times the urgent
        energy this node accepted per second over the last ``RESERVE_WINDOW_S``, for the dark
        seconds left before the end of the next eclipse (sunlight pays urgent work then),
        and at least the largest urgent job seen. It rises as an eclipse nears its start
        only in that it stops being paid by the sun; it falls through the eclipse."""
        seen = self.urgent_seen
        while seen and seen[0][0] < now - RESERVE_WINDOW_S:
            seen.popleft()
        if not seen or outlook is None:
            return 0.0
        until = outlook.covered_until()
        dark = sum(max(0.0, min(e, until) - max(s, now)) for s, e in outlook.eclipses
                   if s < until)
        total = sum(wh for _, wh in seen)
        rate = total / RESERVE_WINDOW_S
        biggest = max(wh for _, wh in seen)
        return max(biggest, RESERVE_FACTOR * rate * dark) / outlook.eta_d

    def admission(self, temp_c: float, margin_wh: float, now: float = 0.0,
                  outlook: Outlook | None = None) -> Admission:
        th = self.spec.profile.thermal
        cap = self.spec.modes[0].watts if self.throttled else self.spec.modes[-1].watts
        allowed, reason = True, None
        if self.paused:
            allowed, reason = False, "compute paused by telecommand"
        elif self.lifetime is not None and self.lifetime.halt is not None:
            allowed, reason = False, self.lifetime.halt
        elif self.safe_mode:
            allowed, reason = False, f"safe mode ({self.safe_auto or 'commanded'})"
        elif temp_c >= th.max_c:
            allowed, reason = False, f"thermal: {temp_c:.1f} C at or above max {th.max_c:.1f} C"
        return Admission(margin_wh, temp_c, th.max_c, th.heat_capacity_j_per_k, cap,
                         self.forced_mode, allowed, reason, outlook,
                         self.reserve_wh(now, outlook), self.spec.profile.compute.idle_w,
                         self._gate(temp_c, outlook))

    def _gate(self, temp_c: float, outlook: Outlook | None
              ) -> Callable[[Queued], str | None] | None:
        """The policy's run rule as the scheduler asks it (``None``: no such rule)."""
        vg = self.value_gate
        if vg is None or outlook is None:
            return None
        soc = outlook.battery_wh / outlook.capacity_wh
        typical, throttle_c = self.typical_vps, self.spec.profile.thermal.throttle_c
        seconds = self.spec.seconds

        def gate(q: Queued) -> str | None:
            vps = q.value / max(seconds(q.work), 1e-9)
            if vg(vps, typical, soc, temp_c, throttle_c):
                return None
            return f"value {vps:.4f}/s below the node's barrier cost at {soc:.0%} charge"
        return gate

    # -- events -------------------------------------------------------------------------
    def accept(self, q: Queued, now: float) -> list[Effect]:
        """Queue a job (from the ground, a peer or a sensor); shed under overload."""
        q.accepted_at = now
        self.sched.push(q)
        self._touch()
        vps = q.value / max(self.spec.seconds(q.work), 1e-9)
        self.typical_vps = vps if self.typical_vps == 0.0 else 0.98 * self.typical_vps + 0.02 * vps
        pre: list[Effect] = _NONE
        if q.priority >= URGENT_PRIORITY:
            f = self.spec.fastest
            self.urgent_seen.append((now, f.watts * q.work.latency_s(f, self.spec.bandwidth_bps)
                                     / 3600.0))
            if self.should_preempt(q, now):
                pre = self.suspend(now, f"pre-empted by {q.job_id} (priority {q.priority})")
        if self.queued_s() <= self.overload_backlog_s and len(self.sched) <= self.max_queue:
            return pre
        out: list[Effect] = list(pre)
        for victim in self.sched.shed(self.overload_backlog_s, self.max_queue):
            out.append(JobNote(victim, "shed", "overload"))
            out.append(self._fail(victim, "shed: overload (queued work above "
                                  f"{self.overload_backlog_s:.0f} s); lowest value per "
                                  "second of work goes first"))
        self._touch()
        return out

    def dispatch(self, now: float, temp_c: float, margin_wh: float,
                 outlook: Outlook | None = None) -> list[Effect]:
        """If idle, start the next job the budget allows; fail what expired meanwhile.
        ``outlook``: the node's eclipse timeline (admits jobs that run past the next
        eclipse, sets the urgent reserve and the wait for sunlight); without it jobs past
        the next eclipse are admitted on the margin alone."""
        if self.run is not None:
            return _NONE
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
        adm = self.admission(temp_c, margin_wh, now, outlook)
        got = sched.next(now, adm)
        if isinstance(got, list):
            self._wake_rule(got, now, adm)
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
        start = max(now, self.busy_until)
        run = self.run = Run(got.job, got, start, start + got.latency_s, self.token)
        if got.job.first_start is None:
            got.job.first_start = start
        self.mode = got.mode.name
        if out is _NONE:
            return [Started(run)]
        out.append(Started(run))
        return out

    def _wake_rule(self, deferred: list[Queued], now: float, adm: Admission) -> None:
        """When to look at a deferred queue again: once the margin reaches what its cheapest
        job needs, or ``RETRY_S`` after this look, or when the eclipse a job waits out for
        sunlight ends if sooner. A margin that grows does not end a wait for sunlight (in
        eclipse the battery only drains), so such a job sets no margin to wait for: before,
        every step looked again at a node whose whole queue waited for the sun."""
        need, retry = math.inf, now + RETRY_S
        cheapest = self.spec.cheapest_wh
        for q in deferred:
            if q.until < math.inf:
                retry = min(retry, q.until)
                continue
            if adm.compute_allowed:
                need = min(need, cheapest(q.work, adm.mode_cap_w))
        self.need_wh, self.retry_at = need, retry

    def waiting(self) -> bool:
        """Idle with work queued (deferred by the budget, or not yet looked at)."""
        return self.run is None and len(self.sched) > 0

    def due(self, now: float, margin_wh: float) -> bool:
        """A waiting node looks at its queue again when the margin has grown to what its
        cheapest deferred job needs, or at ``retry_at`` (:meth:`_wake_rule`; a step's twin
        of this rule, vectorised, is the simulator's)."""
        return margin_wh >= self.need_wh or now >= self.retry_at

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

    def should_preempt(self, q: Queued, now: float) -> bool:
        """Suspend the running job for urgent ``q``: ``q`` outranks it, would miss its
        deadline waiting for it, can still make it after the suspension, and the run has an
        item boundary left (and has not been suspended too often already)."""
        r = self.run
        if r is None or q.deadline is None or q.priority <= r.q.priority:
            return False
        if r.q.suspensions >= MAX_SUSPENSIONS or r.q.items - r.q.done <= 1:
            return False
        lat = q.work.latency_s(self.spec.fastest, self.spec.bandwidth_bps) + q.overhead_s
        ahead = sum(self.work_by_priority()[q.priority:]) - lat  # same or higher, queued
        wait = max(0.0, r.end - now) + max(0.0, ahead)
        if now + wait + lat <= q.deadline:
            return False
        return now + SUSPEND_S + max(0.0, ahead) + lat <= q.deadline

    def suspend(self, now: float, reason: str) -> list[Effect]:
        """Suspend the running job at an item boundary (``[]`` if it has none left): it goes
        back to the queue with its items done, and pays ``RESUME_S`` when it runs again."""
        r = self.run
        if r is None:
            return _NONE
        cp = checkpoint(r, now)
        if cp is None:
            return _NONE
        self.run = None
        self.token += 1
        self.preemptions += 1
        self.busy_until = now + SUSPEND_S
        self.energy_used_j += cp.spent_j
        q = r.q
        q.done = cp.done
        q.work = q.work.share(cp.left_frac)
        q.overhead_s = RESUME_S
        q.spent_j += cp.spent_j
        q.suspensions += 1
        self.sched.push(q)
        self._touch()
        return [Suspended(r, reason, cp.done, cp.spent_j),
                JobNote(q, "suspended", f"{reason}; {cp.done}/{q.items} items done")]

    def guard(self, now: float, margin_wh: float, outlook: Outlook | None = None
              ) -> list[Effect]:
        """The energy guard: suspend the running job if the battery can no longer pay its
        rest above the floor, or the bus alone now loses energy over an orbit (as admission
        refuses). ``margin_wh`` is the node's margin now (its run's energy so far
        already paid); the rest is charged at once, as admission did, or walked through the
        eclipse timeline when ``outlook`` is given and the run ends past the next eclipse."""
        r = self.run
        if r is None:
            return _NONE
        rest = max(0.0, r.end - max(now, r.start))
        eta_d = self.spec.profile.bus.discharge_efficiency
        need = r.d.mode.watts * rest / 3600.0 / eta_d
        deficit = outlook is not None and outlook.deficit
        if need <= margin_wh and not deficit:
            return _NONE
        if (outlook is not None and not deficit and now + rest > outlook.covered_until()
                and outlook.lowest_wh(r.d.mode.watts, rest) >= 0.0):
            return _NONE
        return self.suspend(now, "energy guard: the battery cannot pay the rest of the run "
                                 "above the floor")

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
        self.retry_at = -math.inf
        self.urgent_seen.clear()
        self.busy_until = -math.inf

    def lifetime_step(self, now: float) -> list[Effect]:
        """Apply the lifetime events due by ``now`` (:mod:`flightsw.node.lifetime`): a lost
        accelerator stops the run and drops the queue for good, as a crash without restart
        (the ground re-runs what the node held when its leases lapse); a manoeuvre stops
        the run and queues it again, as the ``pause`` telecommand does."""
        lt = self.lifetime
        if lt is None:
            return _NONE
        ch = lt.advance(now)
        if ch.failed:
            out = list(self.stop(now, FAILED_REASON, requeue=False))
            self.crash()
            out.append(StatusChanged("safe"))
            return out
        if ch.began:
            return self.stop(now, MANOEUVRE_REASON, requeue=True)
        return _NONE

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
            if self.lifetime is not None and self.lifetime.failed:
                return False, f"cannot leave safe mode: {FAILED_REASON}", {}, out
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
