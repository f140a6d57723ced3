"""Independent reference computations with astropy (ERFA ephemeris, IERS-B, no download).

Loaded by the ``oracle`` fixture (conftest.py), which first sets astropy offline.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
import numpy.typing as npt
from astropy.coordinates import (
    GCRS,
    ITRS,
    TEME,
    AltAz,
    CartesianRepresentation,
    EarthLocation,
    get_sun,
)
from astropy.time import Time

FloatArray = npt.NDArray[np.float64]


def sun_teme_unit(times: FloatArray) -> FloatArray:
    """Sun direction in TEME from astropy's get_sun (ERFA), (T, 3)."""
    tt = Time(times, format="unix", scale="utc")
    xyz = get_sun(tt).transform_to(TEME(obstime=tt)).cartesian.xyz.to_value(u.km).T
    return np.asarray(xyz / np.linalg.norm(xyz, axis=1, keepdims=True))


def cylindrical_shadow_edges(times: FloatArray, r_teme: FloatArray, r_earth: float) -> FloatArray:
    """Shadow entry/exit times: satellite and sun both in GCRS via astropy, edges by linear
    interpolation of the distance to the shadow axis."""
    tt = Time(times, format="unix", scale="utc")
    sat = TEME(CartesianRepresentation(r_teme.T * u.km), obstime=tt).transform_to(GCRS(obstime=tt))
    r = sat.cartesian.xyz.to_value(u.km).T
    s = get_sun(tt).cartesian.xyz.to_value(u.km).T
    s /= np.linalg.norm(s, axis=1, keepdims=True)
    along = np.sum(r * s, axis=1)
    perp = np.sqrt(np.sum(r * r, axis=1) - along**2)
    # Signed function: < 0 in shadow (behind the Earth and inside the cylinder).
    f = np.where(along < 0, perp - r_earth, np.abs(perp - r_earth) + 1.0)
    return _crossings(times, f)


def elevation_deg(
    times: FloatArray, r_teme: FloatArray, lat: float, lon: float, alt_m: float
) -> FloatArray:
    """Elevation from astropy: TEME -> ITRS (IERS-B polar motion, UT1) -> AltAz."""
    tt = Time(times, format="unix", scale="utc")
    loc = EarthLocation.from_geodetic(lon * u.deg, lat * u.deg, alt_m * u.m)
    itrs = TEME(CartesianRepresentation(r_teme.T * u.km), obstime=tt).transform_to(ITRS(obstime=tt))
    topo = itrs.cartesian.without_differentials() - loc.get_itrs(tt).cartesian
    aa = ITRS(topo, obstime=tt, location=loc).transform_to(AltAz(obstime=tt, location=loc))
    return np.asarray(aa.alt.deg)


def _crossings(times: FloatArray, f: FloatArray) -> FloatArray:
    k = np.nonzero(np.diff(np.sign(f)) != 0)[0]
    return np.asarray(times[k] + (times[k + 1] - times[k]) * f[k] / (f[k] - f[k + 1]))


def threshold_crossings(times: FloatArray, values: FloatArray, level: float) -> FloatArray:
    """Times where ``values`` crosses ``level`` (linear interpolation)."""
    return _crossings(times, values - level)
