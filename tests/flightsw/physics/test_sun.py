from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from flightsw.exceptions import ConfigError
from flightsw.physics.constants import AU_KM, R_EARTH
from flightsw.physics.orbit import CircularOrbits
from flightsw.physics.sun import (
    beta_angle_deg,
    illumination,
    sun_direction,
    sun_distance_au,
    sun_position_km,
)
from flightsw.timeutil import parse_iso


def test_sun_direction_matches_astropy(oracle: ModuleType) -> None:
    times = parse_iso("2019-01-01T00:00:00Z") + np.linspace(0, 6 * 365.25 * 86400, 200)
    mine = sun_direction(times)
    ref = oracle.sun_teme_unit(times)
    err_deg = np.degrees(np.arccos(np.clip(np.sum(mine * ref, axis=1), -1, 1)))
    # Astronomical Almanac: ~0.01 deg (measured max over 2019-2025: 0.0098 deg).
    assert err_deg.max() < 0.012


def test_sun_known_geometry() -> None:
    # June solstice 2024-06-20T20:51Z: declination = obliquity (23.44 deg).
    s = sun_direction(parse_iso("2024-06-20T20:51:00Z"))
    assert np.degrees(np.arcsin(s[2])) == pytest.approx(23.44, abs=0.01)
    assert s.shape == (3,)
    # Perihelion (early Jan) 0.9833 AU, aphelion (early Jul) 1.0167 AU.
    assert sun_distance_au(parse_iso("2024-01-03T00:53:00Z")) == pytest.approx(0.98331, abs=2e-4)
    assert sun_distance_au(parse_iso("2024-07-05T05:06:00Z")) == pytest.approx(1.01672, abs=2e-4)
    many = sun_position_km(np.array([0.0, 1e9]))
    assert many.shape == (2, 3)
    assert np.all(np.abs(np.linalg.norm(many, axis=1) / AU_KM - 1) < 0.02)


def test_illumination_models() -> None:
    sun = np.array([AU_KM, 0.0, 0.0])
    r = np.array(
        [
            [R_EARTH + 550, 0, 0],  # sun side
            [-(R_EARTH + 550), 0, 0],  # behind the Earth: umbra
            [0, R_EARTH + 550, 0],  # terminator, well outside the cylinder
            [-(R_EARTH + 550), R_EARTH - 1.0, 0],  # just inside the cylinder
            [-(R_EARTH + 550), R_EARTH + 1.0, 0],  # just outside
        ]
    )
    assert illumination(r, sun).tolist() == [1.0, 0.0, 1.0, 0.0, 1.0]
    con = illumination(r, sun, "conical")
    assert con[0] == 1.0
    assert con[1] == 0.0
    assert con[2] == 1.0
    # Near the shadow edge the conical model is partial (penumbra), both sides of the edge.
    assert 0.0 < con[3] < 1.0
    assert 0.0 < con[4] < 1.0
    assert con[3] < con[4]
    with pytest.raises(ConfigError, match="model"):
        illumination(r, sun, "spherical")


def test_conical_penumbra_is_monotonic_and_broadcasts() -> None:
    sun = np.array([AU_KM, 0.0, 0.0])
    y = np.linspace(R_EARTH - 60, R_EARTH + 60, 241)
    r = np.stack([np.full_like(y, -(R_EARTH + 550)), y, np.zeros_like(y)], axis=1)
    lit = illumination(r, sun, "conical")
    assert np.all(np.diff(lit) >= 0)
    assert lit[0] == 0.0
    assert lit[-1] == 1.0
    # (T, N, 3) positions against (T, 1, 3) suns
    rr = np.broadcast_to(r, (2, *r.shape))
    ss = np.stack([sun, sun])[:, None, :]
    assert np.array_equal(illumination(rr, ss, "conical")[1], lit)


def test_beta_angle() -> None:
    t = parse_iso("2025-03-20T09:01:00Z")  # March equinox: sun at RA 0, dec 0
    s = sun_direction(t)
    ra = np.degrees(np.arctan2(s[1], s[0]))
    # Polar orbits: node at the sun's RA -> beta 0; node 90 deg away -> |beta| 90.
    orb = CircularOrbits(550.0, 90.0, [ra, ra + 90.0, ra + 30.0], 0.0, t, j2=False)
    beta = beta_angle_deg(orb, t)
    assert beta[0] == pytest.approx(0.0, abs=0.01)
    assert abs(beta[1]) == pytest.approx(90.0, abs=0.01)
    assert abs(beta[2]) == pytest.approx(30.0, abs=0.01)
