from __future__ import annotations

import json
from pathlib import Path

import pytest

from flightsw.cli import main
from flightsw.physics.ground import Station, contact_windows
from flightsw.physics.orbit import TleOrbits
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
        assert set(row) == {"aos", "los", "max_elevation_deg"}
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
