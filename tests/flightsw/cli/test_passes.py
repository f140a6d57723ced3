from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from flightsw.cli import main
from flightsw.physics.frames import ecef_to_geodetic, eci_to_ecef
from flightsw.physics.ground import Station, contact_windows
from flightsw.physics.orbit import CircularOrbits, TleOrbits
from flightsw.timeutil import parse_iso

ISS_TLE = Path(__file__).parents[1] / "physics" / "data" / "iss_2019-12-09.tle"
START = "2019-12-09T16:38:29Z"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["passes", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_tle_passes_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "--tle", str(ISS_TLE), "--station", "40,-105,1600",
        "--start", START, "--hours", "24", "--json",
    )  # fmt: skip
    assert code == 0
    rows = json.loads(out)
    start = parse_iso(START)
    ref = contact_windows(
        TleOrbits.from_file(ISS_TLE), Station("s", 40, -105, 1600), start, start + 86400
    )[0]
    assert len(rows) == len(ref) == 6
    for row, p in zip(rows, ref, strict=True):
        assert set(row) == {"aos", "aos_azimuth_deg", "los", "los_azimuth_deg",
                            "max_elevation_at", "max_elevation_deg"}
        assert abs(parse_iso(row["max_elevation_at"]) - p.tca) <= 0.5
        assert parse_iso(row["aos"]) < parse_iso(row["max_elevation_at"]) < parse_iso(row["los"])
        assert abs(parse_iso(row["aos"]) - p.aos) <= 0.5
        assert abs(parse_iso(row["los"]) - p.los) <= 0.5
        assert row["max_elevation_deg"] == pytest.approx(p.max_elevation_deg, abs=0.01)
        assert row["max_elevation_deg"] >= 10.0


def test_circular_orbit_table_and_mask(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--altitude", "550", "--inclination", "53", "--station", "52.2,0.1",
            "--start", "2025-06-01T00:00:00Z", "--hours", "24"]  # fmt: skip
    code, out, _ = run(capsys, *base)
    assert code == 0
    assert "AOS" in out
    assert "max el" in out
    code, out10, _ = run(capsys, *base, "--json")
    code, out30, _ = run(capsys, *base, "--min-elevation", "30", "--json")
    p10, p30 = json.loads(out10), json.loads(out30)
    assert 0 < len(p30) < len(p10)
    assert all(p["max_elevation_deg"] > 30 for p in p30)


@pytest.mark.parametrize(
    ("station", "message"),
    [("52.2", "--station"), ("52.2,east", "--station"), ("95,0", "latitude")],
)
def test_bad_station_exits_2(
    capsys: pytest.CaptureFixture[str], station: str, message: str
) -> None:
    code, out, err = run(
        capsys, "--altitude", "550", "--inclination", "53", "--station", station,
        "--start", START, "--hours", "1",
    )  # fmt: skip
    assert code == 2
    assert out == ""
    assert message in err


def test_negative_hours_and_bad_start(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--tle", str(ISS_TLE), "--station", "0,0", "--start", START,
                       "--hours", "-2")  # fmt: skip
    assert code == 2
    assert "--hours" in err
    code, _, err = run(capsys, "--tle", str(ISS_TLE), "--station", "0,0", "--start", "yesterday",
                       "--hours", "2")  # fmt: skip
    assert code == 2
    assert "--start" in err


def _bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial great-circle bearing from point 1 to point 2 (an independent oracle)."""
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(y, x)) % 360.0


def test_azimuths_point_at_the_sub_satellite_point(capsys: pytest.CaptureFixture[str]) -> None:
    """The azimuth of a satellite is the bearing of its sub-satellite point (within the
    ellipsoid's fraction of a degree); an SSO pass over Svalbard rises in the north half
    and sets in the south half or the other way round."""
    code, out, _ = run(capsys, "--altitude", "550", "--inclination", "97.6",
                       "--station", "78.23,15.41", "--start", "2026-03-20T00:00:00Z",
                       "--hours", "6", "--json")  # fmt: skip
    assert code == 0
    rows = json.loads(out)
    assert len(rows) >= 3
    orbits = CircularOrbits(550.0, 97.6, 0.0, 0.0, parse_iso("2026-03-20T00:00:00Z"))
    for row in rows:
        for edge in ("aos", "los"):
            t = parse_iso(row[edge])
            r = orbits.positions(t)[0]
            lat, lon, _ = ecef_to_geodetic(eci_to_ecef(r, t))
            want = _bearing_deg(78.23, 15.41, float(lat), float(lon))
            diff = (row[f"{edge}_azimuth_deg"] - want + 180.0) % 360.0 - 180.0
            assert abs(diff) < 1.5, (edge, row, want)


def test_orbit_inside_the_atmosphere_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--altitude", "50", "--inclination", "53",
                         "--station", "0,0", "--start", START, "--hours", "1")
    assert code == 2 and out == ""
    assert "--altitude" in err and "atmosphere" in err
