from __future__ import annotations

import numpy as np
import pytest

from flightsw.exceptions import ConfigError
from flightsw.physics import circular_period_s, in_contact
from flightsw.physics.sun import illumination, sun_position_km
from flightsw.timeutil import parse_iso
from groundstation.demo.plan import DEFAULT_STATIONS, LOW_BATTERY_ABOVE_FLOOR, plan_demo
from hardware_profiles import load_profile

RUN_S = 100 * 60.0  # the default demo: 2 host minutes at x50


@pytest.mark.parametrize(
    "when", ["2025-03-20T12:00:00Z", "2025-06-21T03:30:00Z", "2025-11-02T18:45:00Z"]
)
def test_plan_meets_eclipse_and_contact(when: str) -> None:
    epoch = parse_iso(when)
    plan = plan_demo(epoch, 6, RUN_S)
    orbits = plan.orbits()
    # the run covers a full orbit (550 km: 95.65 min, brief sec. 9)
    assert plan.period_s == pytest.approx(95.65 * 60, abs=5)
    assert float(circular_period_s(550.0)) < RUN_S
    # a node is in contact with a station of the network when the demo starts
    assert in_contact(orbits.positions(epoch), epoch, plan.stations, 10.0).any()
    # sampled independently of the planner's event search: every node is in shadow for
    # 30+ minutes of the run, and its planned eclipse intervals agree with the samples
    times = epoch + np.arange(0.0, RUN_S, 20.0)
    r = orbits.positions_many(times)  # (T, N, 3)
    lit = np.stack(
        [illumination(r[k], sun_position_km(t)) for k, t in enumerate(times.tolist())]
    )
    for i, node in enumerate(plan.nodes):
        dark = lit[:, i] < 1.0
        assert 30 * 60 < dark.sum() * 20.0 < 37 * 60
        planned = sum(b - a for a, b in node.eclipses)
        assert planned == pytest.approx(dark.sum() * 20.0, abs=60.0)
    first = min(a for n in plan.nodes for a, _ in n.eclipses) - epoch
    assert 3 * 60 <= first <= 16 * 60  # one sees the train go from sunlight into shadow
    assert all(n.passes for n in plan.nodes)


def test_train_geometry_and_hardware() -> None:
    epoch = parse_iso("2025-11-02T10:00:00Z")
    plan = plan_demo(epoch, 6, RUN_S)
    r = plan.orbits().positions(epoch)
    gaps = np.linalg.norm(np.diff(r, axis=0), axis=1)
    assert gaps == pytest.approx(plan.spacing_km(), rel=1e-3)
    # neighbours are inside the smallest non-zero ISL range of the train (nano super 580 km)
    ranges = [n.isl_range_km for n in plan.nodes if n.isl_range_km > 0]
    assert gaps.max() < min(ranges)
    assert len({n.profile for n in plan.nodes}) >= 5
    low = [n for n in plan.nodes if n.initial_soc is not None]
    assert len(low) == 1
    floor = load_profile(low[0].profile).bus.dod_floor
    assert low[0].initial_soc == pytest.approx(floor + LOW_BATTERY_ABOVE_FLOOR)
    assert low[0].isl_range_km > 0  # it can hand its work to a neighbour
    text = "\n".join(plan.describe())
    for n in plan.nodes:
        assert n.node_id in text and n.profile in text
    assert all(s.name in text for s in DEFAULT_STATIONS)


def test_small_and_short_runs() -> None:
    epoch = parse_iso("2025-11-02T10:00:00Z")
    two = plan_demo(epoch, 2, RUN_S)
    assert [n.node_id for n in two.nodes] == ["sat1", "sat2"]
    assert all(n.initial_soc is None for n in two.nodes)
    short = plan_demo(epoch, 3, 60.0)  # one mission minute: the plan says what is missing
    assert short.duration_s == 60.0
    if not any(n.eclipses for n in short.nodes):
        assert any("no node meets an eclipse" in line for line in short.describe())


@pytest.mark.parametrize(("nodes", "duration"), [(0, RUN_S), (61, RUN_S), (3, 0.0)])
def test_bad_input_names_the_field(nodes: int, duration: float) -> None:
    with pytest.raises(ConfigError, match=r"--nodes|duration"):
        plan_demo(0.0, nodes, duration)
