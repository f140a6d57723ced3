"""``flightsw economics``: study (table, JSON, PNGs), --reproduce, --lifetime, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flightsw.cli import main

ROOT = Path(__file__).parents[3]
PNG = b"\x89PNG\r\n\x1a\n"


def _small_scenario(tmp_path: Path, profile: str = "starcloud-h100") -> Path:
    text = (ROOT / "examples" / "scenarios" / "lifetime.toml").read_text("utf-8")
    text = (text.replace("satellites = 1000", "satellites = 100")
            .replace("years = 5.0", "years = 1.0")
            .replace("step_hours = 24.0", "step_hours = 72.0")
            .replace('profile = "starcloud-h100"', f'profile = "{profile}"'))
    path = tmp_path / "life.toml"
    path.write_text(text, "utf-8")
    return path


def _small_study(tmp_path: Path, profile: str = "starcloud-h100") -> Path:
    scenario = _small_scenario(tmp_path)
    text = (ROOT / "examples" / "studies" / "h100-fleet.toml").read_text("utf-8")
    text = (text.replace("satellites = 1000", "satellites = 100")
            .replace('"../scenarios/lifetime.toml"', f'"{scenario}"')
            .replace('profile = "starcloud-h100"', f'profile = "{profile}"'))
    path = tmp_path / "study.toml"
    path.write_text(text, "utf-8")
    return path


def test_study_table_json_and_charts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["economics", str(_small_study(tmp_path)), "--json", str(out / "v.json"),
                 "--charts", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "$ / M inferences" in text and "break-even launch price" in text
    assert "simulated: life" in text
    data = json.loads((out / "v.json").read_text("utf-8"))
    assert data["profile"] == "starcloud-h100"
    assert data["orbit"]["usd_per_million_inferences"] > 0
    assert data["tornado"] and data["break_even_curve"] and data["lifetime"]["series"]
    for name in ("tornado.png", "break_even.png", "capacity.png"):
        assert (out / name).read_bytes()[:8] == PNG


def test_another_profile_by_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["economics", str(_small_study(tmp_path, "suncatcher-tpu-v6e")),
                 "--json", str(tmp_path / "t.json")])
    assert code == 0
    data = json.loads((tmp_path / "t.json").read_text("utf-8"))
    assert data["profile"] == "suncatcher-tpu-v6e"
    assert data["lifetime"]["profile"] == "suncatcher-tpu-v6e"


def test_assumed_skips_the_simulation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["economics", str(_small_study(tmp_path)), "--assumed"]) == 0
    assert "operations (assumed)" in capsys.readouterr().out


def test_reproduce(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["economics", "--reproduce", "--json", str(tmp_path / "r.json")]) == 0
    assert "worst error" in capsys.readouterr().out
    rows = json.loads((tmp_path / "r.json").read_text("utf-8"))
    assert all(r["error"] < 0.05 for r in rows)


def test_lifetime(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "cap.png"
    assert main(["economics", "--lifetime", str(_small_scenario(tmp_path)), "--chart",
                 str(png)]) == 0
    assert "capacity_fraction" in capsys.readouterr().out
    assert png.read_bytes()[:8] == PNG


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["economics"]) == 2
    assert "STUDY.toml" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text('title = "x"\nyears = -1\n', "utf-8")
    assert main(["economics", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.toml: years" in err and "orbit: field required" in err
