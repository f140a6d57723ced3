"""Compute power booked per run: a completed run costs the battery exactly its energy."""

from __future__ import annotations

import numpy as np
import pytest

from flightsw.node.load import ComputeLoad

T0 = 1.8e9


def test_a_run_across_steps_pays_exactly_its_modelled_energy() -> None:
    load = ComputeLoad(np.array([10.0, 5.0]))
    load.begin(0, T0 + 3.0, 25.0, 60.0)  # 25 s at 60 W, 50 W above idle
    paid = 0.0
    t = T0
    for _ in range(4):  # steps of 10 s: the run spans three of them
        t += 10.0
        w = load.power(t, 10.0)
        paid += (w[0] - 10.0) * 10.0
        assert w[1] == 5.0
    load.close(0, T0 + 28.0, complete=True)
    paid += (load.power(t + 10.0, 10.0)[0] - 10.0) * 10.0
    assert paid == pytest.approx(50.0 * 25.0, rel=1e-12)


def test_a_run_far_shorter_than_time_resolution_is_paid_in_full() -> None:
    load = ComputeLoad(np.array([0.0]))
    latency = 2e-8  # below the ~2.4e-7 s resolution of absolute times near T0
    load.begin(0, T0 + 1.0, latency, 700.0)
    load.close(0, T0 + 1.0 + latency, complete=True)
    assert load.unbooked_wh(0) * 3600.0 == pytest.approx(700.0 * latency, rel=1e-12)
    w = load.power(T0 + 10.0, 10.0)
    assert w[0] * 10.0 == pytest.approx(700.0 * latency, rel=1e-12)
    assert load.power(T0 + 20.0, 10.0)[0] == 0.0  # paid once


def test_a_stopped_run_pays_what_it_ran_and_a_dead_row_draws_nothing() -> None:
    load = ComputeLoad(np.array([10.0, 10.0]))
    load.begin(0, T0, 100.0, 30.0)
    w = load.power(T0 + 10.0, 10.0)
    assert w[0] == pytest.approx(30.0)
    load.close(0, T0 + 14.0, complete=False)
    w = load.power(T0 + 20.0, 10.0, alive=np.array([True, False]))
    assert w[0] == pytest.approx(10.0 + 20.0 * 4.0 / 10.0)
    assert w[1] == 0.0
