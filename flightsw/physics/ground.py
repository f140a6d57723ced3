"""Ground stations: elevation, contact windows (passes) and contact masks.

A satellite is in contact when its elevation above the station's local horizontal (the
WGS-84 ellipsoid normal) exceeds the mask. No refraction, no terrain.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from flightsw.exceptions import ConfigError
from flightsw.physics.events import BoolArray, IntArray, find_intervals
from flightsw.physics.frames import FloatArray, geodetic_to_ecef, gmst_rad, rotate_z
from flightsw.physics.orbit import Orbits

__all__ = [
    "Pass",
    "Station",
    "contact_windows",
    "elevation_deg",
    "in_contact",
]

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


@dataclass(frozen=True)
class Station:
    """A ground station at WGS-84 geodetic latitude/longitude (deg) and height (m)."""

    name: str
    lat_deg: float
    lon_deg: float
    alt_m: float = 0.0

    def __post_init__(self) -> None:
        if not -90.0 <= self.lat_deg <= 90.0:
            raise ConfigError(f"station {self.name!r}: latitude {self.lat_deg!r} not in [-90, 90]")
        if not -180.0 <= self.lon_deg <= 360.0:
            raise ConfigError(
                f"station {self.name!r}: longitude {self.lon_deg!r} not in [-180, 360]"
            )
        if not -500.0 <= self.alt_m <= 100_000.0:
            raise ConfigError(f"station {self.name!r}: altitude {self.alt_m!r} m not plausible")

    @classmethod
    def parse(cls, text: str, name: str = "station") -> Station:
        """Parse ``"LAT,LON[,ALT_M]"`` (degrees, degrees, metres)."""
        parts = [p.strip() for p in text.split(",")]
        if len(parts) not in (2, 3):
            raise ConfigError(f"station: expected LAT,LON[,ALT_M], got {text!r}")
        try:
            values = [float(p) for p in parts]
        except ValueError as exc:
            raise ConfigError(f"station: {text!r} has a non-numeric field") from exc
        if not all(math.isfinite(v) for v in values):
            raise ConfigError(f"station: {text!r} has a non-finite field")
        return cls(name, values[0], values[1], values[2] if len(values) == 3 else 0.0)

    @property
    def ecef_km(self) -> FloatArray:
        """Station position, Earth-fixed, km, (3,)."""
        return geodetic_to_ecef(self.lat_deg, self.lon_deg, self.alt_m / 1000.0)

    @property
    def up(self) -> FloatArray:
        """Local vertical (ellipsoid normal), Earth-fixed unit vector, (3,)."""
        lat, lon = math.radians(self.lat_deg), math.radians(self.lon_deg)
        return np.array(
            [math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat)]
        )


@dataclass(frozen=True)
class Pass:
    """One contact window: acquisition and loss of signal (POSIX s) and peak elevation.

    ``tca`` is the time of the peak elevation. A pass cut by the window's start or end has
    ``aos``/``los`` at that end and its peak is the highest point inside the window.
    """

    aos: float
    los: float
    max_elevation_deg: float
    tca: float = math.nan

    @property
    def duration_s(self) -> float:
        return self.los - self.aos


def _elevation_gmst(r_eci: FloatArray, gmst: npt.ArrayLike, station: Station) -> FloatArray:
    r_ecef = rotate_z(r_eci, gmst)
    rho = r_ecef - station.ecef_km
    dist = np.linalg.norm(rho, axis=-1)
    return np.asarray(np.degrees(np.arcsin(np.clip((rho @ station.up) / dist, -1.0, 1.0))))


def elevation_deg(r_eci: npt.ArrayLike, t: npt.ArrayLike, station: Station) -> FloatArray:
    """Elevation (deg) of ECI positions (..., 3) seen from ``station`` at time(s) ``t``.

    ``t`` is a scalar or broadcasts against ``r_eci[..., 0]``.
    """
    return _elevation_gmst(np.asarray(r_eci, dtype=np.float64), gmst_rad(t), station)


def in_contact(
    r_eci: npt.ArrayLike,
    t: float,
    stations: Sequence[Station],
    min_elevation_deg: float | Sequence[float] = 10.0,
) -> BoolArray:
    """(N, S) mask: satellite n is above station s's elevation mask at time ``t``."""
    r = np.asarray(r_eci, dtype=np.float64).reshape(-1, 3)
    masks = np.broadcast_to(np.asarray(min_elevation_deg, dtype=np.float64), (len(stations),))
    g = gmst_rad(t)
    out = np.empty((r.shape[0], len(stations)), dtype=bool)
    for j, st in enumerate(stations):
        out[:, j] = _elevation_gmst(r, g, st) > masks[j]
    return out


def contact_windows(
    orbits: Orbits,
    station: Station,
    start: float,
    end: float,
    min_elevation_deg: float = 10.0,
    step_s: float = 10.0,
    earth_rotation: bool = True,
    *,
    tol_s: float = 0.1,
) -> list[list[Pass]]:
    """Per satellite, the passes over ``station`` within [start, end].

    AOS/LOS are bisected to ``tol_s``; the peak elevation is found by golden-section
    search. With ``earth_rotation=False`` the Earth is frozen at its orientation at
    ``start`` (for checks against inertial geometry).
    """
    if not -90.0 <= min_elevation_deg < 90.0:
        raise ConfigError(f"min_elevation_deg: {min_elevation_deg!r} not in [-90, 90)")
    g0 = float(gmst_rad(start))

    def gmst_of(t: FloatArray) -> FloatArray:
        return gmst_rad(t) if earth_rotation else np.full_like(t, g0)

    def visible(r: FloatArray, t: FloatArray, _idx: IntArray) -> BoolArray:
        return _elevation_gmst(r, gmst_of(t), station) > min_elevation_deg

    windows = find_intervals(orbits, start, end, visible, step_s=step_s, tol_s=tol_s)
    sat_list = [i for i, w in enumerate(windows) for _ in w]
    if not sat_list:
        return [[] for _ in windows]
    sat = np.array(sat_list, dtype=np.intp)
    a = np.array([iv[0] for w in windows for iv in w])
    b = np.array([iv[1] for w in windows for iv in w])

    def elev(t: FloatArray) -> FloatArray:
        return _elevation_gmst(orbits.positions_at(t, sat), gmst_of(t), station)

    # Golden-section search for the peak, all passes at once (elevation is unimodal in a
    # pass; for a pass cut by the window the search converges to the higher edge).
    c = b - _GOLDEN * (b - a)
    d = a + _GOLDEN * (b - a)
    fc, fd = elev(c), elev(d)
    while float(np.max(b - a)) > tol_s:
        left = fc > fd  # peak in [a, d]
        b = np.where(left, d, b)
        a = np.where(left, a, c)
        new_c = b - _GOLDEN * (b - a)
        new_d = a + _GOLDEN * (b - a)
        c_next = np.where(left, new_c, d)
        d_next = np.where(left, c, new_d)
        probe = np.where(left, c_next, d_next)
        f_probe = elev(probe)
        fc, fd = np.where(left, f_probe, fd), np.where(left, fc, f_probe)
        c, d = c_next, d_next
    tca = 0.5 * (a + b)
    peak = elev(tca)
    result: list[list[Pass]] = [[] for _ in windows]
    k = 0
    for i, w in enumerate(windows):
        for aos, los in w:
            result[i].append(Pass(aos, los, float(peak[k]), float(tca[k])))
            k += 1
    return result
