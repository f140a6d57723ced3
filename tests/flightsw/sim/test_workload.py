"""Arrivals: Poisson counts at the configured rates, bursts, explicit traces, seeds."""

from __future__ import annotations

import numpy as np
from sim_cases import T0, scenario, small

from flightsw.sim import build_world
from flightsw.sim.workload import generate_arrivals


def _world(**over: object):  # type: ignore[no-untyped-def]
    data = small(**over)
    return build_world(scenario(data))


def test_rates_match_poisson_expectation() -> None:
    world = _world(duration_hours=50.0)
    a = generate_arrivals(world, np.random.default_rng(1))
    quick = a.cls == 0
    expected_quick = 6.0 * world.n * 50.0  # per node per hour x nodes x hours
    expected_long = 12.0 * 50.0  # a total rate
    assert abs(quick.sum() - expected_quick) < 4 * np.sqrt(expected_quick)
    assert abs((~quick).sum() - expected_long) < 4 * np.sqrt(expected_long)
    assert np.all(a.node[~quick] == -1)  # ground arrivals
    counts = np.bincount(a.node[quick], minlength=world.n)
    assert counts.min() > 0.6 * counts.mean()
    assert np.all(np.diff(a.t) >= 0)
    assert a.items[quick].min() >= 50_000 and a.items[quick].max() <= 150_000


def test_bursts_multiply_rates_only_inside_their_window_and_nodes() -> None:
    bursts = [{"start_s": 36000.0, "duration_s": 36000.0, "multiplier": 4.0,
               "classes": ["quick"], "nodes": ["P00S00", "P00S01"]}]
    world = _world(duration_hours=40.0, bursts=bursts)
    a = generate_arrivals(world, np.random.default_rng(2))
    inside = (a.t >= T0 + 36000) & (a.t < T0 + 72000)
    q = a.cls == 0
    burst_nodes = np.isin(a.node, [0, 1])
    in_burst = (q & inside & burst_nodes).sum() / (2 * 10.0)
    quiet = (q & inside & ~burst_nodes).sum() / (4 * 10.0)
    outside = (q & ~inside & burst_nodes).sum() / (2 * 30.0)
    assert 4.0 * 6.0 * 0.7 < in_burst < 4.0 * 6.0 * 1.3
    assert 6.0 * 0.7 < quiet < 6.0 * 1.3
    assert 6.0 * 0.7 < outside < 6.0 * 1.3


def test_same_seed_same_arrivals_other_seed_differs() -> None:
    world = _world()
    a = generate_arrivals(world, np.random.default_rng(5))
    b = generate_arrivals(world, np.random.default_rng(5))
    c = generate_arrivals(world, np.random.default_rng(6))
    assert np.array_equal(a.t, b.t) and np.array_equal(a.items, b.items)
    assert not (len(a) == len(c) and np.array_equal(a.t, c.t))


def test_explicit_arrival_times() -> None:
    data = small()
    data["jobs"][0] = {"name": "trace", "flops_per_item": 1e12, "items": 1,
                       "times_s": [5.0, 100.0, 7200.0], "nodes": ["P01S02"]}
    world = build_world(scenario(data))
    a = generate_arrivals(world, np.random.default_rng(0))
    trace = a.cls == 0
    assert list(a.t[trace] - T0) == [5.0, 100.0]  # 7200 s is past the 1 h mission
    assert list(a.node[trace]) == [world.names.index("P01S02")] * 2
