from __future__ import annotations

import json
from pathlib import Path

import pytest
from sgp4 import exporter
from sgp4.api import WGS72, Satrec

from flightsw.cli import main
from flightsw.physics.eclipse import eclipse_intervals
from flightsw.physics.orbit import TleOrbits
from flightsw.timeutil import parse_iso

ISS_TLE = Path(__file__).parents[1] / "physics" / "data" / "iss_2019-12-09.tle"
START = "2019-12-09T16:38:29Z"


def synthetic_tle(satnum: int) -> str:
    sat = Satrec()
    sat.sgp4init(
        WGS72, "i", satnum, 25545.5, 1e-5, 0.0, 0.0, 0.001, 0.0,
        1.7, 0.0, 0.0663, 1.0,
    )  # fmt: skip
    return "\n".join(exporter.export_tle(sat)) + "\n"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["eclipses", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_circular_orbit_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "--altitude", "550", "--inclination", "53",
        "--start", "2025-03-20T00:00:00Z", "--hours", "6", "--json",
    )  # fmt: skip
    assert code == 0
    rows = json.loads(out)
    assert isinstance(rows, list)
    assert len(rows) >= 3
    for row in rows:
        assert set(row) == {"start", "end"}
        assert row["start"].endswith("Z")
        duration = parse_iso(row["end"]) - parse_iso(row["start"])
        assert 0 < duration <= 35.7 * 60


def test_tle_json_matches_library(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--tle", str(ISS_TLE), "--start", START, "--hours", "3", "--json")
    assert code == 0
    rows = json.loads(out)
    start = parse_iso(START)
    ref = eclipse_intervals(TleOrbits.from_file(ISS_TLE), start, start + 3 * 3600)[0]
    assert len(rows) == len(ref)
    for row, (a, b) in zip(rows, ref, strict=True):
        assert abs(parse_iso(row["start"]) - a) <= 0.5
        assert abs(parse_iso(row["end"]) - b) <= 0.5


def test_multi_satellite_tle_is_keyed_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "two.tle"
    path.write_text(ISS_TLE.read_text() + synthetic_tle(90042))
    code, out, _ = run(
        capsys, "--tle", str(path), "--start", START, "--hours", "2", "--model", "conical",
        "--json",
    )  # fmt: skip
    assert code == 0
    data = json.loads(out)
    assert sorted(data) == ["ISS (ZARYA)", "NORAD 90042"]
    assert all(isinstance(v, list) for v in data.values())
    # The table form names both satellites.
    code, out, _ = run(capsys, "--tle", str(path), "--start", START, "--hours", "2")
    assert code == 0
    assert "ISS (ZARYA):" in out
    assert "NORAD 90042:" in out
    assert "min" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--altitude", "550", "--inclination", "53", "--hours", "-1"], "--hours"),
        (["--altitude", "550", "--hours", "1"], "--inclination: required"),
        (["--altitude", "-3", "--inclination", "53", "--hours", "1"], "--altitude"),
        (["--altitude", "550", "--inclination", "abc", "--hours", "1"], "--inclination"),
        (["--tle", str(ISS_TLE), "--raan", "3", "--hours", "1"], "--raan: only valid"),
    ],
)
def test_bad_input_exits_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, *argv, "--start", START)
    assert code == 2
    assert out == ""
    assert message in err


def test_unparseable_tle_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = ISS_TLE.read_text().splitlines()
    lines[2] = lines[2][:30] + "X" + lines[2][31:]
    bad = tmp_path / "bad.tle"
    bad.write_text("\n".join(lines) + "\n")
    code, _, err = run(capsys, "--tle", str(bad), "--start", START, "--hours", "1")
    assert code == 2
    assert f"{bad}:3:" in err


def test_orbit_inside_the_atmosphere_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """As the scenario loader and the node refuse it (50 km is inside the atmosphere)."""
    assert main(["eclipses", "--altitude", "50", "--inclination", "53",
                 "--start", "2026-03-20T00:00:00Z", "--hours", "3"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "--altitude" in err and "100 km" in err
    assert main(["eclipses", "--altitude", "101", "--inclination", "53",
                 "--start", "2026-03-20T00:00:00Z", "--hours", "3"]) == 0
