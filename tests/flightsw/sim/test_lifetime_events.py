"""Lifetime events drawn for a per-job run: as many failures and manoeuvres as the
profile's figures say, inside the run, repeatable for a seed."""

from __future__ import annotations

import numpy as np
import pytest

from flightsw.node.aging import dose_rate_rad_per_year, survival
from flightsw.sim.lifetime_events import draw_lifetime_events
from hardware_profiles import load_profile

DAY = 86_400.0
YEAR = 365.25 * DAY


def test_counts_follow_the_profile_and_events_fall_inside_the_run() -> None:
    prof = load_profile("starcloud-h100")
    life = prof.lifetime
    assert life is not None
    n, dur, year = 4000, 30 * DAY, 2.0
    draw = draw_lifetime_events([prof] * n, 1000.0, dur, year, np.random.default_rng(5))
    ys = np.array([year, year + dur / YEAR])
    alive = survival(life, ys, dose_rate_rad_per_year(life) * ys)
    p_fail = 1 - alive[1] / alive[0]
    want_fail = n * p_fail
    assert abs(len(draw.failures) - want_fail) < 4 * np.sqrt(want_fail)
    want_man = n * life.manoeuvres_per_year * dur / YEAR
    got_man = sum(len(v) for v in draw.manoeuvres.values())
    assert abs(got_man - want_man) < 4 * np.sqrt(want_man)
    assert all(1000.0 <= t <= 1000.0 + dur for t in draw.failures.values())
    for spans in draw.manoeuvres.values():
        for a, b in spans:
            assert 1000.0 <= a <= 1000.0 + dur
            assert b - a == pytest.approx(life.manoeuvre_pause_s)


def test_a_seed_repeats_and_profiles_without_lifetime_draw_nothing() -> None:
    prof = load_profile("starcloud-h100")
    bare = prof.model_copy(update={"lifetime": None})
    a = draw_lifetime_events([prof, bare] * 50, 0.0, 400 * DAY, 0.0, np.random.default_rng(1))
    b = draw_lifetime_events([prof, bare] * 50, 0.0, 400 * DAY, 0.0, np.random.default_rng(1))
    assert a.failures == b.failures and a.manoeuvres == b.manoeuvres and a.count > 0
    assert all(i % 2 == 0 for i in (*a.failures, *a.manoeuvres))
