"""``flightsw sim``: metrics.json, an archive the ground tools read, determinism, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flightsw.archive import ArchiveReader
from flightsw.cli import main
from flightsw.protocol import JobResult, Telemetry, parse
from groundstation.cli import main as ground_main

QUICKSTART = Path(__file__).resolve().parents[3] / "examples" / "scenarios" / "quickstart.toml"

REQUIRED = {
    "jobs_submitted", "jobs_completed", "jobs_lost", "duplicate_results", "value_goodput",
    "deadline_miss_rate", "latency_p50_s", "latency_p95_s", "latency_p99_s",
    "energy_per_job_j", "battery_floor_violation_s", "thermal_violation_s",
    "migrations_per_job", "migration_bytes", "wall_s", "mission_s", "policy", "seed",
    "satellites", "failed_by_reason", "per_class",
}


def _sim(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["sim", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_sim_writes_metrics_and_an_archive_the_ground_tools_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    code, text, _ = _sim(capsys, str(QUICKSTART), "--out", str(out))
    assert code == 0
    assert "jobs lost" in text and "metrics:" in text
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) >= REQUIRED
    assert metrics["satellites"] == 6
    assert metrics["jobs_lost"] == 0 and metrics["duplicate_results"] == 0
    assert metrics["jobs_completed"] > 0
    archive = out / "archive" / "telemetry"
    with ArchiveReader(archive) as reader:
        assert reader.recovery == ()
        nodes = reader.nodes()
        assert len(nodes) == 6
        tele = [parse(Telemetry, r.payload) for r in reader.records(topics=["odc/sat/+/telemetry"])]
        results = [parse(JobResult, r.payload) for r in reader.records(topics=["odc/sat/+/result"])]
    assert len(tele) >= 6 * 120  # every node each minute for 2 hours
    assert {t.node for t in tele} == set(nodes)
    assert all(0.0 < t.soc <= 1.0 for t in tele)
    done = [r for r in results if r.status == "done"]
    assert len(done) == metrics["jobs_completed"]
    assert len({r.job_id for r in results}) == len(results)  # one result per job
    png = tmp_path / "report.png"
    assert ground_main(["report", str(archive), "-o", str(png)]) == 0
    assert png.stat().st_size > 10_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()
    csv = tmp_path / "tele.csv"
    assert ground_main(["replay", str(archive), "--to", "csv", "--out", str(csv)]) == 0
    assert len(csv.read_text().splitlines()) == len(tele) + 1


def test_same_seed_gives_identical_metrics_apart_from_wall_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    texts = []
    for k in range(2):
        out = tmp_path / f"run{k}"
        assert _sim(capsys, str(QUICKSTART), "--out", str(out), "--no-archive",
                    "--policy", "least-loaded")[0] == 0
        lines = (out / "metrics.json").read_text().splitlines()
        assert sum('"wall_s"' in line for line in lines) == 1
        texts.append("\n".join(line for line in lines if '"wall_s"' not in line))
    assert texts[0] == texts[1]
    other = tmp_path / "seed9"
    assert _sim(capsys, str(QUICKSTART), "--out", str(other), "--no-archive", "--seed", "9")[0] == 0
    assert json.loads((other / "metrics.json").read_text())["seed"] == 9


def test_json_output_and_policy_override(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text, _ = _sim(capsys, str(QUICKSTART), "--out", str(tmp_path / "r"), "--json",
                         "--no-archive", "--policy", "local")
    assert code == 0
    metrics = json.loads(text)
    assert metrics["policy"] == "local"
    assert metrics["migrations"] == 0
    assert not (tmp_path / "r" / "archive").exists()


def test_bad_scenario_exits_2_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(QUICKSTART.read_text().replace("step_s = 10.0", "step_s = -1.0"))
    code, _, err = _sim(capsys, str(bad), "--out", str(tmp_path / "x"))
    assert code == 2
    assert "bad.toml: step_s" in err


def test_refuses_to_append_to_an_old_archive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert _sim(capsys, str(QUICKSTART), "--out", str(out))[0] == 0
    code, _, err = _sim(capsys, str(QUICKSTART), "--out", str(out))
    assert code == 2
    assert "already holds an archive" in err


def test_progress_bar_on_request_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The engine's progress reaches a bar of mission hours (forced here: stderr is not a
    terminal under pytest, so by default there is none)."""
    code, _, err = _sim(capsys, str(QUICKSTART), "--out", str(tmp_path / "a"), "--no-archive",
                        "--progress")
    assert code == 0
    assert "quickstart" in err and "100%" in err and "2.0/2 mission h" in err
    code, _, err = _sim(capsys, str(QUICKSTART), "--out", str(tmp_path / "b"), "--no-archive")
    assert code == 0 and "mission h" not in err
