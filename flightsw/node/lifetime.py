"""Lifetime events of a node: its accelerator lost for good, and debris collision-avoidance
manoeuvres, drawn from its profile's ``[lifetime]`` figures and applied by the node core.

Why it exists: ageing figures (:mod:`flightsw.node.aging`) say how likely a failure or a
manoeuvre is; a per-job run or an emulated node needs them as events at times. The draw
(:func:`draw_lifetime_events`) gives, per node:

* a **failure time**, or none: the chance is that of a failure between ``mission_year`` and
  the end of the span under the profile's survival law (constant random hazard times the
  Weibull dose hazard, :func:`flightsw.node.aging.survival`), the time drawn by inverting
  that law (bisection on its cumulative hazard: the law may fall steeply within the span,
  and late in a wear-out the survival itself underflows). A node's compute is one
  unit here: the failure takes all its accelerators. The node then stops for good, as a
  crash without restart;
* **manoeuvres**: a Poisson process at ``manoeuvres_per_year``, each a window of
  ``manoeuvre_pause_s`` in which compute is paused (the running job stops and is queued
  again, as the ``pause`` telecommand does) and the thruster draws ``propulsion_w``.

:class:`NodeLifetime` is the state the node core consults (``NodeCore.lifetime``): which
window is open, whether the node has failed, what a step of time owes in propulsion
energy. Both drivers use it: the simulator steps it at the exact event times, the emulated
node at each physics step. Draws use their own seeded generator, so switching the events
on changes nothing else of a run.
"""

from __future__ import annotations

import bisect
from typing import NamedTuple

import numpy as np

from flightsw.exceptions import ConfigError
from flightsw.node.aging import SECONDS_PER_YEAR, cumulative_hazard, dose_rate_rad_per_year
from hardware_profiles.schema import HardwareProfile, Lifetime

__all__ = [
    "FAILED_REASON",
    "MANOEUVRE_REASON",
    "Change",
    "LifetimeDraw",
    "LifetimeSchedule",
    "NodeLifetime",
    "draw_lifetime_events",
    "node_schedule",
    "schedule_of",
]

FAILED_REASON = "accelerator lost (permanent failure)"
MANOEUVRE_REASON = "debris collision-avoidance manoeuvre: compute paused"
_BISECT = 60  # halvings of the span when inverting the survival law (exact to float64)


class LifetimeDraw:
    """The drawn events of N nodes: per node index, the failure time (absolute mission
    time) and the manoeuvres as (start, end) pairs; nodes without events are absent."""

    def __init__(self) -> None:
        self.failures: dict[int, float] = {}
        self.manoeuvres: dict[int, list[tuple[float, float]]] = {}

    @property
    def count(self) -> int:
        return len(self.failures) + sum(len(v) for v in self.manoeuvres.values())


def _hazard(life: Lifetime, years: float) -> float:
    """Cumulative hazard of the survival law at ``years`` since launch (dose since launch)."""
    return float(cumulative_hazard(life, years, dose_rate_rad_per_year(life) * years))


def _failure_year(life: Lifetime, y0: float, y1: float, u: float) -> float:
    """The year in [y0, y1] at which the failure CDF conditional on being alive at ``y0``
    and failing by ``y1`` reaches ``u`` (bisection on the cumulative hazard, which rises)."""
    h0, h1 = _hazard(life, y0), _hazard(life, y1)
    # conditional CDF: (1 - exp(-(H - h0))) / (1 - exp(-(h1 - h0))) = u
    target = h0 - float(np.log1p(-u * -np.expm1(-(h1 - h0))))
    lo, hi = y0, y1
    for _ in range(_BISECT):
        mid = 0.5 * (lo + hi)
        if _hazard(life, mid) < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def draw_lifetime_events(
    profiles: list[HardwareProfile],
    t0: float,
    duration_s: float,
    mission_year: float,
    rng: np.random.Generator,
) -> LifetimeDraw:
    """Draw the lifetime events of ``profiles`` (one per node) over ``[t0, t0 + duration_s]``,
    the first instant being ``mission_year`` years after launch."""
    if not duration_s > 0:
        raise ConfigError(f"duration_s: must be > 0, got {duration_s!r}")
    if not mission_year >= 0:
        raise ConfigError(f"mission_year: must be >= 0, got {mission_year!r}")
    out = LifetimeDraw()
    y0, y1 = mission_year, mission_year + duration_s / SECONDS_PER_YEAR
    for i, prof in enumerate(profiles):
        life = prof.lifetime
        # one draw of each kind per node whatever the profile, so a node's events do not
        # depend on which other nodes have a [lifetime] section
        u_fail, u_when = rng.random(2)
        n_man = rng.poisson(0.0 if life is None else
                            life.manoeuvres_per_year * duration_s / SECONDS_PER_YEAR)
        starts = np.sort(rng.random(n_man)) * duration_s
        if life is None:
            continue
        p_fail = -float(np.expm1(-(_hazard(life, y1) - _hazard(life, y0))))
        if u_fail < p_fail:
            year = _failure_year(life, y0, y1, float(u_when))
            frac = min(1.0, max(0.0, (year - y0) / (y1 - y0)))
            out.failures[i] = t0 + frac * duration_s
        if n_man:
            out.manoeuvres[i] = [
                (t0 + float(s), t0 + float(s) + life.manoeuvre_pause_s) for s in starts
            ]
    return out


class LifetimeSchedule(NamedTuple):
    """One node's drawn events and the figures applying them needs."""

    failure_at: float | None  # absolute mission time, or no failure
    manoeuvres: tuple[tuple[float, float], ...]  # (start, end), sorted by start
    propulsion_w: float  # drawn while a manoeuvre lasts
    accelerators: int  # lost together when the node fails


def schedule_of(draw: LifetimeDraw, i: int, profile: HardwareProfile) -> LifetimeSchedule | None:
    """Node ``i``'s schedule in ``draw`` (``None``: it has no events)."""
    fail = draw.failures.get(i)
    man = draw.manoeuvres.get(i, [])
    life = profile.lifetime
    if life is None or (fail is None and not man):
        return None
    return LifetimeSchedule(fail, tuple(man), life.propulsion_w, life.accelerators)


def node_schedule(profile: HardwareProfile, t0: float, mission_year: float,
                  seed: int) -> LifetimeSchedule:
    """An emulated node's events from ``t0`` on: drawn as for one node of a per-job run,
    over the rest of its design life after ``mission_year`` (a year if it is past it)."""
    life = profile.lifetime
    if life is None:
        raise ConfigError(f"lifetime events: profile {profile.name!r} has no [lifetime] "
                          "section")
    left = life.design_life_years - mission_year
    years = left if left > 0 else 1.0
    draw = draw_lifetime_events([profile], t0, years * SECONDS_PER_YEAR, mission_year,
                                np.random.default_rng([seed, 17]))
    got = schedule_of(draw, 0, profile)
    return got if got is not None else LifetimeSchedule(None, (), life.propulsion_w,
                                                         life.accelerators)


class Change(NamedTuple):
    """What :meth:`NodeLifetime.advance` found due."""

    failed: bool  # the node failed just now
    began: bool  # a manoeuvre began (compute must stop)
    ended: bool  # the manoeuvre in progress ended (compute may resume)


_NO_CHANGE = Change(False, False, False)


class NodeLifetime:
    """The lifetime state of one node: the core reads ``halt`` and ``failed``, a driver
    calls :meth:`advance` at event times or each step, and books :meth:`propulsion_j`."""

    __slots__ = ("_longest", "_next", "failed", "flown", "propulsion_drawn_j", "schedule",
                 "window")

    def __init__(self, schedule: LifetimeSchedule) -> None:
        self.schedule = schedule
        self.failed = False
        self.window: tuple[float, float] | None = None  # the manoeuvre in progress
        self.flown = 0  # manoeuvres begun before any failure
        self.propulsion_drawn_j = 0.0  # booked by the driver through propulsion_j
        self._next = 0  # index of the next manoeuvre to begin
        self._longest = max((b - a for a, b in schedule.manoeuvres), default=0.0)

    @property
    def halt(self) -> str | None:
        """Why compute may not run now (``None``: it may)."""
        if self.failed:
            return FAILED_REASON
        if self.window is not None:
            return MANOEUVRE_REASON
        return None

    def times(self) -> list[float]:
        """Every instant at which :meth:`advance` may find a change (for event drivers)."""
        s = self.schedule
        out = [t for w in s.manoeuvres for t in w]
        if s.failure_at is not None:
            out.append(s.failure_at)
        return sorted(out)

    def advance(self, now: float) -> Change:
        """Apply what is due by ``now``: the failure, the end of the open window, the start
        of the next (a window wholly passed since the last call counts as flown)."""
        if self.failed:
            return _NO_CHANGE
        s = self.schedule
        if s.failure_at is not None and now >= s.failure_at:
            self.failed = True
            self.window = None
            return Change(True, False, False)
        began = ended = False
        w = self.window
        if w is not None and now >= w[1]:
            self.window, ended = None, True
        man = s.manoeuvres
        while self._next < len(man) and man[self._next][0] <= now:
            w = man[self._next]
            self._next += 1
            self.flown += 1
            began = True
            if now < w[1]:
                cur = self.window  # one begun while another lasts extends the pause
                self.window = w if cur is None else (cur[0], max(cur[1], w[1]))
            else:
                ended = True
        return _NO_CHANGE if not (began or ended) else Change(False, began, ended)

    def _stop_at(self) -> float:
        f = self.schedule.failure_at
        return np.inf if f is None else f

    def propulsion_j(self, t0: float, t1: float) -> float:
        """Propulsion energy of the windows within ``(t0, t1]`` (none after a failure)."""
        s = self.schedule
        if s.propulsion_w <= 0.0 or t1 <= t0:
            return 0.0
        man = s.manoeuvres
        end = min(t1, self._stop_at())
        k = bisect.bisect_left(man, (t0 - self._longest, -np.inf))  # first that may overlap
        return s.propulsion_w * _covered(man, k, t0, end)

    def paused_s(self, until: float) -> float:
        """Seconds of compute paused by manoeuvres from the start to ``until`` (windows
        clipped at ``until`` and at the failure)."""
        return _covered(self.schedule.manoeuvres, 0, -np.inf, min(until, self._stop_at()))


def _covered(windows: tuple[tuple[float, float], ...], k: int, t0: float, t1: float) -> float:
    """Seconds of ``(t0, t1]`` inside the union of ``windows[k:]`` (sorted by start), so
    that overlapping manoeuvres pause compute and fire the thruster once."""
    secs, cursor = 0.0, t0
    while k < len(windows) and windows[k][0] < t1:
        a, b = windows[k]
        top = min(b, t1)
        secs += max(0.0, top - max(a, cursor))
        cursor = max(cursor, top)
        k += 1
    return secs
