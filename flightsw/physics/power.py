"""Solar array and battery, vectorised over satellites (one array element per satellite).

Array power (brief section 4):
    P_solar = S * eta * A * max(0, cos incidence) * (1 - degradation) * lit
with S = 1361 W/m^2 (no 1/r^2 seasonal variation, +-3.4 %). Arrays are assumed to track the
sun (``cos_incidence = 1``, the default), as on a sun-pointing compute satellite; pass
:func:`cos_incidence` of a body-fixed panel normal otherwise.

Battery: a surplus charges at ``charge_efficiency``; a deficit drains
``deficit / discharge_efficiency``; energy is clamped to [0, capacity]. The
depth-of-discharge floor ``dod_floor * capacity`` is not enforced here (the battery can go
below it physically); the onboard scheduler uses :func:`floor_wh` / :func:`max_load_w`
as a hard planning budget.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from flightsw.exceptions import ConfigError
from flightsw.physics.constants import SOLAR_CONSTANT
from flightsw.physics.events import BoolArray
from flightsw.physics.frames import FloatArray

__all__ = [
    "SUN_TRACKING_COS_INCIDENCE",
    "BatteryStep",
    "PowerParams",
    "cos_incidence",
    "floor_wh",
    "max_load_w",
    "max_sustainable_load_w",
    "orbit_average_solar_w",
    "orbit_energy_balance_wh",
    "solar_power_w",
    "step_battery",
]

SUN_TRACKING_COS_INCIDENCE = 1.0

_UNIT_FIELDS = (
    "cell_efficiency",
    "degradation",
    "charge_efficiency",
    "discharge_efficiency",
    "dod_floor",
)


@dataclass
class PowerParams:
    """Power-system parameters; each field a scalar or an (N,) array (one per satellite).

    ``dod_floor`` is the minimum allowed charge as a fraction of capacity (0.3 = never
    plan below 30 %). Values are stored as float64 arrays after validation.
    """

    array_area_m2: FloatArray | float
    cell_efficiency: FloatArray | float
    degradation: FloatArray | float
    capacity_wh: FloatArray | float
    charge_efficiency: FloatArray | float = 0.95
    discharge_efficiency: FloatArray | float = 0.95
    dod_floor: FloatArray | float = 0.3

    def __post_init__(self) -> None:
        for f in fields(self):
            value = np.asarray(getattr(self, f.name), dtype=np.float64)
            if not np.all(np.isfinite(value)):
                raise ConfigError(f"{f.name}: must be finite")
            if f.name in _UNIT_FIELDS and np.any((value < 0.0) | (value > 1.0)):
                raise ConfigError(f"{f.name}: must be within [0, 1]")
            if f.name in ("array_area_m2", "capacity_wh") and np.any(value < 0.0):
                raise ConfigError(f"{f.name}: must be >= 0")
            if f.name in ("charge_efficiency", "discharge_efficiency") and np.any(value <= 0.0):
                raise ConfigError(f"{f.name}: must be > 0")
            setattr(self, f.name, value)


@dataclass(frozen=True)
class BatteryStep:
    """What one battery step did, per satellite (Wh over the step).

    ``stored_wh``: energy added to the battery (after charge losses); ``drawn_wh``: energy
    taken out of it (before discharge losses); ``spilled_wh``: solar surplus that could not
    be stored (battery full), bus side; ``unmet_wh``: load the empty battery could not
    supply, bus side.
    """

    stored_wh: FloatArray
    drawn_wh: FloatArray
    spilled_wh: FloatArray
    unmet_wh: FloatArray

    @property
    def brownout(self) -> BoolArray:
        """True where part of the load went unserved."""
        return np.asarray(self.unmet_wh > 0.0)


def _f(x: FloatArray | float) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def cos_incidence(panel_normal_eci: npt.ArrayLike, sun_dir_eci: npt.ArrayLike) -> FloatArray:
    """Cosine of the sun's incidence on panels with unit normals (..., 3); may be negative."""
    n = np.asarray(panel_normal_eci, dtype=np.float64)
    s = np.asarray(sun_dir_eci, dtype=np.float64)
    return np.asarray(np.sum(n * s, axis=-1))


def solar_power_w(
    params: PowerParams,
    illumination: npt.ArrayLike,
    cos_incidence: npt.ArrayLike = SUN_TRACKING_COS_INCIDENCE,
) -> FloatArray:
    """Array output, W: S * eta * A * max(0, cos) * (1 - degradation) * lit."""
    lit = np.asarray(illumination, dtype=np.float64)
    cos = np.maximum(0.0, np.asarray(cos_incidence, dtype=np.float64))
    return np.asarray(
        SOLAR_CONSTANT
        * _f(params.cell_efficiency)
        * _f(params.array_area_m2)
        * cos
        * (1.0 - _f(params.degradation))
        * lit
    )


def step_battery(
    energy_wh: npt.ArrayLike,
    solar_w: npt.ArrayLike,
    load_w: npt.ArrayLike,
    dt_s: float,
    params: PowerParams,
) -> tuple[FloatArray, BatteryStep]:
    """Advance stored energy by ``dt_s`` with constant solar and load power."""
    if dt_s < 0:
        raise ConfigError(f"dt_s: must be >= 0, got {dt_s!r}")
    e = np.asarray(energy_wh, dtype=np.float64)
    net_wh = (np.asarray(solar_w, dtype=np.float64) - np.asarray(load_w, dtype=np.float64)) * (
        dt_s / 3600.0
    )
    eta_c, eta_d, cap = (
        _f(params.charge_efficiency),
        _f(params.discharge_efficiency),
        _f(params.capacity_wh),
    )
    delta = np.where(net_wh >= 0.0, net_wh * eta_c, net_wh / eta_d)
    raw = e + delta
    new = np.clip(raw, 0.0, cap)
    over = np.maximum(raw - cap, 0.0)
    under = np.maximum(-raw, 0.0)
    info = BatteryStep(
        stored_wh=np.asarray(np.maximum(new - e, 0.0)),
        drawn_wh=np.asarray(np.maximum(e - new, 0.0)),
        spilled_wh=np.asarray(over / eta_c),
        unmet_wh=np.asarray(under * eta_d),
    )
    return np.asarray(new), info


def floor_wh(params: PowerParams) -> FloatArray:
    """Lowest energy the scheduler may plan to reach: ``dod_floor * capacity``, Wh."""
    return np.asarray(_f(params.dod_floor) * _f(params.capacity_wh))


def max_load_w(
    energy_wh: npt.ArrayLike, solar_w: npt.ArrayLike, dt_s: float, params: PowerParams
) -> FloatArray:
    """Largest constant load over ``dt_s`` that keeps the battery at or above the floor, W."""
    if not dt_s > 0:
        raise ConfigError(f"dt_s: must be > 0, got {dt_s!r}")
    margin_wh = np.asarray(energy_wh, dtype=np.float64) - floor_wh(params)
    solar = np.asarray(solar_w, dtype=np.float64)
    # Below the floor only the solar input may be spent (and the battery must not drain).
    extra = np.where(margin_wh > 0.0, margin_wh * _f(params.discharge_efficiency), 0.0)
    return np.asarray(solar + extra * 3600.0 / dt_s)


def orbit_average_solar_w(
    params: PowerParams,
    sunlit_fraction: npt.ArrayLike,
    cos_incidence: npt.ArrayLike = SUN_TRACKING_COS_INCIDENCE,
) -> FloatArray:
    """Orbit-average array output, W, for a sunlit fraction of the orbit (or a mean lit)."""
    return solar_power_w(params, sunlit_fraction, cos_incidence)


def orbit_energy_balance_wh(
    params: PowerParams,
    period_s: npt.ArrayLike,
    sunlit_fraction: npt.ArrayLike,
    load_w: npt.ArrayLike,
    cos_incidence: npt.ArrayLike = SUN_TRACKING_COS_INCIDENCE,
) -> FloatArray:
    """Net battery energy gained per orbit, Wh, with a constant load (positive: sustainable).

    In sunlight the array feeds the load and charges the battery with the surplus (or the
    battery covers a shortfall); in eclipse the battery carries the whole load.
    """
    f = np.asarray(sunlit_fraction, dtype=np.float64)
    p_s = solar_power_w(params, 1.0, cos_incidence)
    load = np.asarray(load_w, dtype=np.float64)
    hours = np.asarray(period_s, dtype=np.float64) / 3600.0
    eta_c, eta_d = _f(params.charge_efficiency), _f(params.discharge_efficiency)
    day = p_s - load
    day_wh = np.where(day >= 0.0, day * eta_c, day / eta_d) * f * hours
    night_wh = -load / eta_d * (1.0 - f) * hours
    return np.asarray(day_wh + night_wh)


def max_sustainable_load_w(
    params: PowerParams,
    sunlit_fraction: npt.ArrayLike,
    cos_incidence: npt.ArrayLike = SUN_TRACKING_COS_INCIDENCE,
) -> FloatArray:
    """Constant load that leaves the battery's charge unchanged over an orbit, W.

    Solves f (P - L) eta_c = (1 - f) L / eta_d for L.
    """
    f = np.asarray(sunlit_fraction, dtype=np.float64)
    p_s = solar_power_w(params, 1.0, cos_incidence)
    eta_c, eta_d = _f(params.charge_efficiency), _f(params.discharge_efficiency)
    return np.asarray(f * p_s * eta_c / (f * eta_c + (1.0 - f) / eta_d))
