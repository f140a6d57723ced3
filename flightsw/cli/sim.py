"""``flightsw sim``: simulate a whole constellation from a scenario file."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from flightsw.constellation import POLICIES
from flightsw.sim import ARCHIVE_SUBDIR, dumps_metrics, run_scenario
from flightsw.sim.scenario import Scenario, load_scenario

__all__ = ["register", "run"]

_SUMMARY = (
    ("jobs_submitted", "jobs submitted", "{:.0f}"),
    ("jobs_completed", "jobs completed", "{:.0f}"),
    ("jobs_failed", "jobs failed", "{:.0f}"),
    ("jobs_lost", "jobs lost", "{:.0f}"),
    ("duplicate_results", "duplicate results", "{:.0f}"),
    ("value_goodput", "value goodput", "{:.1f}"),
    ("value_submitted", "value submitted", "{:.1f}"),
    ("deadline_miss_rate", "deadline miss rate", "{:.3f}"),
    ("latency_p50_s", "latency p50 (s)", "{:.1f}"),
    ("latency_p95_s", "latency p95 (s)", "{:.1f}"),
    ("latency_p99_s", "latency p99 (s)", "{:.1f}"),
    ("energy_per_job_j", "energy per job (J)", "{:.0f}"),
    ("battery_floor_violation_s", "battery floor violation (s)", "{:.0f}"),
    ("thermal_violation_s", "thermal violation (s)", "{:.0f}"),
    ("migrations_per_job", "migrations per job", "{:.3f}"),
    ("migration_bytes", "migration bytes", "{:.3g}"),
    ("offered_load", "offered load", "{:.2f}"),
    ("wall_s", "wall time (s)", "{:.1f}"),
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "sim",
        help="simulate a constellation from a scenario file",
        description="Simulate every node of a scenario in one process on virtual time "
        "(deterministic for a seed). Writes OUT/metrics.json and the telemetry archive "
        f"OUT/{ARCHIVE_SUBDIR} (read it with `groundstation replay` / `report`).",
    )
    parser.add_argument("scenario", type=Path, help="scenario TOML file (docs/scenarios.md)")
    parser.add_argument(
        "--policy", choices=sorted(POLICIES), help="placement policy (default: the scenario's)"
    )
    parser.add_argument("--seed", type=int, help="random seed (default: the scenario's)")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument(
        "--execute",
        action="store_true",
        help="also run classes that name an ONNX model for real with onnxruntime "
        "(slow; for small scenarios)",
    )
    parser.add_argument("--no-archive", action="store_true", help="do not write the archive")
    parser.add_argument("--json", action="store_true", help="print metrics.json to stdout")
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar of mission time on stderr (default: when stderr is a terminal)",
    )
    parser.set_defaults(func=run)


@contextlib.contextmanager
def mission_progress(
    sc: Scenario, show: bool, console: Console | None = None
) -> Iterator[Callable[[float], None] | None]:
    """A rich progress bar of mission hours simulated (the engine reports its mission time
    every few hundred steps); ``None`` when not shown. A scenario whose length is given in
    orbits shows hours simulated without a total (the period is known only once built)."""
    if not show:
        yield None
        return
    total_h = None if sc.duration_hours is None else sc.duration_hours
    with Progress(
        TextColumn(f"[bold]{sc.name}[/]"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.completed:.1f}/{task.fields[total_text]} mission h"),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
        transient=False,
    ) as bar:
        task = bar.add_task("sim", total=total_h, total_text=f"{total_h:g}" if total_h else "?")

        def update(t: float) -> None:
            bar.update(task, completed=max(0.0, (t - sc.start_t) / 3600.0))

        yield update
        if total_h is not None:
            bar.update(task, completed=total_h)


def run(args: argparse.Namespace) -> int:
    sc = load_scenario(args.scenario)
    show = sys.stderr.isatty() if args.progress is None else args.progress
    with mission_progress(sc, show) as progress:
        metrics = run_scenario(
            sc,
            policy=args.policy,
            seed=args.seed,
            out_dir=args.out,
            archive=not args.no_archive,
            execute=args.execute,
            progress=progress,
        )
    if args.json:
        sys.stdout.write(dumps_metrics(metrics))
        return 0
    print(
        f"{metrics['scenario']}: {metrics['satellites']} satellites, "
        f"{metrics['mission_s'] / 3600:.2f} h, policy {metrics['policy']}, seed {metrics['seed']}"
    )
    for key, label, fmt in _SUMMARY:
        value = metrics.get(key)
        text = "-" if value is None else fmt.format(value)
        print(f"  {label:<30}{text:>14}")
    if metrics["failed_by_reason"]:
        print("  failed by reason:")
        for reason, count in metrics["failed_by_reason"].items():
            print(f"    {reason:<40}{count:>6}")
    print(f"metrics: {args.out / 'metrics.json'}")
    if not args.no_archive:
        print(f"archive: {args.out / ARCHIVE_SUBDIR}")
    return 0
