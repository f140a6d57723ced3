"""The sweep driver, in this process: tables, re-runs that skip what is stored, failed runs
reported, runs whose worker died tried again (the process and Dask executors:
``test_executors.py``)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from flightsw.exceptions import ConfigError
from flightsw.sim import dumps_metrics, run_scenario, without_wall
from flightsw.sim.scenario import load_scenario
from flightsw.sweep import Run, load_sweep, run_sweep
from flightsw.sweep.executors import InlineBackend, Lost, Outcome

TABLES = ("runs.parquet", "summary.parquet", "summary.csv", "summary.md")


class Counting:
    """The in-process backend, counting the runs it is given; ``lose`` maps a run id to how
    many of its attempts die with their worker."""

    description = "counting"

    def __init__(self, lose: dict[str, int] | None = None) -> None:
        self.given: list[str] = []
        self.lose = dict(lose or {})
        self.inner = InlineBackend()

    def run(self, runs: Sequence[Run]) -> Iterator[Outcome]:
        for run in runs:
            self.given.append(run.run_id)
            if self.lose.get(run.run_id, 0) > 0:
                self.lose[run.run_id] -= 1
                yield run, Lost("worker process died")
            else:
                yield from self.inner.run([run])

    def close(self) -> None:
        pass


def _tables(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in TABLES}


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The small sweep's file and a finished output directory of it (run once per module;
    a test copies the directory before touching it)."""
    base = tmp_path_factory.mktemp("stored")
    quickstart = (Path(__file__).resolve().parents[3] / "examples" / "scenarios"
                  / "quickstart.toml")
    sweep = base / "sweep.toml"
    sweep.write_text(f'scenarios = ["{quickstart}"]\npolicies = ["forecast", "local"]\n'
                     'seeds = [1, 2]\n[overrides]\nduration_hours = [0.1]\n')
    out = base / "out"
    report = run_sweep(load_sweep(sweep), out, backend=InlineBackend())
    assert report.ok == 4
    return sweep, out


def _copy(stored: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    sweep, out = stored
    shutil.copytree(out, tmp_path / "out")
    return sweep, tmp_path / "out"


def test_tables(write_sweep: Callable[[str], Path], small: str, tmp_path: Path) -> None:
    spec = load_sweep(write_sweep(small))
    out = tmp_path / "out"
    seen: list[str] = []
    report = run_sweep(spec, out, backend=InlineBackend(),
                       on_result=lambda run, res: seen.append(res["status"]))
    assert (report.runs, report.cells, report.executed, report.ok) == (4, 2, 4, 4)
    assert seen == ["ok"] * 4
    assert report.wall_s > 0
    rows = pq.read_table(out / "runs.parquet").to_pylist()
    assert [(r["policy"], r["seed"]) for r in rows] == [
        ("forecast", 1), ("forecast", 2), ("local", 1), ("local", 2)]
    assert sorted(p.stem for p in (out / "runs").glob("*.json")) == sorted(
        r["run_id"] for r in rows)
    assert all(r["status"] == "ok" and r["error"] is None for r in rows)
    assert all(r["scenario"] == "quickstart" and r["override.duration_hours"] == 0.1
               for r in rows)
    assert "wall_s" not in rows[0] and "per_class.digits.jobs_submitted" in rows[0]
    # a row is the run's metrics.json, flattened
    sc = load_scenario(spec.scenarios[0]).model_copy(update={"duration_hours": 0.1, "seed": 2})
    direct = json.loads(dumps_metrics(without_wall(run_scenario(sc, policy="local"))))
    row = rows[3]
    assert row["jobs_completed"] == direct["jobs_completed"] > 0
    assert row["latency_p95_s"] == direct["latency_p95_s"]
    assert row["per_class.detect.value_goodput"] == direct["per_class"]["detect"]["value_goodput"]
    for reason, count in direct["failed_by_reason"].items():
        assert row[f"failed_by_reason.{reason}"] == count
    # the summary: one row per cell, the mean over seeds and a Student-t interval
    cells = pq.read_table(out / "summary.parquet").to_pylist()
    assert [c["policy"] for c in cells] == ["forecast", "local"]
    for cell, pair in zip(cells, (rows[:2], rows[2:]), strict=True):
        vals = [r["value_goodput"] for r in pair]
        assert vals[0] != vals[1]  # the seeds differ, so the interval has a width
        assert cell["runs"] == cell["ok"] == cell["value_goodput.n"] == 2
        assert cell["value_goodput.mean"] == pytest.approx(sum(vals) / 2)
        low, high = cell["value_goodput.ci95_low"], cell["value_goodput.ci95_high"]
        # n = 2: half-width = t(0.975, 1) * |a - b| / 2
        assert (high - low) / 2 == pytest.approx(12.7062047 * abs(vals[0] - vals[1]) / 2)
    md = (out / "summary.md").read_text()
    assert "| quickstart | local | 0.1 | 2/2 |" in md
    host = (out / "host.csv").read_text().splitlines()
    assert host[0] == "run_id,worker,run_wall_s,wall_s,host_inference_s" and len(host) == 5


def test_rerun_skips_what_is_stored(stored: tuple[Path, Path], tmp_path: Path) -> None:
    sweep, out = _copy(stored, tmp_path)
    spec = load_sweep(sweep)
    tables = _tables(out)
    ids = sorted(p.stem for p in (out / "runs").glob("*.json"))
    again = Counting()
    report = run_sweep(spec, out, backend=again)
    assert again.given == [] and report.skipped == 4 and report.executed == 0
    assert _tables(out) == tables
    # a run lost with its file (a crash before it was written) is the only one run again
    (out / "runs" / f"{ids[2]}.json").unlink()
    third = Counting()
    report = run_sweep(spec, out, backend=third)
    assert third.given == [ids[2]] and report.skipped == 3 and report.executed == 1
    assert _tables(out) == tables


def test_failed_run_is_reported_not_lost(write_sweep: Callable[[str], Path], quickstart: Path,
                                         tmp_path: Path) -> None:
    # a node name the schema accepts but the world does not know: the run itself raises
    spec = load_sweep(write_sweep(f"""
scenarios = ["{quickstart}"]
seeds = [1]
[overrides]
duration_hours = [0.1]
faults.0.node = ["P00S01", "P99S99"]
"""))
    out = tmp_path / "out"
    report = run_sweep(spec, out, backend=InlineBackend())
    assert (report.ok, report.failed, report.not_run) == (1, 1, 0)
    rows = pq.read_table(out / "runs.parquet").to_pylist()
    ok, bad = rows
    assert ok["status"] == "ok" and ok["error"] is None
    assert bad["status"] == "failed" and bad["override.faults.0.node"] == "P99S99"
    assert "faults[0].node" in bad["error"] and "P99S99" in bad["error"]
    assert bad["jobs_completed"] is None
    stored = json.loads((out / "runs" / f"{bad['run_id']}.json").read_text())
    assert stored["status"] == "failed" and stored["error"] == bad["error"]
    cells = pq.read_table(out / "summary.parquet").to_pylist()
    assert (cells[1]["failed"], cells[1]["value_goodput.n"], cells[1]["value_goodput.mean"]) \
        == (1, 0, None)
    # a failure is a result: kept on a re-run, unless asked to run it again
    again = Counting()
    run_sweep(spec, out, backend=again)
    assert again.given == []
    run_sweep(spec, out, backend=again, retry_failed=True)
    assert again.given == [bad["run_id"]]


def test_runs_whose_worker_died_are_tried_again(stored: tuple[Path, Path],
                                                tmp_path: Path) -> None:
    sweep, out = _copy(stored, tmp_path)
    spec = load_sweep(sweep)
    tables = _tables(out)
    ids = sorted(p.stem for p in (out / "runs").glob("*.json"))
    # lost twice, then done; lost once, then done: the same tables as without losses
    for i in (0, 3):
        (out / "runs" / f"{ids[i]}.json").unlink()
    backend = Counting(lose={ids[0]: 2, ids[3]: 1})
    report = run_sweep(spec, out, backend=backend)
    assert report.lost_attempts == 3 and report.ok == 4 and report.executed == 2
    assert sorted(backend.given) == sorted([ids[0], ids[0], ids[0], ids[3], ids[3]])
    assert _tables(out) == tables
    # lost on every attempt: reported as not run, not stored (the next sweep tries it)
    (out / "runs" / f"{ids[1]}.json").unlink()
    report = run_sweep(spec, out, backend=Counting(lose={ids[1]: 99}), max_attempts=3)
    assert (report.ok, report.not_run, report.lost_attempts) == (3, 1, 3)
    row = next(r for r in pq.read_table(out / "runs.parquet").to_pylist()
               if r["run_id"] == ids[1])
    assert row["status"] == "not_run" and row["error"] == "worker process died (attempt 3)"
    assert row["jobs_completed"] is None
    assert not (out / "runs" / f"{ids[1]}.json").exists()
    retry = Counting()
    run_sweep(spec, out, backend=retry)
    assert retry.given == [ids[1]]
    assert _tables(out) == tables


def test_unknown_summary_metric_is_named(stored: tuple[Path, Path], tmp_path: Path) -> None:
    sweep, out = _copy(stored, tmp_path)
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(stored[0].read_text() + '[summary]\nmetrics = ["value_goodput", "nope"]\n')
    with pytest.raises(ConfigError, match=r"summary.metrics\[1\]: 'nope' is not a numeric "
                       r"metric \(the runs are stored"):
        run_sweep(load_sweep(sweep), out, backend=Counting())
    assert len(list((out / "runs").glob("*.json"))) == 4


