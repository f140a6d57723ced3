"""Small simulation scenarios for the tests (built as dicts, validated by the real schema)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from flightsw.physics import ecef_to_geodetic, eci_to_ecef
from flightsw.physics.orbit import CircularOrbits
from flightsw.sim import Scenario, Simulation, build_world, collect_metrics, parse_scenario
from flightsw.timeutil import parse_iso

MODELS = Path(__file__).resolve().parents[2] / "examples" / "models"
START = "2025-06-21T00:00:00Z"
T0 = parse_iso(START)
H100_OPS = 989e12 * 0.35  # starcloud-h100 effective bf16 ops/s at its fastest mode


def small(**over: Any) -> dict[str, Any]:
    """6 H100 satellites (Walker 6/2/1 at 550 km, 53 deg), one station, 1 hour."""
    base: dict[str, Any] = {
        "name": "small",
        "seed": 3,
        "start": START,
        "duration_hours": 1.0,
        "step_s": 10.0,
        "telemetry_period_s": 60.0,
        "constellation": {
            "walker": {
                "total": 6, "planes": 2, "phasing": 1, "altitude_km": 550.0,
                "inclination_deg": 53.0,
            }
        },
        "profiles": {"default": "starcloud-h100"},
        "ground_stations": [
            {"name": "weilheim", "lat_deg": 47.88, "lon_deg": 11.08, "alt_m": 600.0}
        ],
        "scheduler": {"policy": "forecast", "migration_period_s": 10.0},
        "jobs": [
            {
                "name": "quick",
                "flops_per_item": 17.6e9,
                "input_bytes_per_item": 150e3,
                "output_bytes_per_item": 16.0,
                "items": [50_000, 150_000],
                "rate_per_node_per_hour": 6.0,
                "deadline_s": 120.0,
                "value": 2.0,
                "priority": 8,
            },
            {
                "name": "long",
                "flops_per_item": 32e12,
                "weight_bytes": 16e9,
                "input_bytes_per_item": 2e3,
                "output_bytes_per_item": 2e3,
                "items": [3000, 6000],
                "origin": "ground",
                "rate_per_hour": 12.0,
                "deadline_s": 3600.0,
                "value": 10.0,
                "priority": 2,
            },
        ],
    }
    for key, value in over.items():
        base[key] = value
    return base


def scenario(data: dict[str, Any], base_dir: Path | None = None) -> Scenario:
    return parse_scenario(copy.deepcopy(data), source="test", base_dir=base_dir or MODELS)


def run_case(data: dict[str, Any], base_dir: Path | None = None
        ) -> tuple[Simulation, dict[str, Any]]:
    """The scenario ``data`` run to its end, and its metrics."""
    sim = Simulation(build_world(scenario(data, base_dir)))
    sim.run()
    return sim, collect_metrics(sim)

def subpoint(orbits: CircularOrbits, t: float, i: int = 0) -> tuple[float, float]:
    """Geodetic latitude and longitude (deg) under satellite ``i`` at ``t``."""
    lat, lon, _ = ecef_to_geodetic(eci_to_ecef(orbits.positions(t), t))
    return float(np.asarray(lat)[i]), float(np.asarray(lon)[i])
