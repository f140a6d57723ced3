"""The grid: every (scenario, policy, override values) cell times every seed, as runs.

Each run carries its validated scenario (overrides, policy and seed applied, so a worker
needs nothing else) and two ids that are digests of what it runs, not of where it sits in
the grid: the *cell id* of the scenario without its seed, and the *run id* (cell id and
seed). A re-run of the sweep, or of a larger one, finds a run's result by its id; a changed
scenario file gives new ids, so a stale result is never reused.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any

from flightsw.exceptions import ConfigError
from flightsw.sim.scenario import Scenario, load_scenario, parse_scenario
from flightsw.sweep.overrides import apply_overrides
from flightsw.sweep.spec import SweepSpec

__all__ = ["Run", "expand"]


@dataclass(frozen=True)
class Run:
    """One simulation of the sweep: a cell and a seed."""

    run_id: str
    cell_id: str
    scenario: str  # as written in the sweep file
    policy: str
    seed: int
    overrides: tuple[tuple[str, Any], ...]  # (dotted path, value) in sweep-file order
    sc: Scenario


def _digest(sc: Scenario) -> str:
    """The run's id: fields at their defaults are left out, so a field added to the schema
    later with a default (what the scenario meant before) keeps the stored runs' ids."""
    text = json.dumps(sc.model_dump(mode="json", exclude_defaults=True), sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def expand(spec: SweepSpec) -> list[Run]:
    """Every run of the sweep in grid order: scenarios, policies, override values (the
    first axis varying slowest), seeds; every scenario is validated here, before any run."""
    axes = list(spec.overrides.items())
    combos = list(itertools.product(*(values for _, values in axes)))
    runs: list[Run] = []
    seen: dict[str, str] = {}
    for label in spec.scenarios:
        base = load_scenario(spec.scenario_path(label))
        table = base.model_dump(mode="python")
        policies = spec.policies or [base.scheduler.policy]
        for policy in policies:
            for combo in combos:
                chosen = tuple((path, value) for (path, _), value in zip(axes, combo, strict=True))
                where = f"{label}" + "".join(f", {p} = {v!r}" for p, v in chosen)
                try:
                    data = apply_overrides(table, dict(chosen))
                    data.setdefault("scheduler", {})["policy"] = policy
                    data["seed"] = 0
                    cell_sc = parse_scenario(data, source=where, base_dir=base.base_dir)
                except ConfigError as exc:
                    raise ConfigError(f"overrides: {exc}") from None
                cell_id = _digest(cell_sc)
                for seed in spec.seed_list:
                    sc = cell_sc.model_copy(update={"seed": seed})
                    run_id = f"{cell_id}-s{seed}"
                    if run_id in seen:
                        raise ConfigError(
                            f"scenarios/overrides: {where} (seed {seed}) is the same run as "
                            f"{seen[run_id]}; each run must appear once"
                        )
                    seen[run_id] = f"{where} (seed {seed})"
                    runs.append(Run(run_id, cell_id, str(label), policy, seed, chosen, sc))
    return runs
