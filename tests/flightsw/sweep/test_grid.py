"""Grid expansion: order, ids that are digests of what runs, overrides applied, errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from flightsw.exceptions import ConfigError
from flightsw.sim import load_scenario
from flightsw.sweep import expand, load_sweep


def test_grid_order_and_overrides(write_sweep: Callable[[str], Path], quickstart: Path) -> None:
    runs = expand(load_sweep(write_sweep(f"""
scenarios = ["{quickstart}"]
policies = ["forecast", "local"]
seeds = [7, 3]
[overrides]
duration_hours = [0.5, 1.0]
jobs.detect.rate_per_node_per_hour = [2.0]
"scheduler.lease_s" = [45.0]
""")))
    assert len(runs) == 2 * 2 * 2
    assert [(r.policy, r.overrides[0][1], r.seed) for r in runs] == [
        (p, h, s) for p in ("forecast", "local") for h in (0.5, 1.0) for s in (7, 3)]
    base = load_scenario(quickstart)
    for r in runs:
        assert r.sc.seed == r.seed and r.sc.scheduler.policy == r.policy
        assert r.sc.duration_hours == dict(r.overrides)["duration_hours"]
        assert r.sc.jobs[1].rate_per_node_per_hour == 2.0
        assert r.sc.scheduler.lease_s == 45.0
        assert r.sc.base_dir == base.base_dir
        assert r.run_id == f"{r.cell_id}-s{r.seed}"
        # everything not overridden is the scenario file's
        assert r.sc.jobs[0] == base.jobs[0] and r.sc.faults == base.faults
    assert len({r.run_id for r in runs}) == 8
    assert len({r.cell_id for r in runs}) == 4


def test_ids_are_digests_of_the_run(write_sweep: Callable[[str], Path], quickstart: Path,
                                    tmp_path: Path) -> None:
    text = f'scenarios = ["{quickstart}"]\nseeds = [1]\n[overrides]\nduration_hours = [0.5]\n'
    (one,) = expand(load_sweep(write_sweep(text)))
    # a bigger grid holding the same run finds the same id
    bigger = expand(load_sweep(write_sweep(text.replace("[1]", "[0, 1]").replace(
        "[0.5]", "[2.0, 0.5]"))))
    assert one.run_id in {r.run_id for r in bigger}
    # a changed scenario is a new run
    copy = tmp_path / "q.toml"
    copy.write_text(quickstart.read_text().replace("rate_per_hour = 20.0",
                                                   "rate_per_hour = 21.0"))
    (changed,) = expand(load_sweep(write_sweep(text.replace(str(quickstart), str(copy)))))
    assert changed.run_id != one.run_id
    # a field written out at its default (as a field added to the schema later reads old
    # scenarios) is the same run
    (tmp_path / "d").mkdir()
    same = tmp_path / "d" / quickstart.name  # a scenario without a name takes its file's
    same.write_text(quickstart.read_text().replace("[[ground_stations]]",
                                                   "[[ground_stations]]\nantennas = 1", 1))
    assert same.read_text() != quickstart.read_text()
    (default,) = expand(load_sweep(write_sweep(text.replace(str(quickstart), str(same)))))
    assert default.run_id == one.run_id


@pytest.mark.parametrize(("override", "message"), [
    ("scheduler.lease_s = [-1.0]",
     r"overrides: .*quickstart.toml, scheduler.lease_s = -1.0: scheduler.lease_s: Input "
     r"should be greater than 0"),
    ("scheduler.lease_sec = [1.0]",
     r"scheduler.lease_sec: unknown field \(not part of the scenario schema\)"),
    ("jobs.nosuch.value = [1.0]", r"jobs.nosuch.value: jobs: no element named 'nosuch'"),
    ("\"jobs[0].deadline_s\" = ['soon']", r"jobs\[0\].deadline_s: Input should be a valid number"),
])
def test_bad_overrides_name_the_field(write_sweep: Callable[[str], Path], quickstart: Path,
                                      override: str, message: str) -> None:
    spec = load_sweep(write_sweep(f'scenarios = ["{quickstart}"]\nseeds = [1]\n'
                                  f'[overrides]\n{override}\n'))
    with pytest.raises(ConfigError, match=message):
        expand(spec)


def test_missing_scenario_is_named(write_sweep: Callable[[str], Path]) -> None:
    with pytest.raises(ConfigError, match=r"nope.toml: cannot read scenario"):
        expand(load_sweep(write_sweep('scenarios = ["nope.toml"]\nseeds = [1]\n')))
