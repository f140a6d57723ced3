"""Run a sweep: expand the grid, skip runs already stored, execute the rest, write tables.

The driver owns the results: a worker returns a result, the driver writes it at once
(:class:`~flightsw.sweep.store.RunStore`), so workers need no access to the output
directory and a run is stored once even if the cluster ran it twice (a worker that died
after finishing). A run whose worker died is given up to ``max_attempts`` attempts; one
that still has no result is a ``not_run`` row (not stored: the next run of the sweep tries
it again).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flightsw.clock import VirtualClock
from flightsw.exceptions import ConfigError
from flightsw.sweep.executors import Backend, DaskBackend, InlineBackend, LocalBackend, Lost
from flightsw.sweep.grid import Run, expand
from flightsw.sweep.spec import SweepSpec
from flightsw.sweep.store import RunStore, write_atomic
from flightsw.sweep.table import (
    run_rows,
    summary_markdown,
    summary_rows,
    write_csv,
    write_parquet,
)

__all__ = ["SweepReport", "make_backend", "run_sweep"]

#: Attempts of a run whose worker dies before it returns.
MAX_ATTEMPTS = 3


@dataclass
class SweepReport:
    runs: int = 0
    cells: int = 0
    skipped: int = 0  # stored by an earlier run of the sweep
    executed: int = 0
    ok: int = 0
    failed: int = 0
    not_run: int = 0
    lost_attempts: int = 0  # runs whose worker died (each then tried again)
    wall_s: float = 0.0
    backend: str = ""
    files: dict[str, Path] = field(default_factory=dict)


def make_backend(spec: SweepSpec, scheduler: str | None = None,
                 workers: int | None = None) -> Backend:
    """Dask when a scheduler is given (``--scheduler`` wins over the file's
    ``[cluster] scheduler``), else local processes (``workers=0``: this process)."""
    if scheduler is not None:
        return DaskBackend(scheduler, field="--scheduler")
    if spec.cluster.scheduler is not None:
        return DaskBackend(spec.cluster.scheduler, field="cluster.scheduler")
    if workers is not None and workers < 0:
        raise ConfigError(f"--workers: must be 0 (this process) or more, not {workers}")
    if workers == 0:
        return InlineBackend()
    return LocalBackend(workers or spec.cluster.workers)


def run_sweep(
    spec: SweepSpec,
    out: Path,
    *,
    backend: Backend | None = None,
    retry_failed: bool = False,
    on_result: Callable[[Run, dict[str, Any]], None] | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> SweepReport:
    """Run every run of ``spec`` not yet stored under ``out`` and write the tables."""
    clock = VirtualClock(0.0)  # host time of the sweep: reported, not part of the tables
    t0 = clock.perf_counter()
    runs = expand(spec)
    store = RunStore(out)
    report = SweepReport(runs=len(runs), cells=len({r.cell_id for r in runs}))
    results: dict[str, dict[str, Any]] = {}
    todo: list[Run] = []
    for run in runs:
        stored = store.load(run.run_id)
        if stored is not None and not (retry_failed and stored["status"] == "failed"):
            results[run.run_id] = stored
        else:
            todo.append(run)
    report.skipped = len(runs) - len(todo)
    if todo:
        own = backend is None
        be = backend or make_backend(spec)
        report.backend = be.description
        try:
            attempts = dict.fromkeys((r.run_id for r in todo), 0)
            while todo:
                again: list[Run] = []
                for run, outcome in be.run(todo):
                    attempts[run.run_id] += 1
                    if isinstance(outcome, Lost):
                        report.lost_attempts += 1
                        if outcome.final or attempts[run.run_id] >= max_attempts:
                            result = {"run_id": run.run_id, "status": "not_run",
                                      "error": f"{outcome.error} (attempt "
                                      f"{attempts[run.run_id]})"}
                        else:
                            again.append(run)
                            continue
                    else:
                        result = outcome
                        store.save(result)
                        report.executed += 1
                    results[run.run_id] = result
                    if on_result is not None:
                        on_result(run, result)
                todo = again
        finally:
            if own:
                be.close()
    report.files = write_tables(spec, runs, results, out)
    statuses = [results[r.run_id]["status"] for r in runs]
    report.ok, report.failed = statuses.count("ok"), statuses.count("failed")
    report.not_run = statuses.count("not_run")
    report.wall_s = clock.perf_counter() - t0
    return report


def write_tables(spec: SweepSpec, runs: list[Run], results: dict[str, dict[str, Any]],
                 out: Path) -> dict[str, Path]:
    """``runs.parquet``, ``summary.parquet``/``.csv``/``.md`` and ``host.csv`` in ``out``."""
    rows = run_rows(runs, results)
    metrics, conf = spec.summary.metrics, spec.summary.confidence
    cells = summary_rows(rows, metrics, conf)
    files = {name: out / name for name in
             ("runs.parquet", "summary.parquet", "summary.csv", "summary.md", "host.csv")}
    write_parquet(rows, files["runs.parquet"])
    write_parquet(cells, files["summary.parquet"])
    write_csv(cells, files["summary.csv"])
    write_atomic(files["summary.md"], summary_markdown(spec.name, cells, metrics, conf).encode())
    host = []
    for run in runs:
        h = results[run.run_id].get("host") or {}
        host.append({"run_id": run.run_id, "worker": h.get("worker"),
                     "run_wall_s": h.get("run_wall_s"), "wall_s": h.get("wall_s"),
                     "host_inference_s": h.get("host_inference_s")})
    write_csv(host, files["host.csv"])
    return files
