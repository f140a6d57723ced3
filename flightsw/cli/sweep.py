"""``flightsw sweep``: run a grid of simulations (scenarios x policies x seeds x overrides)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from flightsw.sweep import Run, load_sweep, make_backend, run_sweep

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="run a grid of simulations and tabulate their metrics",
        description="Run every scenario x policy x seed x override value of a sweep file "
        "(docs/sweeps.md) on local processes or a Dask cluster. Writes OUT/runs/<run>.json "
        "as each run returns (a re-run skips them), then OUT/runs.parquet (one row per run), "
        "OUT/summary.parquet|csv|md (mean and Student-t interval per cell) and "
        "OUT/host.csv (wall times). Exit 1 if a run failed or could not run.",
    )
    parser.add_argument("sweep", type=Path, help="sweep TOML file (docs/sweeps.md)")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDR",
                       help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (default: the "
                       "sweep file's [cluster] scheduler, else local processes)")
    where.add_argument("--local", action="store_true",
                       help="local processes even if the sweep file names a cluster")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="local processes (default: [cluster] workers, else CPU count; 0: "
                        "in this process, one run after another)")
    parser.add_argument("--retry-failed", action="store_true",
                        help="run again the runs stored as failed (default: keep them)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no line per run")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    spec = load_sweep(args.sweep)
    if args.local:
        spec = spec.model_copy(update={"cluster": spec.cluster.model_copy(
            update={"scheduler": None})})
    backend = make_backend(spec, args.scheduler, args.workers)
    done = [0]

    def show(run: Run, result: dict[str, Any]) -> None:
        done[0] += 1
        if args.quiet:
            return
        wall = (result.get("host") or {}).get("run_wall_s")
        took = "" if wall is None else f" {wall:.1f} s"
        err = f"  {result['error']}" if result.get("error") else ""
        print(f"[{done[0]}] {run.run_id} {run.policy} seed {run.seed}: {result['status']}"
              f"{took}{err}", flush=True)

    print(f"sweep {spec.name}: running on {backend.description}", flush=True)
    try:
        report = run_sweep(spec, args.out, backend=backend, retry_failed=args.retry_failed,
                           on_result=show)
    finally:
        backend.close()
    print(f"{report.runs} runs in {report.cells} cells: {report.ok} ok, {report.failed} "
          f"failed, {report.not_run} not run; {report.skipped} already stored, "
          f"{report.executed} executed ({report.lost_attempts} lost to dead workers, "
          f"tried again) in {report.wall_s:.1f} s")
    for name in ("runs.parquet", "summary.md", "summary.parquet", "summary.csv"):
        print(f"{name}: {report.files[name]}")
    return 0 if report.failed == 0 and report.not_run == 0 else 1
