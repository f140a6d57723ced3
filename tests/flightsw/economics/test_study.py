"""STUDY.toml: loading, path resolution, errors naming the field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flightsw.economics.exceptions import StudyError
from flightsw.economics.study import load_study, parse_study

EXAMPLES = Path(__file__).parents[3] / "examples" / "studies"


def test_examples_load_and_resolve_paths() -> None:
    files = sorted(EXAMPLES.glob("*.toml"))
    assert files
    for path in files:
        study = load_study(path)
        if study.orbit.simulate is not None:
            assert Path(study.orbit.simulate).is_file(), path


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"orbit": {"satellites": 0}}, r"orbit\.satellites"),
        ({"orbit": {"launch_usd_per_kg": -1}}, r"orbit\.launch_usd_per_kg"),
        ({"ground": {"pue": 0.8}}, r"ground\.pue"),
        ({"workload": {"flops_per_inference": 0}}, r"workload\.flops_per_inference"),
        ({"years": 0}, "years"),
        ({"launch_prices": [100.0, -1.0]}, "launch_prices"),
        ({"orbit": {"colour": "red"}}, r"orbit\.colour"),
    ],
)
def test_bad_fields_are_named(
    over: dict[str, Any], field: str, study_data: Callable[..., dict[str, Any]]
) -> None:
    with pytest.raises(StudyError, match=field):
        parse_study(study_data(**over), source="s.toml")


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(StudyError, match="cannot read study"):
        load_study(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("title = ", "utf-8")
    with pytest.raises(StudyError, match="invalid TOML"):
        load_study(bad)
