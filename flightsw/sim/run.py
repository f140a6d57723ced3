"""Run a scenario end to end: build, simulate, write ``metrics.json`` and the archive."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flightsw.exceptions import ScenarioError
from flightsw.sim.metrics import MeteredSimulation, collect_metrics, dumps_metrics
from flightsw.sim.scenario import Scenario, load_scenario
from flightsw.sim.world import build_world

__all__ = ["ARCHIVE_SUBDIR", "run_scenario"]

#: Where the telemetry archive goes under the output directory (the ground station's layout:
#: ``groundstation replay DIR/archive/telemetry``).
ARCHIVE_SUBDIR = Path("archive") / "telemetry"


def run_scenario(
    scenario: Scenario | str | Path,
    *,
    policy: str | None = None,
    seed: int | None = None,
    out_dir: Path | None = None,
    archive: bool = True,
    execute: bool = False,
    terminals: int | None = None,
    progress: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Simulate ``scenario`` and return its metrics.

    With ``out_dir``, writes ``out_dir/metrics.json`` and (unless ``archive`` is false) the
    telemetry archive under ``out_dir/archive/telemetry``; the archive directory must not
    already hold records (a run never appends to an old one).
    """
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    world = build_world(sc, policy=policy, seed=seed)
    archive_dir = None
    models_dir = None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        if archive:
            archive_dir = out_dir / ARCHIVE_SUBDIR
            if archive_dir.exists() and any(archive_dir.glob("seg-*.odca")):
                raise ScenarioError(
                    f"out: {archive_dir} already holds an archive; choose an empty directory"
                )
        if execute:
            models_dir = out_dir / "models"
    elif execute:
        raise ScenarioError("execute: needs an output directory (models are stored there)")
    # metered: the mean battery reserve and state of charge are in every run's metrics
    sim = MeteredSimulation(world, archive_dir=archive_dir, execute=execute,
                            models_dir=models_dir, terminals=terminals)
    sim.run(progress)
    metrics = collect_metrics(sim)
    if out_dir is not None:
        (out_dir / "metrics.json").write_text(dumps_metrics(metrics))
    return metrics
