"""Back-of-envelope sizing checks that keep a profile physically self-consistent.

These are design-time checks, not the simulation (that is ``flightsw.physics``): a circular
orbit at the profile's design altitude, the worst eclipse fraction it names, a sun-pointing
array, and steady-state (equilibrium) radiator temperatures. Each check says what it
compares so a failing profile tells its author which figure to revisit.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal

from hardware_profiles.schema import HardwareProfile

__all__ = [
    "ALBEDO",
    "EARTH_IR_W_M2",
    "LI_ION_WH_PER_KG",
    "MU_KM3_S2",
    "R_EARTH_KM",
    "SIGMA",
    "SOLAR_CONSTANT",
    "T_SINK_K",
    "SizingCheck",
    "SizingReport",
    "array_power_w",
    "earth_view_factor",
    "equilibrium_c",
    "max_eclipse_fraction",
    "orbit_period_s",
    "radiator_equilibrium_c",
    "size_profile",
]

SOLAR_CONSTANT = 1361.0  # W/m^2
SIGMA = 5.670374419e-8  # Stefan-Boltzmann, W/m^2/K^4
MU_KM3_S2 = 398600.4418  # Earth's gravitational parameter
R_EARTH_KM = 6378.137  # equatorial radius
EARTH_IR_W_M2 = 237.0
ALBEDO = 0.3
T_SINK_K = 3.0
KELVIN = 273.15
LI_ION_WH_PER_KG = 125.0  # mid-range of packs at 100-150 Wh/kg
BATTERY_MASS_SHARE_LIMIT = 0.25  # a battery above a quarter of the satellite is implausible


def orbit_period_s(altitude_km: float) -> float:
    """Two-body period of a circular orbit."""
    r = R_EARTH_KM + altitude_km
    return 2 * math.pi * math.sqrt(r**3 / MU_KM3_S2)


def max_eclipse_fraction(altitude_km: float, beta_deg: float = 0.0) -> float:
    """Fraction of a circular orbit in the cylindrical Earth shadow at sun beta angle."""
    r = R_EARTH_KM + altitude_km
    chord = math.sqrt(altitude_km**2 + 2 * R_EARTH_KM * altitude_km)
    cos_b = math.cos(math.radians(beta_deg))
    if r * cos_b <= chord:
        return 0.0
    return math.acos(chord / (r * cos_b)) / math.pi


def earth_view_factor(altitude_km: float) -> float:
    """F_E = (R_E / r)^2, the lumped-node Earth view factor."""
    return (R_EARTH_KM / (R_EARTH_KM + altitude_km)) ** 2


def array_power_w(profile: HardwareProfile) -> float:
    """Array output in full sun, sun-pointing: S * eta * A * (1 - degradation)."""
    b = profile.bus
    return SOLAR_CONSTANT * b.cell_efficiency * b.array_area_m2 * (1 - b.degradation)


def radiator_equilibrium_c(heat_w: float, emissivity: float, area_m2: float) -> float:
    """Radiator temperature, deg C, at which eps sigma A (T^4 - T_sink^4) = ``heat_w``."""
    t4 = heat_w / (emissivity * SIGMA * area_m2) + T_SINK_K**4
    return float(t4**0.25 - KELVIN)


def equilibrium_c(profile: HardwareProfile, heat_w: float) -> float:
    """Equilibrium temperature of ``profile``'s radiator rejecting ``heat_w``, deg C."""
    t = profile.thermal
    return radiator_equilibrium_c(heat_w, t.emissivity, t.radiator_area_m2)


def _environment_w(profile: HardwareProfile, lit_fraction: float) -> float:
    """Absorbed sun + albedo (scaled by lit fraction) + Earth IR, W."""
    t = profile.thermal
    f_e = earth_view_factor(profile.design.altitude_km)
    sun = t.absorptivity * t.sun_area_m2 * SOLAR_CONSTANT
    albedo = t.absorptivity * t.albedo_area_m2 * SOLAR_CONSTANT * ALBEDO * f_e
    earth_ir = t.emissivity * t.earth_ir_area_m2 * EARTH_IR_W_M2 * f_e
    return lit_fraction * (sun + albedo) + earth_ir


@dataclass(frozen=True)
class SizingCheck:
    """One comparison: ``value`` must not exceed (``le``) or fall below (``ge``) ``limit``."""

    name: str
    value: float
    limit: float
    unit: str
    sense: Literal["le", "ge"]  # value <= limit, or value >= limit
    detail: str

    @property
    def ok(self) -> bool:
        return self.value <= self.limit if self.sense == "le" else self.value >= self.limit


@dataclass(frozen=True)
class SizingReport:
    """All checks of one profile, with the figures they were computed from."""

    profile: str
    figures: dict[str, float]
    checks: list[SizingCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def failures(self) -> list[SizingCheck]:
        return [c for c in self.checks if not c.ok]

    def to_dict(self) -> dict[str, object]:
        return {
            "profile": self.profile,
            "ok": self.ok,
            "figures": dict(self.figures),
            "checks": [{**asdict(c), "ok": c.ok} for c in self.checks],
        }


def size_profile(profile: HardwareProfile) -> SizingReport:
    """Run every sizing check on ``profile``."""
    b, t, d = profile.bus, profile.thermal, profile.design
    period = orbit_period_s(d.altitude_km)
    fe = d.eclipse_fraction
    eclipse_h = fe * period / 3600
    p_array = array_power_w(profile)
    round_trip = b.charge_efficiency * b.discharge_efficiency
    fastest, sustained = profile.fastest_mode, profile.sustained_mode
    full_load = profile.load_w(fastest)
    sust_load = profile.load_w(sustained)
    cold_load = profile.idle_load_w(heaters=True)

    def orbit_need(load: float) -> float:
        # sunlit share: run the load and recharge what the eclipse will take
        return load * (1 + fe / ((1 - fe) * round_trip)) if fe else load

    discharge_wh = sust_load * eclipse_h / b.discharge_efficiency
    usable_wh = b.battery_wh * (1 - b.dod_floor)
    hot_heat = full_load + _environment_w(profile, 1.0)
    cold_heat = cold_load + _environment_w(profile, 1 - fe)

    figures = {
        "orbit_period_min": period / 60,
        "eclipse_min": eclipse_h * 60,
        "array_w": p_array,
        "full_load_w": full_load,
        "sustained_load_w": sust_load,
        "orbit_need_sustained_w": orbit_need(sust_load),
        "eclipse_discharge_wh": discharge_wh,
        "cycle_dod": discharge_wh / b.battery_wh,
        "radiator_simple_c": equilibrium_c(profile, full_load),
        "radiator_hot_c": equilibrium_c(profile, hot_heat),
        "cold_orbit_avg_c": equilibrium_c(profile, cold_heat),
        "effective_tops_fastest": profile.effective_ops_per_s(fastest) / 1e12,
    }
    checks = [
        SizingCheck(
            name="sunlit full compute: array covers the load",
            value=full_load,
            limit=p_array,
            unit="W",
            sense="le",
            detail=f"base {b.base_load_w:g} W + mode {fastest.name} {fastest.watts:g} W "
            f"vs array {p_array:.0f} W",
        ),
        SizingCheck(
            name="sustained mode: array covers load + eclipse recharge",
            value=orbit_need(sust_load),
            limit=p_array,
            unit="W",
            sense="le",
            detail=f"mode {sustained.name}, eclipse fraction {fe:g}, round trip {round_trip:.3f}",
        ),
        SizingCheck(
            name="idle + heaters: array covers load + eclipse recharge",
            value=orbit_need(cold_load),
            limit=p_array,
            unit="W",
            sense="le",
            detail=f"base + idle {profile.compute.idle_w:g} W + heaters {b.heater_w:g} W",
        ),
        SizingCheck(
            name="eclipse at sustained mode stays above the DoD floor",
            value=discharge_wh,
            limit=usable_wh,
            unit="Wh",
            sense="le",
            detail=f"{eclipse_h * 60:.1f} min at {sust_load:g} W vs "
            f"{b.battery_wh:g} Wh x (1 - {b.dod_floor:g})",
        ),
        SizingCheck(
            name="radiator rejects full load in sunlight below max_c",
            value=equilibrium_c(profile, hot_heat),
            limit=t.max_c,
            unit="C",
            sense="le",
            detail=f"{full_load:g} W internal + environment, eps {t.emissivity:g}, "
            f"{t.radiator_area_m2:g} m2",
        ),
        SizingCheck(
            name="orbit-average idle with heaters stays above min_c",
            value=equilibrium_c(profile, cold_heat),
            limit=t.min_c,
            unit="C",
            sense="ge",
            detail=f"{cold_load:g} W internal + orbit-average environment",
        ),
    ]
    if d.mass_kg is not None:
        battery_kg = b.battery_wh / LI_ION_WH_PER_KG
        checks.append(
            SizingCheck(
                name="battery mass share of the satellite",
                value=battery_kg / d.mass_kg,
                limit=BATTERY_MASS_SHARE_LIMIT,
                unit="",
                sense="le",
                detail=f"{b.battery_wh:g} Wh at {LI_ION_WH_PER_KG:g} Wh/kg = "
                f"{battery_kg:.1f} kg of {d.mass_kg:g} kg",
            )
        )
        figures["battery_kg"] = battery_kg
    return SizingReport(profile.name, figures, checks)
