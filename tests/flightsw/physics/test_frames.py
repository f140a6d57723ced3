from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
from astropy.time import Time

from flightsw.physics.constants import R_EARTH
from flightsw.physics.frames import (
    ecef_to_eci,
    ecef_to_geodetic,
    eci_to_ecef,
    geodetic_to_ecef,
    gmst_rad,
)
from flightsw.timeutil import parse_iso


def test_gmst_matches_vallado_example() -> None:
    # Vallado, Fundamentals of Astrodynamics, example 3-5: 1992-08-20 12:14 UT1
    # -> GMST = 152.578787810 deg.
    t = parse_iso("1992-08-20T12:14:00Z")
    assert np.degrees(gmst_rad(t)) == pytest.approx(152.578787810, abs=1e-6)


def test_gmst_matches_astropy(oracle: ModuleType) -> None:
    times = parse_iso("2019-12-09T00:00:00Z") + np.linspace(0, 3 * 86400, 7)
    ref = Time(times, format="unix", scale="utc").sidereal_time("mean", "greenwich").deg
    diff = (np.degrees(gmst_rad(times)) - ref + 180.0) % 360.0 - 180.0
    # UT1 - UTC was -0.2 s in Dec 2019 (0.001 deg of rotation); models differ by less.
    assert np.max(np.abs(diff)) < 0.005


def test_geodetic_round_trip_and_known_points() -> None:
    lat = np.array([0.0, 45.0, -33.9, 89.999, -90.0, 51.5])
    lon = np.array([0.0, 90.0, 18.4, -120.0, 10.0, -0.1])
    alt = np.array([0.0, 0.5, 550.0, 1.0, 0.0, 35786.0])
    r = geodetic_to_ecef(lat, lon, alt)
    assert r[0] == pytest.approx([R_EARTH, 0.0, 0.0])
    # WGS-84 polar radius 6356.752 km (NIMA TR8350.2).
    assert r[4, 2] == pytest.approx(-6356.752314, abs=1e-6)
    lat2, lon2, alt2 = ecef_to_geodetic(r)
    assert np.allclose(lat2, lat, atol=1e-9)
    assert np.allclose(alt2, alt, atol=1e-6)
    keep = np.abs(lat) < 90
    assert np.allclose(lon2[keep], lon[keep], atol=1e-9)


def test_eci_ecef_round_trip_broadcasts() -> None:
    rng = np.random.default_rng(1)
    r = rng.normal(size=(4, 5, 3)) * 7000
    times = 1.7e9 + np.arange(4.0)[:, None] * 600
    back = ecef_to_eci(eci_to_ecef(r, times), times)
    assert np.allclose(back, r, atol=1e-9)
    # z untouched, norms preserved
    ecef = eci_to_ecef(r, times)
    assert np.allclose(ecef[..., 2], r[..., 2])
    assert np.allclose(np.linalg.norm(ecef, axis=-1), np.linalg.norm(r, axis=-1))
