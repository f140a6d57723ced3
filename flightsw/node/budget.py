"""Power, thermal and radiation state of N nodes, advanced together (one row per node).

The emulated node is one row; the simulator holds every satellite of a constellation in
one ``Budget`` and advances them with one vectorised step. Compute power comes in as the
*modelled* average watts of each row over the step, never as host time.

The energy forecast answers the admission question of the onboard scheduler: how much
energy can be spent now and still keep the battery above the depth-of-discharge floor
through the end of the next eclipse, given the bus's baseline load. The margin it gives is
net of the forecast's own error when an eclipse is ahead (its edges sampled every 30 s,
illumination sampled at the end of each physics step): :data:`EDGE_PAD_S` seconds of bus
load. A cold
node's heaters count in the baseline. :meth:`Budget.outlook` gives one row's eclipse
timeline for a job that runs past the next eclipse (:mod:`flightsw.node.outlook`).

Beside the real battery, each row keeps a *bus-only* twin: the same battery stepped with
compute off (bus, idle module and heaters only). Seconds the twin spends below the floor are
seconds no scheduler could have saved (``bus_floor_violation_s``); the metrics report them
apart from the real ``floor_violation_s``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from flightsw.node.outlook import Outlook
from flightsw.physics import power, radiation, sun, thermal
from flightsw.physics.frames import ecef_to_geodetic, eci_to_ecef
from flightsw.physics.orbit import Orbits
from hardware_profiles import HardwareProfile

__all__ = ["EDGE_PAD_S", "HEATER_WATCH_K", "Budget"]

F = npt.NDArray[np.float64]
_KELVIN = 273.15
_FORECAST_STEP_S = 30.0  # sampling step of the eclipse scan
_FORECAST_ORBITS = 1.5  # forecast horizon
_SCHEDULE_ORBITS = 3.0  # span of one eclipse scan (rescanned every ~1.5 orbits)
_FORECAST_MAX_AGE_S = 10.0
_SCAN_BLOCK = 2_000_000  # positions per block of the eclipse scan (48 MB of float64)
#: seconds of bus load the margin keeps aside for the forecast's own error: an eclipse edge
#: sampled every 30 s at each end, and a physics step of up to 30 s sampled at its end
EDGE_PAD_S = 3.0 * _FORECAST_STEP_S
#: a node this close to its lowest operating temperature counts its heaters as bus load
HEATER_WATCH_K = 15.0


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
    base_w: F  # the baseline load it assumed (:meth:`Budget.baseline_w`)


@dataclass(slots=True)
class _Schedule:
    """Eclipse intervals of every row over [t0, t1], NaN-padded to (N, K)."""

    t0: float
    t1: float
    start: F
    end: F


def _geocentric_deg(r_ecef: F) -> tuple[F, F]:
    """Geocentric latitude and longitude, deg (within 0.2 deg of geodetic: enough for the
    SAA boundary, and far cheaper than the iterative geodetic conversion)."""
    x, y, z = r_ecef[:, 0], r_ecef[:, 1], r_ecef[:, 2]
    return np.degrees(np.arctan2(z, np.hypot(x, y))), np.degrees(np.arctan2(y, x))


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
        self.bus_battery_wh = self.battery_wh.copy()  # the twin with compute off
        self.bus_floor_violation_s = np.zeros(n)
        self.thermal_violation_s = np.zeros(n)
        self.max_c = _col(profiles, lambda p: p.thermal.max_c)
        self._forecast: _Forecast | None = None
        self._schedule: _Schedule | None = None
        self._consts: tuple[list[float], list[float], list[float]] | None = None
        self._deficit: tuple[_Forecast, npt.NDArray[np.bool_]] | None = None
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
        bus = load - compute_w + np.minimum(compute_w, self.idle_w)
        self.bus_battery_wh, _ = power.step_battery(self.bus_battery_wh, self.solar_w, bus, dt,
                                                    self.power)
        self.bus_floor_violation_s += np.where(self.bus_battery_wh < self.floor_wh - 1e-9, dt,
                                               0.0)
        vf = thermal.view_factor(np.linalg.norm(self.position, axis=1))
        self.temperature_k = thermal.step_temperature(
            self.temperature_k, self.thermal, self.illum, vf, load, dt
        )
        saa = radiation.in_saa(*_geocentric_deg(eci_to_ecef(self.position, t)))
        self.upsets += radiation.sample_upsets(
            self.rng, self.upset_rate, self.memory_bits, dt, saa, self.saa_factor
        )
        self.floor_violation_s += np.where(self.battery_wh < self.floor_wh - 1e-9, dt, 0.0)
        self.thermal_violation_s += np.where(self.temperature_k - _KELVIN > self.max_c, dt, 0.0)
        self.t = t

    # -- forecast ------------------------------------------------------------------------
    def _scan(self, t0: float) -> _Schedule:
        """Sample every row's illumination over ``_SCHEDULE_ORBITS`` from ``t0`` (30 s
        steps) and keep the dark intervals (illumination < 0.5). An eclipse in progress at
        ``t0`` starts at ``t0``; one still going at the end of the scan ends there."""
        span = _SCHEDULE_ORBITS * float(np.max(self.orbits.period_s))
        times = t0 + np.arange(0.0, span + _FORECAST_STEP_S, _FORECAST_STEP_S)
        n = self.n
        dark = np.empty((len(times), n), dtype=bool)
        rows = max(1, _SCAN_BLOCK // max(n, 1))
        for k0 in range(0, len(times), rows):
            tk = times[k0 : k0 + rows]
            pos = self.orbits.positions_many(tk)  # (T, N, 3)
            sun_pos = sun.sun_position_km(tk)
            dark[k0 : k0 + len(tk)] = sun.illumination(pos, sun_pos[:, None, :]) < 0.5
        before = np.vstack((np.zeros((1, n), dtype=bool), dark))
        after = np.vstack((dark, np.zeros((1, n), dtype=bool)))
        st_k, st_n = np.nonzero(after & ~before)  # first dark sample of each interval
        en_k, en_n = np.nonzero(before & ~after)  # first lit sample after it
        # order by row, then time: the i-th start and i-th end of a row pair up
        o_s = np.lexsort((st_k, st_n))
        o_e = np.lexsort((en_k, en_n))
        st_k, st_n, en_k = st_k[o_s], st_n[o_s], en_k[o_e]
        counts = np.bincount(st_n, minlength=n)
        k_max = max(1, int(counts.max()) if counts.size else 1)
        rank = np.arange(len(st_n)) - np.repeat(np.cumsum(counts) - counts, counts)
        start = np.full((n, k_max), np.nan)
        end = np.full((n, k_max), np.nan)
        ends = np.append(times, times[-1])[en_k]  # past the last sample: the scan end
        start[st_n, rank] = times[st_k]
        end[st_n, rank] = ends
        return _Schedule(float(times[0]), float(times[-1]), start, end)

    def forecast(self, now: float) -> _Forecast:
        """Baseline battery trajectory to the end of the next eclipse (cached briefly).

        The eclipse intervals come from a scan of ~3 orbits (refreshed every ~1.5 orbits);
        between them the battery follows the baseline load (bus + idle compute) with the
        array fully lit in sunlight and dark in eclipse, clamped at capacity, so the lowest
        level of the window is found in closed form for all rows at once.
        """
        fc = self._forecast
        if fc is not None and 0 <= now - fc.t < _FORECAST_MAX_AGE_S:
            return fc
        horizon = _FORECAST_ORBITS * float(np.max(self.orbits.period_s))
        sch = self._schedule
        if sch is None or now < sch.t0 or now + horizon > sch.t1:
            sch = self._schedule = self._scan(now)
        h_end = now + horizon
        with np.errstate(invalid="ignore"):
            valid = (sch.end > now) & (sch.start < h_end)
        has = valid.any(axis=1)
        idx = np.argmax(valid, axis=1)
        rows = np.arange(self.n)
        start = np.where(has, np.maximum(sch.start[rows, idx], now), np.nan)
        end = np.where(has, np.minimum(sch.end[rows, idx], h_end), np.nan)
        base = self.baseline_w()
        eta_c = np.asarray(self.power.charge_efficiency, dtype=np.float64)
        eta_d = np.asarray(self.power.discharge_efficiency, dtype=np.float64)
        net_sun = np.asarray(power.solar_power_w(self.power, 1.0, 1.0)) - base
        rate_sun = np.where(net_sun > 0, net_sun * eta_c, net_sun / eta_d) / 3600.0  # Wh/s
        rate_dark = -base / eta_d / 3600.0
        e0 = self.battery_wh
        lit_s = np.where(has, start - now, horizon)
        at_start = np.minimum(e0 + rate_sun * lit_s, self.capacity_wh)
        at_end = at_start + np.where(has, rate_dark * (end - start), 0.0)
        low = np.minimum(np.minimum(e0, at_start), at_end)
        pad = np.where(has, EDGE_PAD_S * base / eta_d / 3600.0, 0.0)  # eclipse edges
        min_delta = np.minimum(0.0, low - e0) - pad
        self._forecast = _Forecast(now, e0.copy(), min_delta, start, end, base)
        return self._forecast

    def baseline_w(self) -> F:
        """Bus load with compute idle, each row: bus, idle module, and the heaters of a row
        within ``HEATER_WATCH_K`` of its lowest operating temperature."""
        cold = self.temperature_k - _KELVIN < self.min_c + HEATER_WATCH_K
        return np.asarray(self.base_load_w + self.idle_w + np.where(cold, self.heater_w, 0.0),
                          dtype=np.float64)

    def outlook(self, i: int, now: float) -> Outlook:
        """Row ``i``'s battery, rates and eclipse timeline from ``now`` (what the core needs to
        admit a job that runs past the next eclipse)."""
        fc = self.forecast(now)
        sch = self._schedule
        assert sch is not None
        eclipses = tuple((max(s, now), e) for s, e in zip(sch.start[i].tolist(),
                                                           sch.end[i].tolist(), strict=True)
                         if e > now)  # NaN pads compare false
        c = self._consts
        if c is None:
            c = self._consts = (
                np.asarray(power.solar_power_w(self.power, 1.0, 1.0)).tolist(),
                np.asarray(self.power.charge_efficiency * np.ones(self.n)).tolist(),
                np.asarray(self.power.discharge_efficiency * np.ones(self.n)).tolist(),
            )
        eta_d = c[2][i]
        base = float(fc.base_w[i])
        return Outlook(
            now=now,
            battery_wh=float(self.battery_wh[i]),
            floor_wh=float(self.floor_wh[i])
            + (EDGE_PAD_S * base / eta_d / 3600.0 if eclipses else 0.0),
            capacity_wh=float(self.capacity_wh[i]),
            solar_w=c[0][i],
            base_w=base,
            idle_w=float(self.idle_w[i]),
            eta_c=c[1][i],
            eta_d=eta_d,
            eclipses=eclipses,
            horizon=sch.t1,
            deficit=bool(self.deficit(now)[i]),
        )

    def deficit(self, now: float) -> npt.NDArray[np.bool_]:
        """Rows whose bus alone (compute idle) loses energy over the scanned orbits: array
        output over the lit share of the scan, against the baseline load."""
        fc = self.forecast(now)
        if self._deficit is not None and self._deficit[0] is fc:
            return self._deficit[1]
        sch = self._schedule
        assert sch is not None
        span = max(sch.t1 - sch.t0, 1.0)
        with np.errstate(invalid="ignore"):
            dark = np.nansum(np.clip(sch.end - sch.start, 0.0, None), axis=1)
        lit = 1.0 - np.minimum(dark / span, 1.0)
        sun_w = np.asarray(power.solar_power_w(self.power, 1.0, 1.0))
        eta_c = np.asarray(self.power.charge_efficiency, dtype=np.float64)
        eta_d = np.asarray(self.power.discharge_efficiency, dtype=np.float64)
        day = sun_w - fc.base_w
        gain = np.where(day > 0, day * eta_c, day / eta_d) * lit - fc.base_w / eta_d * (1 - lit)
        out = np.asarray(gain < 0.0)
        self._deficit = (fc, out)  # until the forecast is refreshed
        return out

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
