"""The three scheduler regimes (examples/scenarios/regime-*.toml): each is what its comments
say it is, and the compute regime is the benchmark scenario unchanged."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from flightsw.physics import power
from flightsw.sim import build_world, load_scenario
from hardware_profiles import load_profile

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "scenarios"
REGIMES = ("compute", "energy", "contact")


def _toml(name: str) -> dict[str, object]:
    return tomllib.loads((EXAMPLES / name).read_text())


@pytest.mark.parametrize("regime", REGIMES)
def test_regime_scenarios_load(regime: str) -> None:
    world = build_world(load_scenario(EXAMPLES / f"regime-{regime}.toml"))
    assert world.n >= 24
    assert len(world.classes) == 3
    assert world.faults


def test_compute_regime_is_the_benchmark_unchanged() -> None:
    assert _toml("regime-compute.toml") == _toml("benchmark.toml")


def test_small_array_profile_differs_from_its_parent_only_in_the_array() -> None:
    small = _toml("profiles/orin-nano-12u-small-array.toml")
    parent = tomllib.loads(
        (EXAMPLES.parents[1] / "hardware_profiles" / "jetson-orin-nano-super.toml").read_text()
    )
    for table in (small, parent):
        del table["name"], table["description"]
        bus = table["bus"]
        assert isinstance(bus, dict)
        del bus["array_area_m2"]
    assert small == parent


def test_energy_regime_is_energy_bound() -> None:
    """Demand (~0.6 of full speed) is above what the array can pay for at beta = 0 with
    the best mix of the fastest and the most frugal mode."""
    prof = load_profile(EXAMPLES / "profiles" / "orin-nano-12u-small-array.toml")
    b = prof.bus
    params = power.PowerParams(b.array_area_m2, b.cell_efficiency, b.degradation, b.battery_wh,
                               b.charge_efficiency, b.discharge_efficiency, b.dod_floor)
    eclipse = prof.design.eclipse_fraction
    sustainable = float(power.max_sustainable_load_w(params, 1.0 - eclipse))
    spare = sustainable - b.base_load_w - prof.compute.idle_w  # W above idle, orbit average
    modes = {m.name: m for m in prof.compute.power_modes}
    fast, slow = modes["25W"], modes["7W"]
    idle = prof.compute.idle_w
    # share of time at the fast mode that spends exactly `spare` (the rest at the slow one)
    at_fast = (spare - (slow.watts - idle)) / (fast.watts - slow.watts)
    throughput = at_fast * fast.throughput + (1.0 - at_fast) * slow.throughput
    assert 0.0 < at_fast < 1.0
    assert throughput < 0.55  # the energy-limited share of full speed
    world = build_world(load_scenario(EXAMPLES / "regime-energy.toml"))
    assert world.n == 143
    assert world.scenario.start.startswith("2026-03-20")  # equinox: every plane sees eclipse
    assert np.isclose(world.mission_s, 86_400.0)
