"""A small sweep over the quickstart scenario, shortened by an override."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

QUICKSTART = Path(__file__).resolve().parents[3] / "examples" / "scenarios" / "quickstart.toml"

SMALL = f"""
scenarios = ["{QUICKSTART}"]
policies = ["forecast", "local"]
seeds = [1, 2]

[overrides]
duration_hours = [0.1]
"""


@pytest.fixture
def write_sweep(tmp_path: Path) -> Callable[[str], Path]:
    """Write a sweep file's text to ``tmp_path/sweep.toml``."""

    def write(text: str) -> Path:
        path = tmp_path / "sweep.toml"
        path.write_text(text)
        return path

    return write


@pytest.fixture
def quickstart() -> Path:
    return QUICKSTART


@pytest.fixture
def small() -> str:
    """The text of a sweep of 4 runs (2 policies x 2 seeds) of 0.1 mission hours."""
    return SMALL
