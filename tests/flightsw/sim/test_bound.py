"""The fluid upper bound: optima known by hand on small LPs, and no simulated run above it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from sim_cases import scenario, small

from flightsw.constellation import POLICIES
from flightsw.sim import build_world, run_scenario
from flightsw.sim.bound import Fluid, solve_fluid, value_bound

BIG = 1e9


def fluid(jobs: list[tuple[float, float, int, int]], *, slots: int = 1, slot_s: float = 100.0,
          modes: tuple[tuple[float, float], ...] = ((1.0, 0.0),), **over: Any) -> Fluid:
    """One node; ``jobs`` as (value, work seconds, first slot, last slot); ``modes`` as
    (node seconds, Wh above idle) per work second. Energy is ample unless overridden."""
    n = len(jobs)
    base = Fluid(
        capacity_s=np.full((1, slots), slot_s),
        solar_wh=np.zeros((1, slots)),
        base_wh=np.zeros((1, slots)),
        e0_wh=np.array([BIG]),
        floor_wh=np.zeros((1, slots)),
        cap_wh=np.array([2 * BIG]),
        eta_c=np.array([1.0]),
        eta_d=np.array([1.0]),
        time_per_s=np.array([[m[0] for m in modes]]),
        wh_per_s=np.array([[m[1] for m in modes]]),
        job_kind=np.zeros(n, dtype=np.int64),
        job_value=np.array([j[0] for j in jobs]),
        job_work_s=np.array([j[1] for j in jobs]),
        job_first=np.array([j[2] for j in jobs], dtype=np.int64),
        job_last=np.array([j[3] for j in jobs], dtype=np.int64),
        job_possible=np.ones(n, dtype=bool),
        job_uplink_bytes=np.zeros(n),
        uplink_bytes=np.zeros(slots),
    )
    return replace(base, **over)


def best(fl: Fluid) -> float:
    return solve_fluid(fl)[0]


def test_compute_only_is_a_fractional_knapsack() -> None:
    # 100 s for three 60 s jobs worth 1, 2, 3: all of the 3, two thirds of the 2
    fl = fluid([(1.0, 60.0, 0, 0), (2.0, 60.0, 0, 0), (3.0, 60.0, 0, 0)])
    assert best(fl) == pytest.approx(3.0 + 2.0 * 40.0 / 60.0)


def test_deadlines_by_slot() -> None:
    # slot 0 for the urgent job (50 s, worth 5), slot 1 for half of the other (100 s, 1)
    fl = fluid([(5.0, 50.0, 0, 0), (1.0, 100.0, 0, 1)], slots=2, slot_s=50.0)
    assert best(fl) == pytest.approx(5.5)


def test_a_job_that_cannot_finish_by_its_deadline_earns_nothing() -> None:
    fl = fluid([(5.0, 50.0, 0, 0), (9.0, 10.0, 0, 0)])
    fl = replace(fl, job_possible=np.array([True, False]))
    assert best(fl) == pytest.approx(5.0)


def test_energy_above_the_floor_limits_work() -> None:
    # 5 Wh above the floor, 0.1 Wh per work second drawn at 50 % discharge efficiency:
    # 25 s of a 100 s job worth 10
    fl = fluid([(10.0, 100.0, 0, 0)], slot_s=1000.0, modes=((1.0, 0.1),),
               e0_wh=np.array([10.0]), cap_wh=np.array([100.0]),
               floor_wh=np.full((1, 1), 5.0), eta_c=np.array([0.9]), eta_d=np.array([0.5]))
    assert best(fl) == pytest.approx(2.5)


def test_dvfs_mixes_a_fast_and_a_frugal_mode() -> None:
    # fast: 1 s and 0.2 Wh per work second; slow: 4 s and 0.05 Wh. 100 s and 5 Wh allow
    # 25 work seconds with either mode alone, 40 with 20 of each (the LP's optimum)
    fl = fluid([(100.0, 100.0, 0, 0)], modes=((1.0, 0.2), (4.0, 0.05)),
               e0_wh=np.array([5.0]), cap_wh=np.array([100.0]))
    assert best(fl) == pytest.approx(40.0)


def test_a_dominated_mode_changes_nothing() -> None:
    one = fluid([(100.0, 100.0, 0, 0)], modes=((1.0, 0.2),), e0_wh=np.array([5.0]),
                cap_wh=np.array([100.0]))
    two = fluid([(100.0, 100.0, 0, 0)], modes=((1.0, 0.2), (2.0, 0.5)), e0_wh=np.array([5.0]),
                cap_wh=np.array([100.0]))
    assert best(one) == pytest.approx(25.0)
    assert best(two) == pytest.approx(25.0)


def test_charging_loses_to_efficiency_before_the_energy_is_spent() -> None:
    # slot 0: 10 Wh of sun, no time to compute; at 90 % charge efficiency 9 Wh are stored
    # and buy 9 work seconds at 1 Wh each in slot 1
    fl = fluid([(100.0, 100.0, 0, 1)], slots=2, modes=((1.0, 1.0),),
               capacity_s=np.array([[0.0, 100.0]]), solar_wh=np.array([[10.0, 0.0]]),
               e0_wh=np.array([0.0]), cap_wh=np.array([100.0]), eta_c=np.array([0.9]))
    assert best(fl) == pytest.approx(9.0)


def test_battery_capacity_caps_what_is_stored() -> None:
    fl = fluid([(100.0, 100.0, 0, 1)], slots=2, modes=((1.0, 1.0),),
               capacity_s=np.array([[0.0, 100.0]]), solar_wh=np.array([[10.0, 0.0]]),
               e0_wh=np.array([0.0]), cap_wh=np.array([4.0]))
    assert best(fl) == pytest.approx(4.0)


def test_base_load_is_paid_first() -> None:
    fl = fluid([(100.0, 100.0, 0, 0)], modes=((1.0, 1.0),), e0_wh=np.array([10.0]),
               base_wh=np.array([[7.0]]), cap_wh=np.array([100.0]))
    assert best(fl) == pytest.approx(3.0)


def test_uplink_capacity_limits_ground_jobs() -> None:
    # 1 MB of inputs, 0.7 MB of uplink over the job's two slots: 70 % of a job worth 7
    fl = fluid([(7.0, 10.0, 0, 1)], slots=2, job_uplink_bytes=np.array([1e6]),
               uplink_bytes=np.array([0.5e6, 0.2e6]))
    assert best(fl) == pytest.approx(4.9)


def test_work_waits_for_its_inputs() -> None:
    # the inputs could only go up in slot 1, but the job's window is slot 0
    fl = fluid([(7.0, 10.0, 0, 0), (1.0, 10.0, 0, 1)], slots=2,
               job_uplink_bytes=np.array([1e6, 1e6]), uplink_bytes=np.array([0.0, 2e6]))
    assert best(fl) == pytest.approx(1.0)


def _busy(**over: Any) -> dict[str, Any]:
    """The small scenario with its load raised well past capacity (the bound binds)."""
    data = small(**over)
    data["jobs"][0]["rate_per_node_per_hour"] = 60.0
    data["jobs"][1]["rate_per_hour"] = 200.0
    return data


def _energy_bound() -> dict[str, Any]:
    """Six small-array Orin Nano CubeSats for 6 hours at ~1.2 x their full-speed capacity,
    which their arrays pay for about half of."""
    data = _busy(duration_hours=6.0)
    data["profiles"] = {"default": "profiles/orin-nano-12u-small-array.toml"}
    data["jobs"][0].update(flops_per_item=20e9, items=[4000, 8000], deadline_s=120.0,
                           rate_per_node_per_hour=60.0)
    data["jobs"][1].update(flops_per_item=2e12, weight_bytes=2e9, items=[600, 1200],
                           rate_per_hour=60.0)
    return data


@pytest.mark.timeout(900)  # every policy, 6 nodes x 6 h: minutes on a loaded host
@pytest.mark.parametrize("case", ["busy", "energy"])
def test_no_policy_run_exceeds_the_bound(case: str) -> None:
    from pathlib import Path

    examples = Path(__file__).resolve().parents[3] / "examples" / "scenarios"
    data = _busy() if case == "busy" else _energy_bound()
    sc = scenario(data, base_dir=examples)
    world = build_world(sc)
    keep = value_bound(world, slot_s=60.0)
    empty = value_bound(world, slot_s=60.0, reserve="empty")
    assert keep.value <= empty.value + 1e-6
    assert keep.value < keep.value_submitted  # the load is past capacity: the bound binds
    for policy in POLICIES:
        m = run_scenario(sc, policy=policy, archive=False)
        assert m["value_submitted"] == pytest.approx(keep.value_submitted)
        limit = keep if m["battery_floor_violation_s"] == 0 else empty
        assert m["value_goodput"] <= limit.value + 1e-6, (policy, m["value_goodput"], limit)
