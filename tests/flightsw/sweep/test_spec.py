"""The sweep file: its schema, and errors that name the field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from flightsw.exceptions import ConfigError
from flightsw.sweep import load_sweep
from flightsw.sweep.spec import DEFAULT_METRICS


def test_small_sweep(write_sweep: Callable[[str], Path], small: str, quickstart: Path) -> None:
    spec = load_sweep(write_sweep(small))
    assert spec.name == "sweep"
    assert spec.scenarios == [quickstart]
    assert spec.seed_list == [1, 2]
    assert spec.overrides == {"duration_hours": [0.1]}
    assert spec.cluster.scheduler is None
    assert spec.summary.metrics == list(DEFAULT_METRICS)


def test_nested_tables_and_quoted_keys_are_dotted_paths(
        write_sweep: Callable[[str], Path]) -> None:
    spec = load_sweep(write_sweep("""
scenarios = ["a.toml"]
seeds = 3
[overrides]
scheduler.lease_s = [30.0, 60.0]
"jobs[0].value" = [1.0]
jobs.detect.items = [[10, 20], 5]
[cluster]
scheduler = "tcp://127.0.0.1:8786"
"""))
    assert spec.seed_list == [0, 1, 2]
    assert spec.overrides == {"scheduler.lease_s": [30.0, 60.0], "jobs[0].value": [1.0],
                              "jobs.detect.items": [[10, 20], 5]}
    assert spec.scenario_path(spec.scenarios[0]) == spec.base_dir / "a.toml"
    assert spec.cluster.scheduler == "tcp://127.0.0.1:8786"


@pytest.mark.parametrize(("text", "message"), [
    ('seeds = [1]', r"sweep.toml: scenarios: field required"),
    ('scenarios = ["a.toml"]', r"sweep.toml: seeds: field required"),
    ('scenarios = ["a.toml"]\nseeds = [1, 2, 1]', r"seeds: .*repeated: \[1\]"),
    ('scenarios = ["a.toml"]\nseeds = 0', r"seeds"),
    ('scenarios = ["a.toml", "a.toml"]\nseeds = 1', r"scenarios: repeated \['a.toml'\]"),
    ('scenarios = ["a.toml"]\nseeds = 1\npolicies = ["forecast", "nope"]',
     r"policies: \[1\] 'nope' is not a policy"),
    ('scenarios = ["a.toml"]\nseeds = 1\n[overrides]\nduration_hours = 0.5',
     r"overrides.duration_hours: give a list of values \(one-element list"),
    ('scenarios = ["a.toml"]\nseeds = 1\n[overrides]\nduration_hours = []',
     r"overrides.duration_hours: give at least one value"),
    ('scenarios = ["a.toml"]\nseeds = 1\n[overrides]\nseed = [1, 2]',
     r"overrides.seed: set through the sweep's 'seeds'"),
    ('scenarios = ["a.toml"]\nseeds = 1\n[overrides]\nscheduler.policy = ["local"]',
     r"overrides.scheduler.policy: set through the sweep's 'policies'"),
    ('scenarios = ["a.toml"]\nseeds = 1\n[overrides]\nstep_s = [10, 10]',
     r"overrides.step_s: repeated values \['10'\]"),
    ('scenarios = ["a.toml"]\nseeds = 1\n[overrides]\n"a b" = [1]',
     r"overrides.'a b': not a dotted path"),
    ('scenarios = ["a.toml"]\nseeds = 1\n[cluster]\nscheduler = "localhost"',
     r"cluster.scheduler: String should match pattern"),
    ('scenarios = ["a.toml"]\nseeds = 1\n[cluster]\nworkers = 0', r"cluster.workers"),
    ('scenarios = ["a.toml"]\nseeds = 1\n[summary]\nconfidence = 1.5', r"summary.confidence"),
    ('scenarios = ["a.toml"]\nseeds = 1\nseed = 3',
     r"seed: unknown field \(not part of the sweep schema\)"),
    ('scenarios = ["a.toml"\nseeds = 1', r"sweep.toml: invalid TOML"),
])
def test_bad_sweep_files_name_the_field(write_sweep: Callable[[str], Path], text: str,
                                        message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_sweep(write_sweep(text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read sweep file"):
        load_sweep(tmp_path / "nope.toml")
