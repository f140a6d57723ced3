"""``flightsw profiles``: in-process through ``flightsw.cli.main`` and as the installed script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from flightsw.cli import main
from hardware_profiles import HardwareProfile, list_profiles, load_profile, profile_path

SCRIPT = Path(sys.executable).with_name("flightsw")


def test_list_prints_one_line_per_profile_name_first(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list_profiles()
    for line in lines:
        p = load_profile(line.split()[0])
        assert p.compute.accelerator in line
        assert f"battery {p.bus.battery_wh:g} Wh" in line


def test_list_summary_mentions_isl(capsys: pytest.CaptureFixture[str]) -> None:
    main(["profiles", "list"])
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert lines["cubesat-6u"].endswith("ISL none")
    assert lines["suncatcher-tpu-v6e"].endswith("ISL 800 Gbit/s")


@pytest.mark.parametrize("name", list_profiles())
def test_show_json_is_the_validated_profile(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles", "show", name, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["name"] == name
    assert HardwareProfile.model_validate(data) == load_profile(name)


def test_show_readable_lists_sections_and_modes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles", "show", "jetson-agx-orin"]) == 0
    out = capsys.readouterr().out
    for section in ("[compute]", "[bus]", "[thermal]", "[radiation]", "[links]", "[design]"):
        assert section in out
    p = load_profile("jetson-agx-orin")
    for mode in p.compute.power_modes:
        assert f"    {mode.name} " in out
    assert "MAXN (the fastest mode)" in out
    assert "memory_bandwidth_bps     205 GB/s" in out
    assert "battery_wh               200 Wh" in out


def test_show_accepts_a_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mine.toml"
    text = profile_path("pic64-hpsc").read_text("utf-8").replace('"pic64-hpsc"', '"mine"')
    path.write_text(text, "utf-8")
    assert main(["profiles", "show", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "mine"


def test_show_unknown_name_exits_2_listing_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles", "show", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("flightsw profiles: error: unknown hardware profile 'nope'")
    for name in list_profiles():
        assert name in err


def test_show_invalid_file_names_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cubesat-6u.toml"
    text = profile_path("cubesat-6u").read_text("utf-8")
    path.write_text(text.replace("battery_wh = 60.0", "battery_wh = 0.0"), "utf-8")
    assert main(["profiles", "show", str(path)]) == 2
    assert "cubesat-6u.toml: bus.battery_wh: Input should be greater than 0" in (
        capsys.readouterr().err
    )


def test_check_all_profiles_pass(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles", "check"]) == 0
    out = capsys.readouterr().out
    for name in list_profiles():
        assert f"{name}: ok" in out
    assert "[FAIL]" not in out


def test_check_json_and_failure_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cubesat-6u.toml"
    text = profile_path("cubesat-6u").read_text("utf-8")
    path.write_text(text.replace("array_area_m2 = 0.13", "array_area_m2 = 0.05"), "utf-8")
    assert main(["profiles", "check", str(path), "--json"]) == 1
    (report,) = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    failed = {c["name"] for c in report["checks"] if not c["ok"]}
    assert "sunlit full compute: array covers the load" in failed


def test_installed_console_script() -> None:
    assert SCRIPT.exists(), f"console script missing at {SCRIPT}"
    shown = subprocess.run(
        [str(SCRIPT), "profiles", "show", "starcloud-h100", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert HardwareProfile.model_validate(data) == load_profile("starcloud-h100")

    listed = subprocess.run(
        [str(SCRIPT), "profiles", "list"], capture_output=True, text=True, timeout=60, check=False
    )
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()] == list_profiles()

    bad = subprocess.run(
        [str(SCRIPT), "profiles", "show", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert "unknown hardware profile 'nope'" in bad.stderr
