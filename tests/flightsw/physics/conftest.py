"""Shared fixtures: the ISS TLE and an offline astropy oracle."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from flightsw.physics.orbit import TleOrbits

DATA = Path(__file__).parent / "data"
ISS_TLE = DATA / "iss_2019-12-09.tle"


@pytest.fixture(scope="session")
def iss() -> TleOrbits:
    """ISS (ZARYA), element set epoch 2019-12-09T16:38:29Z."""
    return TleOrbits.from_file(ISS_TLE)


@pytest.fixture(scope="session")
def oracle() -> ModuleType:
    """astropy_oracle.py, with astropy set to use only its bundled data (IERS-B)."""
    from astropy.utils import iers

    iers.conf.auto_download = False
    iers.conf.auto_max_age = None
    spec = importlib.util.spec_from_file_location(
        "astropy_oracle", DATA.parent / "astropy_oracle.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
