"""Time scales and reference frames: GMST, ECI <-> ECEF, geodetic <-> ECEF (WGS-84).

The package's inertial frame ("ECI") is the true-equator, mean-equinox-of-date frame that
SGP4 produces (TEME). Rotating it by GMST about the z axis gives the Earth-fixed frame (the
pseudo-Earth-fixed frame of Vallado; polar motion, < 15 m, is ignored). UT1 is taken equal to
UTC (|UT1 - UTC| < 0.9 s, i.e. < 0.004 deg of Earth rotation, < 0.5 km on the ground).

All functions accept numpy arrays and broadcast; positions have a last axis of length 3.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from flightsw.physics.constants import (
    EARTH_FLATTENING,
    J2000_JD,
    R_EARTH,
    SECONDS_PER_DAY,
    UNIX_EPOCH_JD,
)

__all__ = [
    "FloatArray",
    "ecef_to_eci",
    "ecef_to_geodetic",
    "eci_to_ecef",
    "geodetic_to_ecef",
    "gmst_rad",
    "julian_date",
    "rotate_z",
]

FloatArray = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike

_E2 = EARTH_FLATTENING * (2.0 - EARTH_FLATTENING)  # first eccentricity squared, WGS-84


def julian_date(t: ArrayLike) -> FloatArray:
    """POSIX seconds (UTC) to Julian date (UTC scale)."""
    return UNIX_EPOCH_JD + np.asarray(t, dtype=np.float64) / SECONDS_PER_DAY


def gmst_rad(t: ArrayLike) -> FloatArray:
    """Greenwich mean sidereal time in radians, in [0, 2 pi), for POSIX seconds ``t``.

    IAU 1982 expression (Vallado, "Fundamentals of Astrodynamics", eq. 3-47), the one SGP4's
    TEME frame is defined with; UT1 = UTC.
    """
    tt = np.asarray(t, dtype=np.float64)
    days = (tt / SECONDS_PER_DAY) + (UNIX_EPOCH_JD - J2000_JD)
    cent = days / 36525.0
    # The 876600 h * 3600 s/h term per Julian century is exactly 86400 s per day: whole days
    # are whole turns, so only the day fraction is kept (this preserves precision).
    whole = np.floor(days)
    frac = days - whole
    seconds = (
        67310.54841
        + (frac * SECONDS_PER_DAY)  # 876600*3600 s/century == 86400 s per day
        + 8640184.812866 * cent
        + 0.093104 * cent**2
        - 6.2e-6 * cent**3
    )
    # 1 s of sidereal time = 2 pi / 86400 rad.
    return np.asarray(np.mod(seconds * (2.0 * np.pi / SECONDS_PER_DAY), 2.0 * np.pi))


def rotate_z(r: ArrayLike, angle: ArrayLike) -> FloatArray:
    """Rotate vectors ``r`` (..., 3) by ``angle`` (broadcast to r[..., 0]) about +z (frame)."""
    rr = np.asarray(r, dtype=np.float64)
    a = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    x, y, z = rr[..., 0], rr[..., 1], rr[..., 2]
    xr = c * x + s * y
    yr = -s * x + c * y
    return np.stack(np.broadcast_arrays(xr, yr, z), axis=-1)


def eci_to_ecef(r_eci: ArrayLike, t: ArrayLike) -> FloatArray:
    """ECI (TEME) to Earth-fixed: rotate by GMST(t). ``t`` broadcasts to ``r_eci[..., 0]``."""
    return rotate_z(r_eci, gmst_rad(t))


def ecef_to_eci(r_ecef: ArrayLike, t: ArrayLike) -> FloatArray:
    """Earth-fixed to ECI (TEME): rotate by -GMST(t)."""
    return rotate_z(r_ecef, -gmst_rad(t))


def geodetic_to_ecef(lat_deg: ArrayLike, lon_deg: ArrayLike, alt_km: ArrayLike) -> FloatArray:
    """WGS-84 geodetic latitude/longitude (deg) and height (km) to ECEF (km), shape (..., 3)."""
    lat = np.radians(np.asarray(lat_deg, dtype=np.float64))
    lon = np.radians(np.asarray(lon_deg, dtype=np.float64))
    h = np.asarray(alt_km, dtype=np.float64)
    lat, lon, h = np.broadcast_arrays(lat, lon, h)
    sin_lat = np.sin(lat)
    n = R_EARTH / np.sqrt(1.0 - _E2 * sin_lat**2)
    out = np.empty((*lat.shape, 3))
    out[..., 0] = (n + h) * np.cos(lat) * np.cos(lon)
    out[..., 1] = (n + h) * np.cos(lat) * np.sin(lon)
    out[..., 2] = (n * (1.0 - _E2) + h) * sin_lat
    return out


def ecef_to_geodetic(r_ecef: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """ECEF (km, (..., 3)) to WGS-84 (lat_deg, lon_deg, alt_km).

    Fixed-point iteration on latitude in a form that stays finite at the poles; five
    iterations converge to well under a millimetre for any height above -100 km.
    """
    rr = np.asarray(r_ecef, dtype=np.float64)
    x, y, z = rr[..., 0], rr[..., 1], rr[..., 2]
    p = np.hypot(x, y)
    lon = np.arctan2(y, x)
    lat = np.arctan2(z, p * (1.0 - _E2))
    for _ in range(5):
        sin_lat = np.sin(lat)
        n = R_EARTH / np.sqrt(1.0 - _E2 * sin_lat**2)
        lat = np.arctan2(z + _E2 * n * sin_lat, p)
    sin_lat = np.sin(lat)
    n = R_EARTH / np.sqrt(1.0 - _E2 * sin_lat**2)
    alt = p * np.cos(lat) + z * sin_lat - R_EARTH * np.sqrt(1.0 - _E2 * sin_lat**2)
    return np.degrees(lat), np.degrees(lon), alt
