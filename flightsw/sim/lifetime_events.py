"""Lifetime events of a per-job simulation: accelerators lost for good, and debris
collision-avoidance manoeuvres, drawn from each profile's ``[lifetime]`` figures.

With ``lifetime_events = true`` in a scenario, every node whose profile has a
``[lifetime]`` section may, within the run:

* **lose its accelerator** (all of them: a node's compute is one unit here): the chance is
  that of a failure between ``mission_year`` and the end of the run under the profile's
  survival law (constant random hazard times the Weibull dose hazard,
  :func:`flightsw.node.aging.survival`); the time is drawn within the run in proportion to
  that law. The node then stops for good, as a crash without restart: its leases lapse
  and its jobs run elsewhere;
* **manoeuvre**: a Poisson process at ``manoeuvres_per_year``, each manoeuvre pausing
  compute for ``manoeuvre_pause_s`` (the running job stops, the queue waits), as an
  operator's ``pause`` and ``resume`` telecommands do on an emulated node.

Draws use their own seeded generator, so a scenario repeats exactly and switching the
events on changes nothing else of a run.
"""

from __future__ import annotations

import numpy as np

from flightsw.node.aging import dose_rate_rad_per_year, survival
from hardware_profiles import HardwareProfile

__all__ = ["LifetimeDraw", "draw_lifetime_events"]

_YEAR_S = 365.25 * 86_400.0


class LifetimeDraw:
    """The drawn events: per node, the failure time (absolute mission time, or None) and
    the manoeuvres as (start, end) pairs."""

    def __init__(self) -> None:
        self.failures: dict[int, float] = {}
        self.manoeuvres: dict[int, list[tuple[float, float]]] = {}

    @property
    def count(self) -> int:
        return len(self.failures) + sum(len(v) for v in self.manoeuvres.values())


def _alive(profile: HardwareProfile, years: np.ndarray) -> np.ndarray:
    life = profile.lifetime
    assert life is not None
    dose = dose_rate_rad_per_year(life) * years
    return np.asarray(survival(life, years, dose))


def draw_lifetime_events(
    profiles: list[HardwareProfile],
    t0: float,
    duration_s: float,
    mission_year: float,
    rng: np.random.Generator,
) -> LifetimeDraw:
    """Draw the lifetime events of ``profiles`` (one per node) over the run."""
    out = LifetimeDraw()
    years = mission_year + np.linspace(0.0, duration_s / _YEAR_S, 65)
    for i, prof in enumerate(profiles):
        life = prof.lifetime
        # one draw of each kind per node whatever the profile, so a node's events do not
        # depend on which other nodes have a [lifetime] section
        u_fail, u_when = rng.random(2)
        n_man = rng.poisson(0.0 if life is None else
                            life.manoeuvres_per_year * duration_s / _YEAR_S)
        starts = np.sort(rng.random(n_man)) * duration_s
        if life is None:
            continue
        alive = _alive(prof, years)
        p_fail = 1.0 - alive[-1] / alive[0] if alive[0] > 0 else 1.0
        if u_fail < p_fail:
            # invert the conditional failure CDF on the grid (linear between points)
            cdf = (alive[0] - alive) / (alive[0] - alive[-1])
            frac = float(np.interp(u_when, cdf, np.linspace(0.0, 1.0, len(years))))
            out.failures[i] = t0 + frac * duration_s
        if n_man:
            out.manoeuvres[i] = [
                (t0 + float(s), t0 + float(s) + life.manoeuvre_pause_s) for s in starts
            ]
    return out
