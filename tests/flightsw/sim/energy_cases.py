"""A small energy-bound scenario for the tests (issue #12's regime, shrunk): Orin Nano
Super 12U CubeSats, equinox start so every plane sees eclipse, three job classes at about
0.6 of the fleet's full-speed capacity (urgent short, medium, long low-priority batch)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from flightsw.sim import Scenario, parse_scenario

MODELS = Path(__file__).resolve().parents[3] / "examples" / "models"
SMALL_ARRAY = (Path(__file__).resolve().parents[3] / "examples" / "scenarios" / "profiles"
               / "orin-nano-12u-small-array.toml")
EQUINOX = "2025-03-20T12:00:00Z"


def energy_bound(**over: Any) -> dict[str, Any]:
    """12 small-array Orin Nano Super CubeSats (Walker 12/3/1, 550 km, 53 deg), 4 orbits."""
    base: dict[str, Any] = {
        "name": "energy-small",
        "seed": 1,
        "start": EQUINOX,
        "duration_orbits": 4.0,
        "step_s": 10.0,
        "telemetry_period_s": 0.0,
        "constellation": {
            "walker": {
                "total": 12, "planes": 3, "phasing": 1, "altitude_km": 550.0,
                "inclination_deg": 53.0,
            }
        },
        "profiles": {"default": str(SMALL_ARRAY)},
        "ground_stations": [
            {"name": "weilheim", "lat_deg": 47.88, "lon_deg": 11.08, "alt_m": 600.0},
            {"name": "santiago", "lat_deg": -33.15, "lon_deg": -70.67, "alt_m": 700.0},
        ],
        "scheduler": {"policy": "forecast", "migration_period_s": 10.0,
                      "overload_backlog_s": 14400.0},
        "jobs": [
            {   # urgent triage: ~8-25 s at full speed, due within two minutes
                "name": "urgent",
                "flops_per_item": 1e9,
                "bytes_per_item": 1e6,
                "weight_bytes": 100e6,
                "input_bytes_per_item": 10e3,
                "output_bytes_per_item": 16.0,
                "items": [50_000, 150_000],
                "origin": "onboard",
                "rate_per_node_per_hour": 6.0,
                "deadline_s": 120.0,
                "value": 2.0,
                "priority": 8,
            },
            {   # detection: ~1.5-5 min, due within 30 minutes
                "name": "detect",
                "flops_per_item": 20e9,
                "bytes_per_item": 20e6,
                "weight_bytes": 250e6,
                "input_bytes_per_item": 50e3,
                "output_bytes_per_item": 2e3,
                "items": [25_000, 80_000],
                "origin": "onboard",
                "rate_per_node_per_hour": 3.0,
                "deadline_s": 1800.0,
                "value": 5.0,
                "priority": 5,
            },
            {   # long batch from the ground: ~20-40 min, due within 4 hours
                "name": "batch",
                "flops_per_item": 1e12,
                "bytes_per_item": 100e6,
                "weight_bytes": 4e9,
                "input_bytes_per_item": 2e3,
                "output_bytes_per_item": 2e3,
                "items": [7_000, 14_000],
                "origin": "ground",
                "rate_per_node_per_hour": 0.6,
                "deadline_s": 14400.0,
                "value": 20.0,
                "priority": 2,
            },
        ],
    }
    for key, value in over.items():
        base[key] = value
    return base


def scenario(data: dict[str, Any]) -> Scenario:
    return parse_scenario(copy.deepcopy(data), source="test", base_dir=MODELS)
