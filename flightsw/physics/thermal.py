"""Lumped-node thermal model (one temperature per satellite), as in CubeSat analyses.

    m c dT/dt = alpha A_s S lit + alpha A_a S a F_E lit + eps A_e q_IR F_E + P_internal
                - eps sigma A_rad (T^4 - T_sink^4)

with q_IR = 237 W/m^2, albedo a = 0.3, view factor F_E = (R_E / r)^2 and T_sink = 3 K.
P_internal is the whole electrical load (it all ends as heat).

One deviation from the brief's equation: the albedo term is multiplied by ``lit``.
Albedo is reflected sunlight; in the Earth's shadow the satellite sees the night side, so
counting albedo in eclipse overstates eclipse heating by alpha A_a S a F_E (tens of W for
square-metre areas).

Integration: backward (implicit) Euler, solved per step by Newton's method, in sub-steps of
at most ``max_substep_s``. It is unconditionally stable and monotone, so a step far longer
than the time constant m c / (4 eps sigma A T^3) lands on the equilibrium instead of
oscillating; for steps short against the time constant it is first-order accurate.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from flightsw.exceptions import ConfigError
from flightsw.physics.constants import (
    ALBEDO,
    EARTH_IR_W_M2,
    R_EARTH,
    SIGMA,
    SOLAR_CONSTANT,
    T_SINK_K,
)
from flightsw.physics.frames import FloatArray

__all__ = [
    "HeatFlows",
    "ThermalParams",
    "equilibrium_temperature_k",
    "heat_flows",
    "radiated_flux_w_m2",
    "step_temperature",
    "time_constant_s",
    "view_factor",
]


@dataclass
class ThermalParams:
    """Thermal parameters; each field a scalar or an (N,) array (one per satellite).

    ``heat_capacity_j_per_k`` is m c of the lumped node; the areas are the projected
    areas seen by the sun (``sun_area_m2``), by albedo and Earth IR, and the radiating area
    (``radiator_area_m2``); ``emissivity`` applies to emission and to Earth-IR absorption,
    ``absorptivity`` to sunlight and albedo.
    """

    heat_capacity_j_per_k: FloatArray | float
    radiator_area_m2: FloatArray | float
    emissivity: FloatArray | float
    absorptivity: FloatArray | float
    sun_area_m2: FloatArray | float = 0.0
    albedo_area_m2: FloatArray | float = 0.0
    earth_ir_area_m2: FloatArray | float = 0.0
    sink_temperature_k: FloatArray | float = T_SINK_K

    def __post_init__(self) -> None:
        for f in fields(self):
            value = np.asarray(getattr(self, f.name), dtype=np.float64)
            if not np.all(np.isfinite(value)) or np.any(value < 0.0):
                raise ConfigError(f"{f.name}: must be finite and >= 0")
            if f.name in ("emissivity", "absorptivity") and np.any(value > 1.0):
                raise ConfigError(f"{f.name}: must be within [0, 1]")
            setattr(self, f.name, value)
        if np.any(np.asarray(self.heat_capacity_j_per_k) <= 0.0):
            raise ConfigError("heat_capacity_j_per_k: must be > 0")
        if np.any(np.asarray(self.emissivity) * np.asarray(self.radiator_area_m2) <= 0.0):
            raise ConfigError("emissivity, radiator_area_m2: the radiator must emit (both > 0)")


@dataclass(frozen=True)
class HeatFlows:
    """Heat flows into (absorbed) and out of (radiated) each node, W."""

    solar_w: FloatArray
    albedo_w: FloatArray
    earth_ir_w: FloatArray
    internal_w: FloatArray
    radiated_w: FloatArray

    @property
    def absorbed_w(self) -> FloatArray:
        return np.asarray(self.solar_w + self.albedo_w + self.earth_ir_w + self.internal_w)

    @property
    def net_w(self) -> FloatArray:
        return np.asarray(self.absorbed_w - self.radiated_w)


def _f(x: FloatArray | float) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def view_factor(r_km: npt.ArrayLike) -> FloatArray:
    """Earth view factor (R_E / r)^2 for orbital radius ``r_km`` (distance from the centre)."""
    r = np.asarray(r_km, dtype=np.float64)
    if np.any(r < R_EARTH):
        raise ConfigError("r_km: orbital radius below the Earth's surface")
    return np.asarray((R_EARTH / r) ** 2)


def radiated_flux_w_m2(t_k: npt.ArrayLike, emissivity: npt.ArrayLike = 0.9) -> FloatArray:
    """eps sigma T^4, W/m^2 (eps 0.9: 377 W/m^2 at 20 C, 629 W/m^2 at 60 C)."""
    t = np.asarray(t_k, dtype=np.float64)
    return np.asarray(np.asarray(emissivity, dtype=np.float64) * SIGMA * t**4)


def _absorbed_w(
    params: ThermalParams,
    illumination: npt.ArrayLike,
    view_factor: npt.ArrayLike,
    p_internal_w: npt.ArrayLike,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    lit = np.asarray(illumination, dtype=np.float64)
    fe = np.asarray(view_factor, dtype=np.float64)
    alpha, eps = _f(params.absorptivity), _f(params.emissivity)
    solar = alpha * _f(params.sun_area_m2) * SOLAR_CONSTANT * lit
    albedo = alpha * _f(params.albedo_area_m2) * SOLAR_CONSTANT * ALBEDO * fe * lit
    earth_ir = eps * _f(params.earth_ir_area_m2) * EARTH_IR_W_M2 * fe
    internal = np.asarray(p_internal_w, dtype=np.float64)
    return solar, albedo, earth_ir, internal


def heat_flows(
    params: ThermalParams,
    t_k: npt.ArrayLike,
    illumination: npt.ArrayLike,
    view_factor: npt.ArrayLike,
    p_internal_w: npt.ArrayLike,
) -> HeatFlows:
    """Every term of the heat balance at temperature ``t_k``, W."""
    solar, albedo, earth_ir, internal = _absorbed_w(params, illumination, view_factor, p_internal_w)
    t = np.asarray(t_k, dtype=np.float64)
    k = _f(params.emissivity) * SIGMA * _f(params.radiator_area_m2)
    radiated = k * (t**4 - _f(params.sink_temperature_k) ** 4)
    solar, albedo, earth_ir, internal = (
        np.array(x, dtype=np.float64)
        for x in np.broadcast_arrays(solar, albedo, earth_ir, internal)
    )
    return HeatFlows(solar, albedo, earth_ir, internal, np.asarray(radiated))


def equilibrium_temperature_k(
    params: ThermalParams,
    illumination: npt.ArrayLike,
    view_factor: npt.ArrayLike,
    p_internal_w: npt.ArrayLike,
) -> FloatArray:
    """Steady-state temperature for constant inputs, K.

    Absorbed heat does not depend on T in this model, so the balance
    Q = eps sigma A (T^4 - T_sink^4) has the root T = (Q / (eps sigma A) + T_sink^4)^(1/4).
    """
    q = sum(_absorbed_w(params, illumination, view_factor, p_internal_w))
    k = _f(params.emissivity) * SIGMA * _f(params.radiator_area_m2)
    return np.asarray((np.maximum(q, 0.0) / k + _f(params.sink_temperature_k) ** 4) ** 0.25)


def time_constant_s(params: ThermalParams, t_k: npt.ArrayLike) -> FloatArray:
    """Linearised thermal time constant m c / (4 eps sigma A T^3), s."""
    t = np.asarray(t_k, dtype=np.float64)
    k = _f(params.emissivity) * SIGMA * _f(params.radiator_area_m2)
    return np.asarray(_f(params.heat_capacity_j_per_k) / (4.0 * k * t**3))


def step_temperature(
    t_k: npt.ArrayLike,
    params: ThermalParams,
    illumination: npt.ArrayLike,
    view_factor: npt.ArrayLike,
    p_internal_w: npt.ArrayLike,
    dt_s: float,
    *,
    max_substep_s: float = 60.0,
) -> FloatArray:
    """Temperature after ``dt_s`` of constant inputs (implicit Euler, Newton-solved), K."""
    if dt_s < 0:
        raise ConfigError(f"dt_s: must be >= 0, got {dt_s!r}")
    if not max_substep_s > 0:
        raise ConfigError(f"max_substep_s: must be > 0, got {max_substep_s!r}")
    t = np.asarray(t_k, dtype=np.float64)
    if dt_s == 0:
        return t.copy()
    q = sum(_absorbed_w(params, illumination, view_factor, p_internal_w))
    k = _f(params.emissivity) * SIGMA * _f(params.radiator_area_m2)
    c = _f(params.heat_capacity_j_per_k)
    q_total = q + k * _f(params.sink_temperature_k) ** 4
    t_eq = (np.maximum(q_total, 0.0) / k) ** 0.25
    n_sub = min(1000, max(1, int(np.ceil(dt_s / max_substep_s))))
    h = dt_s / n_sub
    for _ in range(n_sub):
        prev = t
        # f(x) = c (x - prev) - h (q_total - k x^4) is increasing and convex for x > 0, so
        # Newton from a point at or above the root (max(prev, t_eq)) descends monotonically.
        x = np.maximum(prev, t_eq)
        for _ in range(50):
            fx = c * (x - prev) - h * (q_total - k * x**4)
            step = fx / (c + 4.0 * h * k * x**3)
            x = x - step
            if float(np.max(np.abs(step))) < 1e-9:
                break
        t = x
    return np.asarray(t)
