"""A minimal valid study table, with overrides merged one level deep."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

StudyData = Callable[..., dict[str, Any]]


def _study_data(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": "t",
        "years": 5.0,
        "orbit": {"profile": "starcloud-h100", "satellites": 100, "launch_usd_per_kg": 1000.0},
        "ground": {"server_usd_per_accelerator": 40000.0, "it_w_per_accelerator": 1275.0,
                   "facility_usd_per_w": 12.5, "electricity_usd_per_kwh": 0.08, "pue": 1.2},
        "workload": {"flops_per_inference": 2e12},
    }
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


@pytest.fixture
def study_data() -> StudyData:
    return _study_data
