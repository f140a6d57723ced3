"""Dotted paths into a scenario table: tables by key, arrays by name or index."""

from __future__ import annotations

from typing import Any

import pytest

from flightsw.exceptions import ConfigError
from flightsw.sweep.overrides import apply_overrides, parse_path

TABLE: dict[str, Any] = {
    "duration_hours": 2.0,
    "scheduler": {"policy": "forecast", "lease_s": 60.0},
    "jobs": [{"name": "digits", "value": 1.0}, {"name": "detect", "value": 3.0}],
}


def test_parse_path() -> None:
    assert parse_path("duration_hours") == ("duration_hours",)
    assert parse_path("jobs[1].value") == ("jobs", 1, "value")
    assert parse_path("jobs.0.value") == ("jobs", "0", "value")
    assert parse_path("a[0][2].b") == ("a", 0, 2, "b")
    for bad in ("", ".a", "a..b", "a.", "a[x]", "a b", "a[0]b", "[0]"):
        with pytest.raises(ConfigError, match="not a dotted path"):
            parse_path(bad)


def test_set_by_key_name_and_index_leaves_the_input_alone() -> None:
    out = apply_overrides(TABLE, {
        "duration_hours": 0.5,
        "scheduler.lease_s": 30.0,
        "jobs.detect.value": 9.0,
        "jobs[0].value": 4.0,
        "jobs.1.priority": 2,
        "constellation.j2": False,  # a table the scenario does not hold yet is added
    })
    assert out["duration_hours"] == 0.5
    assert out["scheduler"] == {"policy": "forecast", "lease_s": 30.0}
    assert out["jobs"] == [{"name": "digits", "value": 4.0},
                           {"name": "detect", "value": 9.0, "priority": 2}]
    assert out["constellation"] == {"j2": False}
    assert TABLE["jobs"][1] == {"name": "detect", "value": 3.0}
    assert TABLE["duration_hours"] == 2.0


def test_bad_paths_name_what_is_wrong() -> None:
    with pytest.raises(ConfigError, match=r"jobs.nosuch.value: jobs: no element named 'nosuch'"):
        apply_overrides(TABLE, {"jobs.nosuch.value": 1.0})
    with pytest.raises(ConfigError, match=r"index 5 out of range \(the array has 2\)"):
        apply_overrides(TABLE, {"jobs[5].value": 1.0})
    with pytest.raises(ConfigError, match=r"duration_hours is not an array"):
        apply_overrides(TABLE, {"duration_hours[0]": 1.0})
