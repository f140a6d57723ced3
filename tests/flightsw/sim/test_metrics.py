"""Metrics of a run: the metered battery means, pre-emptions, per-class latency."""

from __future__ import annotations

import numpy as np
import pytest
from sim_cases import scenario, small

from flightsw.node.budget import Budget
from flightsw.sim import build_world
from flightsw.sim.engine import Simulation
from flightsw.sim.metrics import HOST_KEYS, MeteredSimulation, collect_metrics

NEW_KEYS = {"battery_reserve_mean", "battery_soc_mean"}


def _run(cls: type[Simulation], **over: object) -> Simulation:
    sim = cls(build_world(scenario(small(**over))))
    sim.run()
    return sim


def test_metering_changes_no_other_figure() -> None:
    plain = collect_metrics(_run(Simulation))
    metered = collect_metrics(_run(MeteredSimulation))
    assert set(metered) >= NEW_KEYS
    assert not NEW_KEYS & set(plain)
    for key, value in plain.items():
        if key not in HOST_KEYS:
            assert metered[key] == value, key


def test_battery_means_match_a_budget_stepped_alone() -> None:
    """With no job ever arriving, every node idles: the meter must give the mean of a
    Budget of the same nodes stepped with idle compute at the engine's step instants."""
    data = small(duration_hours=0.5)
    data["jobs"] = [{"name": "none", "flops_per_item": 1e9, "times_s": [],
                     "nodes": ["P00S00"]}]
    world = build_world(scenario(data))
    sim = MeteredSimulation(world)
    sim.run()
    m = collect_metrics(sim)
    b = Budget.from_profiles(world.profiles, world.orbits, world.t0)
    idle = np.array([p.compute.idle_w for p in world.profiles])
    step = world.scenario.step_s
    socs = []
    for k in range(1, round(world.mission_s / step) + 1):
        b.step(world.t0 + k * step, step, idle)
        socs.append(float(np.mean(b.battery_wh / b.capacity_wh)))
    floor = world.profiles[0].bus.dod_floor
    assert m["battery_soc_mean"] == pytest.approx(np.mean(socs), rel=1e-9)
    assert m["battery_reserve_mean"] == pytest.approx(np.mean(socs) - floor, rel=1e-9)


def test_reserve_lies_between_the_extremes() -> None:
    m = collect_metrics(_run(MeteredSimulation))
    floor = 0.3  # starcloud-h100
    assert m["min_soc"] - floor <= m["battery_reserve_mean"] <= 1.0 - floor
    assert m["battery_soc_mean"] - m["battery_reserve_mean"] == pytest.approx(floor)


def test_preemptions_read_from_the_engine_or_zero() -> None:
    sim = _run(Simulation)
    sim.preemptions = 7  # type: ignore[attr-defined]
    assert collect_metrics(sim)["preemptions"] == 7
    sim.__dict__.pop("preemptions")
    assert collect_metrics(sim)["preemptions"] == 0


def test_per_class_p95_latency_is_of_that_class_only() -> None:
    sim = _run(Simulation)
    m = collect_metrics(sim)
    for c in sim.w.classes:
        lat = [j.finished_at - j.submitted_at for j in sim.ledger.jobs.values()
               if j.cls.index == c.index and j.outcome == "done"]
        assert lat, c.name
        assert m["per_class"][c.name]["latency_p95_s"] == pytest.approx(np.percentile(lat, 95))
