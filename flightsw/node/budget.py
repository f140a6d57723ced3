"""Power, thermal and radiation state of N nodes, advanced together (one row per node).

The emulated node is one row; the simulator holds every satellite of a constellation in
one ``Budget`` and advances them with one vectorised step. Compute power comes in as the
*modelled* average watts of each row over the step, never as host time.

The energy forecast answers the admission question of the onboard scheduler: how much
energy can be spent now and still keep the battery above the depth-of-discharge floor
through the end of the next eclipse, given the bus's baseline load.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from flightsw.physics import power, radiation, sun, thermal
from flightsw.physics.frames import ecef_to_geodetic, eci_to_ecef
from flightsw.physics.orbit import Orbits
from hardware_profiles import HardwareProfile

__all__ = ["Budget"]

F = npt.NDArray[np.float64]
_KELVIN = 273.15
_FORECAST_STEP_S = 30.0
_FORECAST_MAX_AGE_S = 60.0


def _col(profiles: Sequence[HardwareProfile], get: object) -> F:
    assert callable(get)
    return np.array([float(get(p)) for p in profiles], dtype=np.float64)


@dataclass(slots=True)
class _Forecast:
    t: float
    battery_wh: F
    min_delta_wh: F  # lowest battery change over the window (<= 0), baseline load
    eclipse_start: F  # NaN if none in the horizon
    eclipse_end: F


class Budget:
    """Battery, temperature and upset counters of N nodes on their orbits."""

    def __init__(
        self,
        profiles: Sequence[HardwareProfile],
        orbits: Orbits,
        t0: float,
        battery_wh: F,
        temperature_k: F,
        seed: int = 0,
    ) -> None:
        n = len(orbits)
        if len(profiles) != n:
            raise ValueError(f"{len(profiles)} profiles for {n} orbits")
        self.n = n
        self.orbits = orbits
        self.power = power.PowerParams(
            array_area_m2=_col(profiles, lambda p: p.bus.array_area_m2),
            cell_efficiency=_col(profiles, lambda p: p.bus.cell_efficiency),
            degradation=_col(profiles, lambda p: p.bus.degradation),
            capacity_wh=_col(profiles, lambda p: p.bus.battery_wh),
            charge_efficiency=_col(profiles, lambda p: p.bus.charge_efficiency),
            discharge_efficiency=_col(profiles, lambda p: p.bus.discharge_efficiency),
            dod_floor=_col(profiles, lambda p: p.bus.dod_floor),
        )
        self.thermal = thermal.ThermalParams(
            heat_capacity_j_per_k=_col(profiles, lambda p: p.thermal.heat_capacity_j_per_k),
            radiator_area_m2=_col(profiles, lambda p: p.thermal.radiator_area_m2),
            emissivity=_col(profiles, lambda p: p.thermal.emissivity),
            absorptivity=_col(profiles, lambda p: p.thermal.absorptivity),
            sun_area_m2=_col(profiles, lambda p: p.thermal.sun_area_m2),
            albedo_area_m2=_col(profiles, lambda p: p.thermal.albedo_area_m2),
            earth_ir_area_m2=_col(profiles, lambda p: p.thermal.earth_ir_area_m2),
        )
        self.base_load_w = _col(profiles, lambda p: p.bus.base_load_w)
        self.heater_w = _col(profiles, lambda p: p.bus.heater_w)
        self.idle_w = _col(profiles, lambda p: p.compute.idle_w)
        self.min_c = _col(profiles, lambda p: p.thermal.min_c)
        self.upset_rate = _col(profiles, lambda p: p.radiation.upset_rate_per_bit_day)
        self.memory_bits = _col(profiles, lambda p: p.radiation.memory_bits)
        self.saa_factor = _col(profiles, lambda p: p.radiation.saa_factor)
        self.capacity_wh = np.asarray(self.power.capacity_wh, dtype=np.float64)
        self.floor_wh = self.capacity_wh * np.asarray(self.power.dod_floor, dtype=np.float64)
        self.rng = np.random.default_rng(seed)
        self.t = t0
        self.battery_wh = battery_wh.astype(np.float64).copy()
        self.temperature_k = temperature_k.astype(np.float64).copy()
        self.upsets = np.zeros(n, dtype=np.int64)
        self.illum = np.zeros(n)
        self.solar_w = np.zeros(n)
        self.load_w = self.base_load_w + self.idle_w
        self.position = np.zeros((n, 3))
        self.heater_on = np.zeros(n, dtype=bool)
        self.floor_violation_s = np.zeros(n)
        self.thermal_violation_s = np.zeros(n)
        self.max_c = _col(profiles, lambda p: p.thermal.max_c)
        self._forecast: _Forecast | None = None
        self._observe(t0)

    @classmethod
    def from_profiles(
        cls,
        profiles: Sequence[HardwareProfile],
        orbits: Orbits,
        t0: float,
        *,
        initial_soc: float | None = None,
        initial_temperature_c: float | None = None,
        seed: int = 0,
    ) -> Budget:
        """A budget whose rows start at the profiles' initial state (or the overrides)."""
        if len(profiles) == 1 and len(orbits) > 1:
            profiles = list(profiles) * len(orbits)
        cap = _col(profiles, lambda p: p.bus.battery_wh)
        soc = (
            np.full(len(profiles), initial_soc)
            if initial_soc is not None
            else _col(profiles, lambda p: p.bus.initial_soc)
        )
        temp_c = (
            np.full(len(profiles), initial_temperature_c)
            if initial_temperature_c is not None
            else _col(profiles, lambda p: p.thermal.initial_c)
        )
        return cls(profiles, orbits, t0, cap * soc, temp_c + _KELVIN, seed=seed)

    # -- stepping ------------------------------------------------------------------------
    def _observe(self, t: float) -> None:
        self.position = self.orbits.positions(t)
        self.illum = sun.illumination(self.position, sun.sun_position_km(t))
        self.solar_w = power.solar_power_w(self.power, self.illum, 1.0)

    def step(self, t: float, dt: float, compute_w: F) -> None:
        """Advance every row by ``dt`` seconds ending at mission time ``t``.

        ``compute_w`` is each row's average compute power over the step (modelled).
        Illumination is sampled at the end of the step.
        """
        if dt <= 0:
            return
        self._observe(t)
        self.heater_on = self.temperature_k - _KELVIN < self.min_c
        load = self.base_load_w + compute_w + np.where(self.heater_on, self.heater_w, 0.0)
        self.load_w = load
        self.battery_wh, _ = power.step_battery(self.battery_wh, self.solar_w, load, dt, self.power)
        vf = thermal.view_factor(np.linalg.norm(self.position, axis=1))
        self.temperature_k = thermal.step_temperature(
            self.temperature_k, self.thermal, self.illum, vf, load, dt
        )
        lat, lon, _ = ecef_to_geodetic(eci_to_ecef(self.position, t))
        saa = radiation.in_saa(lat, lon)
        self.upsets += radiation.sample_upsets(
            self.rng, self.upset_rate, self.memory_bits, dt, saa, self.saa_factor
        )
        self.floor_violation_s += np.where(self.battery_wh < self.floor_wh - 1e-9, dt, 0.0)
        self.thermal_violation_s += np.where(self.temperature_k - _KELVIN > self.max_c, dt, 0.0)
        self.t = t

    # -- forecast ------------------------------------------------------------------------
    def forecast(self, now: float) -> _Forecast:
        """Baseline battery trajectory over ~1.5 orbits (cached for a minute)."""
        fc = self._forecast
        if fc is not None and 0 <= now - fc.t < _FORECAST_MAX_AGE_S:
            return fc
        horizon = 1.5 * float(np.max(self.orbits.period_s))
        times = now + np.arange(0.0, horizon, _FORECAST_STEP_S)
        pos = self.orbits.positions_many(times)  # (T, N, 3)
        sun_pos = sun.sun_position_km(times)  # (T, 3)
        illum = sun.illumination(pos, sun_pos[:, None, :])  # (T, N)
        solar = power.solar_power_w(self.power, illum, 1.0)
        base = self.base_load_w + self.idle_w
        net = solar - base
        eff = np.where(
            net > 0, net * self.power.charge_efficiency, net / self.power.discharge_efficiency
        )
        delta = np.cumsum(eff * _FORECAST_STEP_S / 3600.0, axis=0)
        # upper clamp at capacity (a full battery wastes surplus): reflected walk
        level = self.battery_wh + delta
        over = np.maximum.accumulate(np.maximum(level - self.capacity_wh, 0.0), axis=0)
        level = level - over
        # window: from now to the end of the next eclipse (or the horizon if none)
        dark = illum < 0.5
        idx = np.arange(len(times))[:, None]
        has_dark = dark.any(axis=0)
        first = np.argmax(dark, axis=0)
        lit_after = (~dark) & (idx >= first)
        stop = np.where(
            has_dark & lit_after.any(axis=0), np.argmax(lit_after, axis=0), len(times) - 1
        )
        start = np.where(has_dark, times[first], np.nan)
        end = np.where(has_dark, times[stop], np.nan)
        window_min = np.where(idx <= stop, level, np.inf).min(axis=0)
        min_delta = np.minimum(0.0, window_min - self.battery_wh)
        self._forecast = _Forecast(now, self.battery_wh.copy(), min_delta, start, end)
        return self._forecast

    def margin_wh(self, i: int, now: float) -> float:
        """Energy row ``i`` may spend now and stay above the floor through next eclipse."""
        fc = self.forecast(now)
        return float(self.battery_wh[i] + fc.min_delta_wh[i] - self.floor_wh[i])

    def margins_wh(self, now: float) -> F:
        fc = self.forecast(now)
        return np.asarray(self.battery_wh + fc.min_delta_wh - self.floor_wh, dtype=np.float64)

    def next_eclipse(self, i: int, now: float) -> tuple[float, float] | None:
        """(start, end) of the next (or current) eclipse of row ``i`` within ~1.5 orbits."""
        fc = self.forecast(now)
        if np.isnan(fc.eclipse_start[i]):
            return None
        return float(fc.eclipse_start[i]), float(fc.eclipse_end[i])

    # -- per-row readings ------------------------------------------------------------------
    def soc_of(self, i: int) -> float:
        return float(self.battery_wh[i] / self.capacity_wh[i])

    def battery_wh_of(self, i: int) -> float:
        return float(self.battery_wh[i])

    def temperature_c_of(self, i: int) -> float:
        return float(self.temperature_k[i] - _KELVIN)

    def illumination_of(self, i: int) -> float:
        return float(self.illum[i])

    def solar_w_of(self, i: int) -> float:
        return float(self.solar_w[i])

    def load_w_of(self, i: int) -> float:
        return float(self.load_w[i])

    def upsets_of(self, i: int) -> int:
        return int(self.upsets[i])

    def position_of(self, i: int) -> F:
        return np.asarray(self.position[i], dtype=np.float64)

    def geodetic_of(self, i: int) -> tuple[float, float, float]:
        lat, lon, alt = ecef_to_geodetic(eci_to_ecef(self.position[i : i + 1], self.t))
        return float(lat[0]), float(lon[0]), float(alt[0])

    def beta_deg_of(self, i: int, now: float) -> float:
        return float(sun.beta_angle_deg(self.orbits, now)[i])
