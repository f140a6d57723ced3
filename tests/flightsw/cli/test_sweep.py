"""``flightsw sweep``: the command line over the sweep driver; one-line errors naming the
field; local runs need no Dask."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from flightsw.cli import main

QUICKSTART = Path(__file__).resolve().parents[3] / "examples" / "scenarios" / "quickstart.toml"

SWEEP = f"""
scenarios = ["{QUICKSTART}"]
policies = ["forecast"]
seeds = [1, 2]
[overrides]
duration_hours = [0.1]
[summary]
metrics = ["value_goodput", "latency_p95_s"]
"""


def test_runs_then_skips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep = tmp_path / "s.toml"
    sweep.write_text(SWEEP)
    out = tmp_path / "out"
    assert main(["sweep", str(sweep), "--out", str(out), "--workers", "0"]) == 0
    text = capsys.readouterr().out
    assert "sweep s: running on this process" in text
    assert "forecast seed 1: ok" in text and "forecast seed 2: ok" in text
    assert "2 runs in 1 cells: 2 ok, 0 failed, 0 not run; 0 already stored, 2 executed" in text
    assert f"summary.md: {out / 'summary.md'}" in text
    md = (out / "summary.md").read_text()
    assert "| scenario | policy | duration_hours | ok/runs | value_goodput | latency_p95_s |" in md
    # again, on local processes: nothing left to run, so no process is started
    assert main(["sweep", str(sweep), "--out", str(out), "--local", "-q"]) == 0
    assert "2 already stored, 0 executed" in capsys.readouterr().out


def test_failed_run_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep = tmp_path / "s.toml"
    sweep.write_text(SWEEP.replace("seeds = [1, 2]", "seeds = [1]").replace(
        "[summary]", '"faults[0].node" = ["P99S99"]\n[summary]'))
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "o"), "--workers", "0"]) == 1
    text = capsys.readouterr().out
    assert ": failed" in text and "P99S99" in text and "0 ok, 1 failed" in text


@pytest.mark.parametrize(("text", "message"), [
    ("seeds = [1]\n", "sweep: error: s.toml: scenarios: field required"),
    (f'scenarios = ["{QUICKSTART}"]\nseeds = [1]\n[overrides]\nstep_s = [0.0]\n',
     "step_s: Input should be greater than 0"),
])
def test_bad_sweep_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    text: str, message: str) -> None:
    sweep = tmp_path / "s.toml"
    sweep.write_text(text)
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "o"), "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_bad_workers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep = tmp_path / "s.toml"
    sweep.write_text(SWEEP)
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "o"), "--workers", "-1"]) == 2
    err = capsys.readouterr().err
    assert "sweep: error: --workers: must be 0 (this process) or more, not -1" in err


def test_local_runs_do_not_import_dask() -> None:
    code = ("import sys, flightsw.cli; flightsw.cli.build_parser(); "
            "import flightsw.sweep, flightsw.cli.sweep; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('dask', 'distributed', 'pyarrow')))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert res.stdout.strip() == "[]"
