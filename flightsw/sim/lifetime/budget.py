"""What compute an aged bus allows, orbit-averaged, for N satellites at once.

A coarse (hours to days) step cannot follow each eclipse, so the budget is the orbit
average of the project's physics: the eclipse fraction from the beta angle (cylindrical
shadow), the array power the aged cells give (:func:`flightsw.physics.max_sustainable_load_w`),
the eclipse energy the faded battery holds above its depth-of-discharge floor, and the heat
the darkened radiator rejects at the throttle temperature (:func:`flightsw.physics.heat_flows`).
The compute power allowed is the smallest of the three, less the bus load; the power mode
is the fastest one of the profile whose watts, times the working accelerators, fit in it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from flightsw.physics import PowerParams, ThermalParams, heat_flows, max_sustainable_load_w
from flightsw.physics.constants import R_EARTH
from flightsw.physics.frames import FloatArray
from flightsw.physics.thermal import view_factor
from hardware_profiles import HardwareProfile

__all__ = ["Allowance", "ModeChoice", "allowance_w", "choose_modes", "eclipse_fraction_beta"]


def eclipse_fraction_beta(altitude_km: npt.ArrayLike, beta_deg: npt.ArrayLike) -> FloatArray:
    """Fraction of a circular orbit in the cylindrical shadow at beta angle ``beta_deg``.

    f = acos(sqrt(h^2 + 2 R h) / (r cos beta)) / pi while that ratio is below 1, else 0
    (550 km, beta 0: 0.372; no eclipse above |beta| = 67.0 deg: brief section 9).
    """
    h = np.asarray(altitude_km, dtype=np.float64)
    r = R_EARTH + h
    cos_b = np.abs(np.cos(np.radians(np.asarray(beta_deg, dtype=np.float64))))
    ratio = np.sqrt(h * h + 2.0 * R_EARTH * h) / np.maximum(r * cos_b, 1e-12)
    return np.asarray(np.where(ratio < 1.0, np.arccos(np.minimum(ratio, 1.0)) / np.pi, 0.0))


class Allowance(NamedTuple):
    """Compute power each bound allows, W per satellite (compute only, bus load removed)."""

    power_w: FloatArray
    battery_w: FloatArray
    thermal_w: FloatArray

    @property
    def compute_w(self) -> FloatArray:
        return np.asarray(np.maximum(0.0, np.minimum(np.minimum(self.power_w, self.battery_w),
                                                     self.thermal_w)))


def allowance_w(
    profile: HardwareProfile,
    *,
    altitude_km: npt.ArrayLike,
    period_s: npt.ArrayLike,
    eclipse_fraction: npt.ArrayLike,
    array_fraction: npt.ArrayLike,
    battery_fraction: npt.ArrayLike,
    absorptivity: npt.ArrayLike,
    extra_load_w: npt.ArrayLike = 0.0,
) -> Allowance:
    """Orbit-average compute power the aged bus of each satellite allows.

    ``extra_load_w`` is orbit-average load besides the bus base load (e.g. propulsion).
    """
    bus, th = profile.bus, profile.thermal
    f_e = np.asarray(eclipse_fraction, dtype=np.float64)
    sunlit = 1.0 - f_e
    base = bus.base_load_w + np.asarray(extra_load_w, dtype=np.float64)
    kept = (1.0 - bus.degradation) * np.asarray(array_fraction, dtype=np.float64)
    params = PowerParams(
        array_area_m2=bus.array_area_m2,
        cell_efficiency=bus.cell_efficiency,
        degradation=np.clip(1.0 - kept, 0.0, 1.0),
        capacity_wh=bus.battery_wh,
        charge_efficiency=bus.charge_efficiency,
        discharge_efficiency=bus.discharge_efficiency,
        dod_floor=bus.dod_floor,
    )
    power = max_sustainable_load_w(params, sunlit) - base
    eclipse_h = f_e * np.asarray(period_s, dtype=np.float64) / 3600.0
    usable_wh = (
        bus.battery_wh * np.asarray(battery_fraction, dtype=np.float64) * (1.0 - bus.dod_floor)
    )
    with np.errstate(divide="ignore"):
        battery = np.where(
            eclipse_h > 0.0, usable_wh * bus.discharge_efficiency / eclipse_h, np.inf
        ) - base
    tparams = ThermalParams(
        heat_capacity_j_per_k=th.heat_capacity_j_per_k,
        radiator_area_m2=th.radiator_area_m2,
        emissivity=th.emissivity,
        absorptivity=np.clip(np.asarray(absorptivity, dtype=np.float64), 0.0, 1.0),
        sun_area_m2=th.sun_area_m2,
        albedo_area_m2=th.albedo_area_m2,
        earth_ir_area_m2=th.earth_ir_area_m2,
    )
    fe_view = view_factor(R_EARTH + np.asarray(altitude_km, dtype=np.float64))
    flows = heat_flows(tparams, th.throttle_c + 273.15, sunlit, fe_view, 0.0)
    thermal = flows.radiated_w - flows.absorbed_w - base
    shape = np.broadcast(power, battery, thermal).shape
    return Allowance(
        np.broadcast_to(np.asarray(power, dtype=np.float64), shape).copy(),
        np.broadcast_to(np.asarray(battery, dtype=np.float64), shape).copy(),
        np.broadcast_to(np.asarray(thermal, dtype=np.float64), shape).copy(),
    )


class ModeChoice(NamedTuple):
    """Per satellite: watts and relative throughput of one accelerator (0 when none fits)."""

    watts: FloatArray
    throughput: FloatArray


def choose_modes(
    profile: HardwareProfile, compute_w: npt.ArrayLike, accelerators: npt.ArrayLike
) -> ModeChoice:
    """The fastest power mode whose watts x working accelerators fit in ``compute_w``."""
    allowed = np.asarray(compute_w, dtype=np.float64)
    n = np.maximum(np.asarray(accelerators, dtype=np.float64), 0.0)
    watts = np.zeros(np.broadcast(allowed, n).shape)
    thr = np.zeros_like(watts)
    for mode in profile.modes_by_watts():
        fits = (n > 0) & (mode.watts * n <= allowed) & (mode.throughput > thr)
        watts = np.where(fits, mode.watts, watts)
        thr = np.where(fits, mode.throughput, thr)
    return ModeChoice(np.asarray(watts), np.asarray(thr))
