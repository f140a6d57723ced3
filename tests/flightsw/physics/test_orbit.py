from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sgp4 import exporter
from sgp4.api import WGS72, Satrec

from flightsw.exceptions import ConfigError, OrbitError
from flightsw.physics.constants import R_EARTH, SECONDS_PER_DAY
from flightsw.physics.orbit import (
    CircularOrbits,
    TleOrbits,
    circular_period_s,
    dawn_dusk_raan,
    sun_synchronous_inclination,
    walker,
)
from flightsw.physics.sun import beta_angle_deg, sun_direction
from flightsw.timeutil import parse_iso

T0 = parse_iso("2025-03-01T00:00:00Z")
ISS_L1 = "1 25544U 98067A   19343.69339541  .00001764  00000-0  38792-4 0  9991"
ISS_L2 = "2 25544  51.6439 211.2001 0007417  17.6667  85.6398 15.50103472202482"


def synthetic_tle(satnum: int, inc_deg: float, raan_deg: float, bstar: float = 1e-5) -> str:
    """A TLE built by sgp4's own exporter from chosen elements (epoch 2019-12-09)."""
    sat = Satrec()
    sat.sgp4init(
        WGS72, "i", satnum, 25545.5, bstar, 0.0, 0.0, 0.001, 0.0,
        np.radians(inc_deg), 0.0, 2 * np.pi * 15.2 / 1440.0, np.radians(raan_deg),
    )  # fmt: skip
    l1, l2 = exporter.export_tle(sat)
    return f"{l1}\n{l2}\n"


def test_period_550km_matches_reference() -> None:
    # Brief section 9: 95.65 min (two-body).
    assert circular_period_s(550.0) / 60.0 == pytest.approx(95.65, abs=0.005)
    orb = CircularOrbits(550.0, 53.0, epoch=T0)
    assert orb.period_s[0] == pytest.approx(circular_period_s(550.0))


def test_circular_orbit_radius_speed_and_period() -> None:
    orb = CircularOrbits([550.0, 1200.0], [53.0, 97.0], [10.0, 200.0], [0.0, 45.0], T0, j2=False)
    r0 = orb.positions(T0)
    assert np.allclose(np.linalg.norm(r0, axis=1), R_EARTH + np.array([550.0, 1200.0]))
    # After one period the satellite is back where it started (no J2).
    for i in range(2):
        back = orb.positions_at([T0 + orb.period_s[i]], [i])
        assert np.allclose(back[0], r0[i], atol=1e-6)
    # Velocity is perpendicular to position and matches a finite difference.
    v = orb.velocities(T0)
    assert np.allclose(np.sum(v * r0, axis=1), 0.0, atol=1e-6)
    fd = (orb.positions(T0 + 0.5) - orb.positions(T0 - 0.5)) / 1.0
    assert np.allclose(v, fd, atol=1e-5)
    # positions_many agrees with positions
    many = orb.positions_many([T0, T0 + 100.0])
    assert many.shape == (2, 2, 3)
    assert np.allclose(many[1], orb.positions(T0 + 100.0))


def test_j2_velocity_includes_node_drift() -> None:
    orb = CircularOrbits(550.0, 97.6, 30.0, 10.0, T0)
    fd = (orb.positions(T0 + 0.5) - orb.positions(T0 - 0.5)) / 1.0
    assert np.allclose(orb.velocities(T0), fd, atol=1e-5)


def test_sun_synchronous_orbit_tracks_the_sun() -> None:
    inc = float(sun_synchronous_inclination(550.0))
    # Published value for 550 km: 97.59 deg (e.g. Wertz, SMAD, SSO table).
    assert inc == pytest.approx(97.59, abs=0.02)
    orb = CircularOrbits(550.0, inc, dawn_dusk_raan(T0), 0.0, T0)
    # 360 deg per tropical year.
    assert orb.raan_rate_deg_per_day[0] == pytest.approx(0.9856, abs=1e-4)

    # The node keeps its angle to the sun (its local time): over 60 days the sun's right
    # ascension moves ~57 deg; the node follows within the equation of time (< 5 deg).
    def node_minus_sun(o: CircularOrbits, t: float) -> float:
        s = sun_direction(t)
        node = float(o.raan_deg[0] + o.raan_rate_deg_per_day[0] * (t - T0) / SECONDS_PER_DAY)
        return (node - np.degrees(np.arctan2(s[1], s[0]))) % 360.0

    offsets = [node_minus_sun(orb, T0 + d * SECONDS_PER_DAY) for d in (0, 30, 60)]
    assert offsets[0] == pytest.approx(90.0)
    assert max(offsets) - min(offsets) < 5.0
    assert abs(float(beta_angle_deg(orb, T0)[0])) > 80.0
    no_j2 = CircularOrbits(550.0, inc, dawn_dusk_raan(T0), 0.0, T0, j2=False)
    assert abs(node_minus_sun(no_j2, T0 + 60 * SECONDS_PER_DAY) - 90.0) > 50.0
    with pytest.raises(ConfigError, match="altitude_km"):
        sun_synchronous_inclination(7000.0)


def test_dawn_dusk_raan_is_90_deg_east_of_the_sun() -> None:
    s = sun_direction(T0)
    sun_ra = np.degrees(np.arctan2(s[1], s[0])) % 360
    assert (dawn_dusk_raan(T0) - sun_ra) % 360 == pytest.approx(90.0)


def test_walker_delta_geometry() -> None:
    # Walker 53:24/6/1 at 550 km.
    orb = walker(24, 6, 1, 550.0, 53.0, T0, raan0_deg=10.0, j2=False)
    assert len(orb) == 24
    assert len(set(orb.names)) == 24
    assert orb.names[:5] == ["P00S00", "P00S01", "P00S02", "P00S03", "P01S00"]
    r = orb.positions(T0)
    assert np.allclose(np.linalg.norm(r, axis=1), R_EARTH + 550.0)
    normals = orb.normals(T0)
    assert np.allclose(np.degrees(np.arccos(normals[:, 2])), 53.0)
    # Plane p's node is at 10 + 60 p deg: the normal's azimuth is the node minus 90 deg.
    node = np.degrees(np.arctan2(normals[::4, 0], -normals[::4, 1])) % 360
    assert np.allclose(node, (10.0 + 60.0 * np.arange(6)) % 360)
    # In-plane spacing 360 / 4 = 90 deg.
    cosang = np.sum(r[0] * r[1]) / np.linalg.norm(r[0]) / np.linalg.norm(r[1])
    assert np.degrees(np.arccos(cosang)) == pytest.approx(90.0)
    # Phase offset between adjacent planes: F * 360 / T = 15 deg of argument of latitude.
    assert orb.arg_latitude_deg[4] - orb.arg_latitude_deg[0] == pytest.approx(15.0)
    with pytest.raises(ConfigError, match="multiple of planes"):
        walker(25, 6, 1, 550.0, 53.0, T0)
    with pytest.raises(ConfigError, match="phasing"):
        walker(24, 6, 6, 550.0, 53.0, T0)


def test_circular_orbit_rejects_bad_elements() -> None:
    with pytest.raises(ConfigError, match="altitude_km"):
        CircularOrbits(-5.0, 53.0, epoch=T0)
    with pytest.raises(ConfigError, match="inclination_deg"):
        CircularOrbits(550.0, 190.0, epoch=T0)
    with pytest.raises(ConfigError, match="incompatible"):
        CircularOrbits([550.0, 600.0], [53.0, 53.0, 53.0], epoch=T0)
    with pytest.raises(ConfigError, match="names"):
        CircularOrbits(550.0, 53.0, epoch=T0, names=["a", "b"])


def test_tle_parsing_names_and_positions(tmp_path: Path) -> None:
    text = (
        f"ISS (ZARYA)\n{ISS_L1}\n{ISS_L2}\n\n"
        f"{synthetic_tle(90001, 97.5, 40.0)}"
        f"0 THIRD SAT\n{synthetic_tle(90002, 53.0, 120.0)}"
    )
    path = tmp_path / "three.tle"
    path.write_text(text)
    orb = TleOrbits.from_file(path)
    assert orb.names == ["ISS (ZARYA)", "NORAD 90001", "THIRD SAT"]
    assert orb.period_s[0] / 60 == pytest.approx(1440 / 15.50103472, rel=1e-3)
    t = parse_iso("2019-12-10T00:00:00Z")
    ref = Satrec.twoline2rv(ISS_L1, ISS_L2)
    jd, fr = 2458827.5, 0.0  # 2019-12-10T00:00Z
    err, r_ref, v_ref = ref.sgp4(jd, fr)
    assert err == 0
    assert np.allclose(orb.positions(t)[0], r_ref, atol=1e-6)
    assert np.allclose(orb.velocities(t)[0], v_ref, atol=1e-9)
    many = orb.positions_many([t, t + 60.0])
    assert many.shape == (2, 3, 3)
    assert np.allclose(many[0], orb.positions(t))
    at = orb.positions_at([t + 60.0, t], [2, 0])
    assert np.allclose(at[0], many[1, 2])
    assert np.allclose(at[1], many[0, 0])
    assert np.allclose(np.linalg.norm(many, axis=-1), R_EARTH + 400, atol=150)


def test_tle_subset_and_satrecs() -> None:
    text = f"ISS\n{ISS_L1}\n{ISS_L2}\n{synthetic_tle(90005, 97.5, 40.0)}"
    orb = TleOrbits.from_text(text)
    assert len(orb.satrecs) == 2
    one = orb.subset([1])
    assert one.names == ["NORAD 90005"]
    t = float(orb.epochs[0]) + 600.0
    assert np.allclose(one.positions(t)[0], orb.positions(t)[1])
    assert one.satrecs[0] is orb.satrecs[1]


def test_tle_duplicate_names_are_made_unique() -> None:
    orb = TleOrbits.from_text(f"ISS\n{ISS_L1}\n{ISS_L2}\nISS\n{ISS_L1}\n{ISS_L2}\n")
    assert orb.names == ["ISS", "ISS #2"]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (f"ISS\n{ISS_L1[:-1]}8\n{ISS_L2}\n", r"<tle>:2: TLE line 1 checksum"),
        (f"ISS\n{ISS_L1}\n{ISS_L2[:40]}\n", r"<tle>:3: TLE line 2 is 40 characters"),
        (f"{ISS_L1}\nnot a line two\n", r"<tle>:1: TLE line 1 is not followed by line 2"),
        (f"{ISS_L2}\n", r"<tle>:1: TLE line 2 without a line 1"),
        ("ISS\nanother name\n", r"<tle>:2: expected TLE line 1 after name line 'ISS'"),
        ("", r"no TLE found"),
        (f"ISS\n{ISS_L1}\n{ISS_L2}\nDANGLING\n", r"name line 'DANGLING' has no TLE"),
    ],
)
def test_bad_tle_names_the_line(text: str, match: str) -> None:
    with pytest.raises(OrbitError, match=match):
        TleOrbits.from_text(text)


def test_missing_tle_file(tmp_path: Path) -> None:
    with pytest.raises(OrbitError, match="cannot read TLE file"):
        TleOrbits.from_file(tmp_path / "nope.tle")


def test_sgp4_error_names_the_satellite() -> None:
    # Huge drag: the orbit decays within days and SGP4 reports an error code.
    orb = TleOrbits.from_text(f"DOOMED\n{synthetic_tle(90003, 51.0, 0.0, bstar=0.5)}")
    epoch = float(orb.epochs[0])
    orb.positions(epoch)  # fine at epoch
    with pytest.raises(OrbitError, match="SGP4 failed for 'DOOMED'"):
        orb.positions(epoch + 60 * SECONDS_PER_DAY)
    with pytest.raises(OrbitError, match="SGP4 failed for 'DOOMED'"):
        orb.positions_at([epoch + 60 * SECONDS_PER_DAY], [0])
