"""Fixtures for the model store, cost model and executor tests: the example models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flightsw.models import ModelStore, clear_cache

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "models"
EXAMPLE_FILES = ("digits_forest", "digits_classifier", "detector", "embedder")


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return EXAMPLES


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "models")


@pytest.fixture
def example_hashes(store: ModelStore) -> dict[str, str]:
    """Every example model put in the store: name -> hash."""
    return {name: store.put_file(EXAMPLES / f"{name}.onnx") for name in EXAMPLE_FILES}


@pytest.fixture(autouse=True)
def _fresh_cost_cache() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()
