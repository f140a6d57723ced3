"""Local processes and a Dask cluster give byte-identical tables to a run in this process,
and a worker killed mid-sweep costs nothing: every run ends in the table exactly once.

The Dask cluster is a ``LocalCluster`` of two worker processes on 127.0.0.1, started here.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from flightsw.exceptions import ConfigError
from flightsw.sweep import DaskBackend, LocalBackend, Run, load_sweep, run_sweep
from flightsw.sweep.executors import InlineBackend

TABLES = ("runs.parquet", "summary.parquet", "summary.csv", "summary.md")

# a few more runs than workers, so that some are in flight when a worker is killed
SIX = """
policies = ["forecast", "local", "least-loaded"]
seeds = [1, 2]

[overrides]
duration_hours = [0.1]
"""


def _tables(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in TABLES}


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    quickstart = (Path(__file__).resolve().parents[3] / "examples" / "scenarios"
                  / "quickstart.toml")
    path = tmp_path_factory.mktemp("sweep") / "six.toml"
    path.write_text(f'scenarios = ["{quickstart}"]\n{SIX}')
    return path


@pytest.fixture(scope="module")
def reference(sweep_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("reference")
    report = run_sweep(load_sweep(sweep_file), out, backend=InlineBackend())
    assert report.ok == 6
    return _tables(out)


@pytest.fixture(scope="module")
def dask_address() -> Iterator[str]:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  silence_logs=40) as cluster:
        yield cluster.scheduler_address


def _once_each(out: Path) -> None:
    rows = pq.read_table(out / "runs.parquet").to_pylist()
    ids = [r["run_id"] for r in rows]
    assert len(ids) == len(set(ids)) == 6
    assert all(r["status"] == "ok" for r in rows)
    assert sorted(p.stem for p in (out / "runs").glob("*.json")) == sorted(ids)
    assert not list((out / "runs").glob(".*.tmp"))


def test_local_processes_give_the_same_tables(sweep_file: Path, reference: dict[str, bytes],
                                              tmp_path: Path) -> None:
    backend = LocalBackend(2)
    try:
        report = run_sweep(load_sweep(sweep_file), tmp_path, backend=backend)
    finally:
        backend.close()
    assert report.executed == 6 and report.lost_attempts == 0
    assert _tables(tmp_path) == reference
    # and the runs really ran in other processes
    workers = {line.split(",")[1] for line in
               (tmp_path / "host.csv").read_text().splitlines()[1:]}
    assert f"{os.uname().nodename}:{os.getpid()}" not in workers


def test_local_worker_killed_mid_sweep(sweep_file: Path, reference: dict[str, bytes],
                                       tmp_path: Path) -> None:
    backend = LocalBackend(2)
    killed: list[int] = []

    def kill_one(run: Run, result: dict[str, Any]) -> None:
        if not killed:
            pid = backend.worker_pids()[0]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    try:
        report = run_sweep(load_sweep(sweep_file), tmp_path, backend=backend,
                           on_result=kill_one)
    finally:
        backend.close()
    assert killed
    assert backend.pools_started >= 2  # the broken pool was replaced
    assert report.ok == 6 and report.not_run == 0
    _once_each(tmp_path)
    assert _tables(tmp_path) == reference


def test_dask_gives_the_same_tables(sweep_file: Path, reference: dict[str, bytes],
                                    dask_address: str, tmp_path: Path) -> None:
    spec = load_sweep(sweep_file)
    # the sweep file's [cluster] scheduler is all it takes
    spec = spec.model_copy(update={"cluster": spec.cluster.model_copy(
        update={"scheduler": dask_address})})
    report = run_sweep(spec, tmp_path)
    assert report.backend.startswith(f"Dask scheduler {dask_address}")
    assert report.executed == 6
    assert _tables(tmp_path) == reference


def test_dask_worker_killed_mid_sweep(sweep_file: Path, reference: dict[str, bytes],
                                      dask_address: str, tmp_path: Path) -> None:
    backend = DaskBackend(dask_address)
    client = backend.client
    killed: list[tuple[str, int, list[str]]] = []

    def kill_busy(run: Run, result: dict[str, Any]) -> None:
        if killed:
            return
        busy = {w: keys for w, keys in client.processing().items() if keys}
        worker, keys = sorted(busy.items())[0]
        pid = client.run(os.getpid, workers=[worker])[worker]
        os.kill(pid, signal.SIGKILL)
        killed.append((worker, pid, list(keys)))

    try:
        report = run_sweep(load_sweep(sweep_file), tmp_path, backend=backend,
                           on_result=kill_busy)
    finally:
        backend.close()
    assert killed and killed[0][2], "the killed worker was running a run"
    assert report.ok == 6 and report.not_run == 0
    _once_each(tmp_path)
    assert _tables(tmp_path) == reference


def test_unreachable_scheduler_is_named() -> None:
    pytest.importorskip("distributed")
    with pytest.raises(ConfigError, match=r"--scheduler: cannot connect to tcp://127.0.0.1:9"):
        DaskBackend("tcp://127.0.0.1:9", timeout_s=2.0, field="--scheduler")


