"""The multi-year fluid run: a fleet ages, fails, dodges debris and is replaced.

Why a separate driver: the per-job simulator steps seconds and events; five years of a
thousand satellites at that grain is 10^11 node-steps. Here the step is coarse (a day by
default), every satellite is one row of arrays, jobs are a fluid (the fleet serves
``min(demand, available capacity)`` each step, as a perfectly balanced scheduler would),
and the physics is the orbit average of the project's models (:mod:`.budget`). What ages
comes from :mod:`flightsw.node.aging` and the profile's ``[lifetime]`` figures:

* dose accumulates behind the shielding; each working accelerator fails in a step with the
  probability its survival curve gives (random hazard x dose hazard), sampled from the
  run's seeded generator; failed accelerators are lost for good;
* every eclipse is a battery cycle at the depth of discharge the load needs; damage adds
  up as cycles / cycle life at that depth, and capacity falls by 20 % per unit of damage;
* array power and radiator absorptivity drift with age;
* collision-avoidance manoeuvres arrive as a Poisson process per satellite; each pauses
  compute and draws propulsion power;
* a satellite with no working accelerator, or past its design life, is dead; the policy
  may launch a replacement after a delay.

The output is a time series of fleet totals and a summary (utilisation, availability,
attrition, capacity kept) that the cost model (:mod:`flightsw.economics`) reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flightsw.exceptions import ConfigError
from flightsw.node.aging import (
    SECONDS_PER_YEAR,
    array_power_fraction,
    cycle_life,
    dose_rate_rad_per_year,
    manoeuvre_downtime_fraction,
    manoeuvre_energy_wh,
    radiator_absorptivity,
    survival,
)
from flightsw.physics import beta_angle_deg, dawn_dusk_raan, sun_synchronous_inclination, walker
from flightsw.physics.frames import FloatArray
from flightsw.sim.lifetime.budget import allowance_w, choose_modes, eclipse_fraction_beta
from flightsw.sim.lifetime.scenario import LifetimeScenario
from hardware_profiles import HardwareProfile, load_profile
from hardware_profiles.schema import Lifetime

__all__ = ["LifetimeResult", "LifetimeSeries", "LifetimeSummary", "aged_lifetime", "run_lifetime"]


def aged_lifetime(profile: HardwareProfile, scenario: LifetimeScenario) -> Lifetime:
    """The profile's ``[lifetime]`` with the scenario's ``[aging]`` overrides applied."""
    if profile.lifetime is None:
        raise ConfigError(
            f"profile {profile.name!r} has no [lifetime] section; a lifetime run needs one"
        )
    overrides = {k: v for k, v in scenario.aging.model_dump().items() if v is not None}
    return profile.lifetime.model_copy(update=overrides)


@dataclass
class LifetimeSeries:
    """Fleet totals per step (each list one entry per step; times at the step's start)."""

    t_years: list[float] = field(default_factory=list)
    satellites_alive: list[int] = field(default_factory=list)
    accelerators_alive: list[int] = field(default_factory=list)
    capacity_ops: list[float] = field(default_factory=list)  # available after pauses
    delivered_ops: list[float] = field(default_factory=list)
    compute_kwh: list[float] = field(default_factory=list)
    inferences: list[float] = field(default_factory=list)
    battery_fraction: list[float] = field(default_factory=list)  # mean over live satellites
    array_fraction: list[float] = field(default_factory=list)
    eclipse_fraction: list[float] = field(default_factory=list)
    manoeuvres: list[int] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    launches: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[float] | list[int]]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class LifetimeSummary:
    """What the run measured, as the cost model reads it."""

    satellites: int
    years: float
    initial_capacity_ops: float  # the fleet's capacity at the start, before any pause
    capacity_fraction: float  # time-mean available capacity / initial capacity
    final_capacity_fraction: float
    availability: float  # time-mean of (1 - manoeuvre pause) over live satellites
    utilisation: float  # delivered / available capacity
    delivered_fraction: float  # delivered / initial capacity (time mean)
    inferences: float
    compute_kwh: float
    accelerator_failures: int
    attrition_per_year: float  # failures per accelerator-year in service
    manoeuvres_per_satellite_year: float
    launches: int  # satellites launched after the initial fleet
    satellites_alive_end: int

    def as_dict(self) -> dict[str, float | int]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class LifetimeResult:
    scenario: LifetimeScenario
    profile: HardwareProfile
    lifetime: Lifetime
    series: LifetimeSeries
    summary: LifetimeSummary

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.name,
            "profile": self.profile.name,
            "summary": self.summary.as_dict(),
            "series": self.series.as_dict(),
        }


def _orbits_for(scenario: LifetimeScenario, profile: HardwareProfile) -> tuple[Any, float]:
    fleet = scenario.fleet
    alt = fleet.altitude_km if fleet.altitude_km is not None else profile.design.altitude_km
    inc = (
        fleet.inclination_deg
        if fleet.inclination_deg is not None
        else float(sun_synchronous_inclination(alt))
    )
    if fleet.satellites % fleet.planes:
        raise ConfigError(
            f"fleet.satellites ({fleet.satellites}) must be a multiple of fleet.planes "
            f"({fleet.planes})"
        )
    if not 0 <= fleet.phasing < fleet.planes:
        raise ConfigError(f"fleet.phasing ({fleet.phasing}) must be in [0, planes - 1]")
    raan0 = dawn_dusk_raan(scenario.start_s) if fleet.dawn_dusk else 0.0
    orbits = walker(
        fleet.satellites, fleet.planes, fleet.phasing, alt, inc, scenario.start_s, raan0
    )
    return orbits, alt


def run_lifetime(
    scenario: LifetimeScenario, profile: HardwareProfile | None = None
) -> LifetimeResult:
    """Run the scenario (``profile`` defaults to the one it names)."""
    prof = profile if profile is not None else load_profile(scenario.profile)
    life = aged_lifetime(prof, scenario)
    orbits, alt = _orbits_for(scenario, prof)
    n = len(orbits)
    rng = np.random.default_rng(scenario.seed)
    period = float(orbits.period_s[0])
    dt = scenario.step_hours * 3600.0
    dt_years = dt / SECONDS_PER_YEAR
    steps = max(1, math.ceil(scenario.years * SECONDS_PER_YEAR / dt - 1e-9))
    orbits_per_step = dt / period

    peak_ops = prof.effective_ops_per_s(prof.fastest_mode)  # per accelerator at throughput 1
    acc0 = life.accelerators
    dose_rate = float(dose_rate_rad_per_year(life))
    alpha0 = prof.thermal.absorptivity
    pol = scenario.policy

    # state, one row per satellite slot
    age = np.zeros(n)  # years since this satellite's launch
    alive_acc = np.full(n, acc0, dtype=np.int64)
    damage = np.zeros(n)  # battery: sum of cycles / cycle life
    in_service = np.ones(n, dtype=bool)
    back_at = np.full(n, np.inf)  # years at which a replacement starts computing

    # the fleet's initial capacity: the mode the new bus allows in the worst (first-step) sun
    def _budget(
        t: float, age_y: FloatArray, batt: FloatArray, extra_w: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        f_e = eclipse_fraction_beta(alt, beta_angle_deg(orbits, t))
        allow = allowance_w(
            prof,
            altitude_km=alt,
            period_s=period,
            eclipse_fraction=f_e,
            array_fraction=array_power_fraction(life, age_y),
            battery_fraction=batt,
            absorptivity=radiator_absorptivity(life, alpha0, age_y),
            extra_load_w=extra_w,
        )
        return f_e, allow.compute_w

    _, comp0 = _budget(scenario.start_s, np.zeros(n), np.ones(n), np.zeros(n))
    mode0 = choose_modes(prof, comp0, np.full(n, acc0))
    initial_capacity = float(np.sum(mode0.throughput * acc0) * peak_ops)
    if initial_capacity <= 0:
        raise ConfigError(f"profile {prof.name!r}: the new bus cannot power any compute mode")
    demand_ops = scenario.workload.demand * initial_capacity

    s = LifetimeSeries()
    sum_avail_cap = sum_delivered = sum_avail = 0.0
    acc_years = 0.0
    total_fail = total_man = total_launch = 0
    inferences = kwh = 0.0
    live_sat_years = 0.0
    live_rows = 0
    for k in range(steps):
        t_years = k * dt_years
        t = scenario.start_s + k * dt
        # replacements arriving
        arriving = (~in_service) & (back_at <= t_years + 1e-12)
        if np.any(arriving):
            age[arriving] = 0.0
            alive_acc[arriving] = acc0
            damage[arriving] = 0.0
            in_service[arriving] = True
            back_at[arriving] = np.inf
        live = in_service & (alive_acc > 0)

        # manoeuvres and the compute they pause
        n_man = rng.poisson(life.manoeuvres_per_year * dt_years, size=n) * live
        pause = manoeuvre_downtime_fraction(life, n_man, dt)
        prop_w = manoeuvre_energy_wh(life, n_man) * 3600.0 / dt  # orbit-average propulsion

        batt = np.maximum(0.0, 1.0 - 0.2 * damage)
        f_e, comp_w = _budget(t, age, batt, prop_w)
        mode = choose_modes(prof, comp_w, np.where(live, alive_acc, 0))
        cap_sat = mode.throughput * alive_acc * peak_ops * live  # ops/s before pauses
        avail_sat = cap_sat * (1.0 - pause)
        avail = float(avail_sat.sum())
        delivered = min(demand_ops, avail)
        busy = delivered / avail if avail > 0 else 0.0

        # energy and inferences of the step
        compute_w = mode.watts * alive_acc * live * (1.0 - pause) * busy
        step_kwh = float(compute_w.sum()) * dt / 3.6e6
        step_inf = delivered * dt / scenario.workload.flops_per_inference

        # battery cycles: one per eclipse, at the depth the load needs
        load_w = prof.bus.base_load_w + prop_w + mode.watts * alive_acc * live
        cap_now = prof.bus.battery_wh * batt
        eclipse_h = f_e * period / 3600.0
        with np.errstate(divide="ignore", invalid="ignore"):
            dod = np.where(
                cap_now > 0, load_w * eclipse_h / prof.bus.discharge_efficiency / cap_now, 1.0
            )
        cycles = np.where((f_e > 0) & in_service, orbits_per_step, 0.0)
        damage += cycles / cycle_life(life, np.clip(dod, 1e-3, 1.0))

        # accelerator failures over the step (random hazard x dose hazard)
        dose_now = dose_rate * age
        s0 = survival(life, age, dose_now)
        s1 = survival(life, age + dt_years, dose_now + dose_rate * dt_years)
        p_fail = np.where(s0 > 0, 1.0 - s1 / np.maximum(s0, 1e-300), 1.0)
        fails = rng.binomial(np.where(live, alive_acc, 0), np.clip(p_fail, 0.0, 1.0))
        alive_acc -= fails
        acc_years += float(np.sum(np.where(live, alive_acc + fails, 0))) * dt_years

        # record
        s.t_years.append(t_years)
        s.satellites_alive.append(int(live.sum()))
        s.accelerators_alive.append(int(np.where(live, alive_acc + fails, 0).sum()))
        s.capacity_ops.append(avail)
        s.delivered_ops.append(delivered)
        s.compute_kwh.append(step_kwh)
        s.inferences.append(step_inf)
        s.battery_fraction.append(float(batt[live].mean()) if live.any() else 0.0)
        s.array_fraction.append(
            float(array_power_fraction(life, age[live]).mean()) if live.any() else 0.0
        )
        s.eclipse_fraction.append(float(f_e.mean()))
        s.manoeuvres.append(int(n_man.sum()))
        s.failures.append(int(fails.sum()))

        sum_avail_cap += avail
        sum_delivered += delivered
        sum_avail += float((1.0 - pause)[live].sum())
        live_sat_years += float(live.sum()) * dt_years
        live_rows += int(live.sum())
        total_fail += int(fails.sum())
        total_man += int(n_man.sum())
        inferences += step_inf
        kwh += step_kwh

        # age, deaths, deorbits, replacements
        age += np.where(in_service, dt_years, 0.0)
        dead = in_service & (alive_acc == 0)
        if pol.deorbit_at_design_life:
            dead |= in_service & (age >= life.design_life_years - 1e-9)
        launched = 0
        if np.any(dead):
            in_service[dead] = False
            if pol.replace_failed and k + 1 < steps:  # nothing to replace after the run
                back_at[dead] = t_years + dt_years + pol.replacement_delay_days / 365.25
                launched = int(dead.sum())
        total_launch += launched
        s.launches.append(launched)

    years = steps * dt_years
    final_live = in_service & (alive_acc > 0)
    summary = LifetimeSummary(
        satellites=n,
        years=years,
        initial_capacity_ops=initial_capacity,
        capacity_fraction=sum_avail_cap / steps / initial_capacity,
        final_capacity_fraction=s.capacity_ops[-1] / initial_capacity,
        availability=sum_avail / live_rows if live_rows else 0.0,
        utilisation=sum_delivered / sum_avail_cap if sum_avail_cap > 0 else 0.0,
        delivered_fraction=sum_delivered / steps / initial_capacity,
        inferences=inferences,
        compute_kwh=kwh,
        accelerator_failures=total_fail,
        attrition_per_year=total_fail / acc_years if acc_years > 0 else 0.0,
        manoeuvres_per_satellite_year=total_man / live_sat_years if live_sat_years else 0.0,
        launches=total_launch,
        satellites_alive_end=int(final_live.sum()),
    )
    return LifetimeResult(scenario, prof, life, s, summary)
