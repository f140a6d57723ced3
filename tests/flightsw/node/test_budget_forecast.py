"""Budget's energy forecast (closed form over a cached eclipse scan) against stepping the
same physics forward at baseline load."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from flightsw.node.budget import EDGE_PAD_S, Budget
from flightsw.physics import walker
from hardware_profiles import load_profile

T0 = 1_750_464_000.0  # 2025-06-21T00:00:00Z


@pytest.mark.parametrize("profile", ["starcloud-h100", "jetson-agx-orin"])
def test_margin_matches_stepping_the_baseline_load(profile: str) -> None:
    prof = load_profile(profile)
    orbits = walker(8, 4, 1, 550.0, 53.0, T0)
    budget = Budget.from_profiles([prof], orbits, T0, initial_soc=0.6)
    # drain some energy first so the capacity clamp and the floor both matter
    for k in range(1, 61):
        budget.step(T0 + 60.0 * k, 60.0, np.full(8, prof.compute.power_modes[0].watts))
    now = budget.t
    margins = budget.margins_wh(now)
    window = [budget.next_eclipse(i, now) for i in range(8)]
    twin = copy.deepcopy(budget)
    lowest = twin.battery_wh.copy()
    ends = np.array([np.inf if w is None else w[1] for w in window])
    idle = np.full(8, prof.compute.idle_w)
    t = now
    while t < min(np.max(ends[np.isfinite(ends)]) + 30.0, now + 1.5 * 5739.0):
        t += 10.0
        twin.step(t, 10.0, idle)
        live = t <= ends + 1e-9
        lowest = np.where(live, np.minimum(lowest, twin.battery_wh), lowest)
    # the margin keeps EDGE_PAD_S of bus load aside when an eclipse is ahead
    pad = np.where(np.isfinite(ends), EDGE_PAD_S * (prof.bus.base_load_w
                                                    + prof.compute.idle_w) / 0.95 / 3600.0, 0.0)
    stepped = lowest - budget.floor_wh - pad
    # eclipse edges are sampled every 30 s: up to ~30 s of bus load either way
    tol = 30.0 * (prof.bus.base_load_w + prof.compute.idle_w) / 3600.0 / 0.95 + 0.5
    assert np.all(np.abs(margins - stepped) <= tol), (margins, stepped)
    for w in window:
        if w is not None:
            assert w[0] >= now and w[1] > w[0]
            assert w[1] - w[0] < 40 * 60  # no eclipse at 550 km lasts longer than 36 min


def test_forecast_is_cached_and_rescanned_when_the_horizon_runs_out() -> None:
    prof = load_profile("starcloud-h100")
    orbits = walker(4, 2, 1, 550.0, 53.0, T0)
    budget = Budget.from_profiles([prof], orbits, T0)
    first = budget.forecast(T0)
    assert budget.forecast(T0 + 5.0) is first  # within the cache age
    scan = budget._schedule
    budget.forecast(T0 + 60.0)
    assert budget._schedule is scan  # the same eclipse scan
    budget.forecast(T0 + 2.0 * 5739.0)
    assert budget._schedule is not scan  # the horizon ran past it
