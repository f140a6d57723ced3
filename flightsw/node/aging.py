"""Lifetime models of one node or N (one array row each): pure functions, no clock, no state.

Why it exists: a compute satellite is launched once and never repaired, so what it delivers
over five years depends on how it ages. Each model takes figures from a hardware profile's
``[lifetime]`` section (:class:`hardware_profiles.Lifetime`), every one sourced or marked
an estimate there, and returns what the node has left:

* total ionising dose per orbit behind a given shielding (dose-depth power law);
* survival of an accelerator: a dose-independent failure rate (Meta's 9.1 %/yr for H100s)
  times a Weibull hazard rising with accumulated dose; failed accelerators are lost for good;
* battery capacity fade with charge cycles, faster at deeper discharge;
* solar-array power and radiator absorptivity drifting per year;
* debris collision-avoidance manoeuvres: the fraction of time compute is paused and the
  propulsion energy they draw.

Both the multi-year fluid simulation (:mod:`flightsw.sim.lifetime`) and, through a hook,
the node core read these functions, so the two agree by construction: the node core runs
the bus of :func:`aged_profile`, and :mod:`flightsw.node.lifetime` draws its accelerator
losses from :func:`survival` and its manoeuvres from ``manoeuvres_per_year`` as events.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from flightsw.exceptions import ConfigError
from flightsw.physics.frames import FloatArray
from flightsw.physics.orbit import circular_period_s
from hardware_profiles.schema import HardwareProfile, Lifetime

__all__ = [
    "DOSE_DEPTH_EXPONENT",
    "SECONDS_PER_YEAR",
    "AgeState",
    "age_state",
    "aged_profile",
    "array_power_fraction",
    "battery_capacity_fraction",
    "cumulative_hazard",
    "cycle_life",
    "dose_per_orbit_rad",
    "dose_rate_rad_per_year",
    "dose_survival",
    "manoeuvre_downtime_fraction",
    "manoeuvre_energy_wh",
    "radiator_absorptivity",
    "random_survival",
    "survival",
]

SECONDS_PER_YEAR = 365.25 * 86400.0

#: Dose behind shielding t scales as (t_ref / t) ** k. Estimate: LEO dose-depth curves
#: (trapped electrons under ~3 mm Al, protons beyond) fall about tenfold from 2 to 10 mm.
DOSE_DEPTH_EXPONENT = 1.5


def _arr(x: npt.ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def _check_nonneg(name: str, x: FloatArray) -> None:
    if np.any(~np.isfinite(x)) or np.any(x < 0.0):
        raise ConfigError(f"{name}: must be finite and >= 0")


def dose_rate_rad_per_year(
    life: Lifetime, shielding_mm_al: npt.ArrayLike | None = None
) -> FloatArray:
    """Dose rate behind ``shielding_mm_al`` (default: the profile's), rad(Si)/year."""
    t = _arr(life.shielding_mm_al if shielding_mm_al is None else shielding_mm_al)
    if np.any(t <= 0.0):
        raise ConfigError("shielding_mm_al: must be > 0")
    return np.asarray(
        life.dose_rate_rad_per_year * (life.dose_ref_shielding_mm_al / t) ** DOSE_DEPTH_EXPONENT
    )


def dose_per_orbit_rad(
    life: Lifetime, period_s: npt.ArrayLike, shielding_mm_al: npt.ArrayLike | None = None
) -> FloatArray:
    """Total ionising dose accumulated in one orbit of ``period_s``, rad(Si)."""
    period = _arr(period_s)
    _check_nonneg("period_s", period)
    return np.asarray(dose_rate_rad_per_year(life, shielding_mm_al) * period / SECONDS_PER_YEAR)


def dose_survival(life: Lifetime, dose_rad: npt.ArrayLike) -> FloatArray:
    """Probability that an accelerator has no dose-induced hard failure at ``dose_rad``.

    Weibull in dose: exp(-(D / D63) ** shape), the hazard rising with accumulated dose.
    """
    d = _arr(dose_rad)
    _check_nonneg("dose_rad", d)
    return np.asarray(np.exp(-((d / life.hard_failure_dose_rad) ** life.hard_failure_shape)))


def random_survival(life: Lifetime, years: npt.ArrayLike) -> FloatArray:
    """Probability of no dose-independent failure after ``years`` (constant hazard)."""
    y = _arr(years)
    _check_nonneg("years", y)
    rate = -np.log1p(-life.random_failure_per_year)  # per-year probability -> hazard
    return np.asarray(np.exp(-rate * y))


def survival(life: Lifetime, years: npt.ArrayLike, dose_rad: npt.ArrayLike) -> FloatArray:
    """Probability that one accelerator still works after ``years`` and ``dose_rad``."""
    return np.asarray(random_survival(life, years) * dose_survival(life, dose_rad))


def cumulative_hazard(life: Lifetime, years: npt.ArrayLike, dose_rad: npt.ArrayLike
                      ) -> FloatArray:
    """-ln :func:`survival`, computed as a sum so that it stays exact where the survival
    underflows (a conditional law late in a steep wear-out: differences of this)."""
    y, d = _arr(years), _arr(dose_rad)
    _check_nonneg("years", y)
    _check_nonneg("dose_rad", d)
    rate = -np.log1p(-life.random_failure_per_year)
    return np.asarray(rate * y + (d / life.hard_failure_dose_rad) ** life.hard_failure_shape)


def cycle_life(life: Lifetime, dod: npt.ArrayLike) -> FloatArray:
    """Cycles to 80 % capacity at depth of discharge ``dod``: N_ref (DoD_ref / DoD) ** b."""
    d = np.clip(_arr(dod), 1e-6, 1.0)
    return np.asarray(
        life.battery_cycles_to_80pct * (life.battery_ref_dod / d) ** life.battery_dod_exponent
    )


def battery_capacity_fraction(
    life: Lifetime, cycles: npt.ArrayLike, dod: npt.ArrayLike
) -> FloatArray:
    """Capacity left after ``cycles`` at ``dod`` (linear fade, 20 % lost at the cycle life).

    ``cycles`` may be fractional (a fluid count); the result is clamped at 0.
    """
    n = _arr(cycles)
    _check_nonneg("cycles", n)
    return np.asarray(np.maximum(0.0, 1.0 - 0.2 * n / cycle_life(life, dod)))


def array_power_fraction(life: Lifetime, years: npt.ArrayLike) -> FloatArray:
    """Array power left after ``years``, relative to the start: (1 - rate) ** years."""
    y = _arr(years)
    _check_nonneg("years", y)
    return np.asarray((1.0 - life.array_degradation_per_year) ** y)


def radiator_absorptivity(
    life: Lifetime, initial: npt.ArrayLike, years: npt.ArrayLike
) -> FloatArray:
    """Solar absorptivity of the radiator surfaces after ``years``, capped at 1."""
    y = _arr(years)
    _check_nonneg("years", y)
    return np.asarray(np.minimum(1.0, _arr(initial) + life.radiator_absorptivity_rise_per_year * y))


def manoeuvre_downtime_fraction(
    life: Lifetime, manoeuvres: npt.ArrayLike, dt_s: float
) -> FloatArray:
    """Fraction of ``dt_s`` with compute paused by ``manoeuvres`` (capped at 1)."""
    if not dt_s > 0:
        raise ConfigError(f"dt_s: must be > 0, got {dt_s!r}")
    n = _arr(manoeuvres)
    _check_nonneg("manoeuvres", n)
    return np.asarray(np.minimum(1.0, n * life.manoeuvre_pause_s / dt_s))


def manoeuvre_energy_wh(life: Lifetime, manoeuvres: npt.ArrayLike) -> FloatArray:
    """Propulsion energy of ``manoeuvres``, Wh (thruster on for the whole pause, estimate)."""
    n = _arr(manoeuvres)
    _check_nonneg("manoeuvres", n)
    return np.asarray(n * life.propulsion_w * life.manoeuvre_pause_s / 3600.0)


class AgeState(NamedTuple):
    """What ageing leaves of a node at one instant (each field a scalar or an (N,) array)."""

    array_fraction: FloatArray
    battery_fraction: FloatArray
    accelerator_survival: FloatArray
    radiator_absorptivity: FloatArray


def age_state(
    life: Lifetime,
    *,
    years: npt.ArrayLike,
    dose_rad: npt.ArrayLike,
    cycles: npt.ArrayLike,
    dod: npt.ArrayLike,
    initial_absorptivity: npt.ArrayLike,
) -> AgeState:
    """Every ageing factor at once: the hook a node core applies to its profile figures.

    ``accelerator_survival`` is the expected fraction of accelerators alive; a simulation
    that tracks accelerators one by one samples failures from :func:`survival` instead.
    """
    return AgeState(
        array_fraction=array_power_fraction(life, years),
        battery_fraction=battery_capacity_fraction(life, cycles, dod),
        accelerator_survival=survival(life, years, dose_rad),
        radiator_absorptivity=radiator_absorptivity(life, initial_absorptivity, years),
    )


def aged_profile(
    profile: HardwareProfile,
    years: float,
    *,
    cycles_per_year: float | None = None,
    dod: float | None = None,
) -> HardwareProfile:
    """``profile`` as its bus is after ``years`` in orbit: the hook for the node core.

    The array's ``degradation``, the battery's capacity and the radiator's absorptivity
    are aged with the profile's ``[lifetime]`` figures; the node core, the per-job
    simulator and the emulator then run the aged bus unchanged. ``cycles_per_year``
    defaults to one cycle per orbit at ``design.altitude_km``; ``dod`` to the ageing
    reference depth. Accelerator failures are events, not figures: see :func:`survival`.
    """
    life = profile.lifetime
    if life is None:
        raise ConfigError(f"profile {profile.name!r} has no [lifetime] section")
    if not years >= 0:
        raise ConfigError(f"years: must be >= 0, got {years!r}")
    if cycles_per_year is None:
        cycles_per_year = SECONDS_PER_YEAR / float(circular_period_s(profile.design.altitude_km))
    depth = life.battery_ref_dod if dod is None else dod
    array = float(array_power_fraction(life, years))
    battery = float(battery_capacity_fraction(life, cycles_per_year * years, depth))
    if battery <= 0.0:
        raise ConfigError(f"years: the battery of {profile.name!r} is worn out after {years} y")
    alpha = float(radiator_absorptivity(life, profile.thermal.absorptivity, years))
    bus = profile.bus.model_copy(update={
        "degradation": 1.0 - (1.0 - profile.bus.degradation) * array,
        "battery_wh": profile.bus.battery_wh * battery,
    })
    thermal = profile.thermal.model_copy(update={"absorptivity": alpha})
    return profile.model_copy(update={"bus": bus, "thermal": thermal})
