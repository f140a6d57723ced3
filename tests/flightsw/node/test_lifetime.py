"""Lifetime events in the node core: a manoeuvre pauses compute for its window and draws
propulsion power, a lost accelerator halts the node for good; an emulated node's draw."""

from __future__ import annotations

import math

import numpy as np
import pytest

from flightsw.exceptions import ConfigError
from flightsw.node.aging import cumulative_hazard, dose_rate_rad_per_year, survival
from flightsw.node.core import NodeCore
from flightsw.node.effects import JobNote, Started, StatusChanged, Stopped
from flightsw.node.lifetime import (
    FAILED_REASON,
    MANOEUVRE_REASON,
    LifetimeSchedule,
    NodeLifetime,
    draw_lifetime_events,
    node_schedule,
)
from flightsw.node.scheduler import Queued
from flightsw.node.spec import NodeSpec
from hardware_profiles import load_profile

T0 = 1.8e9
COOL, FULL = 20.0, 1e6


def _core(schedule: LifetimeSchedule) -> NodeCore:
    core = NodeCore("n1", NodeSpec.of(load_profile("jetson-agx-orin")))
    core.lifetime = NodeLifetime(schedule)
    return core


def _job(core: NodeCore, jid: str, flops: float) -> Queued:
    return Queued(jid, 0, 5, None, 1.0, core.spec.work(flops, 0.0, 0.0, 1), T0)


def test_a_manoeuvre_stops_the_run_requeues_it_and_holds_compute_for_its_window() -> None:
    core = _core(LifetimeSchedule(None, ((T0 + 100.0, T0 + 400.0),), 50.0, 1))
    core.accept(_job(core, "a", 5e13), T0)
    (started,) = core.dispatch(T0, COOL, FULL)
    assert isinstance(started, Started)
    assert core.lifetime_step(T0 + 99.0) == []
    out = core.lifetime_step(T0 + 100.0)
    stopped = [e for e in out if isinstance(e, Stopped)]
    assert len(stopped) == 1 and stopped[0].requeued
    assert stopped[0].reason == MANOEUVRE_REASON
    assert any(isinstance(e, JobNote) and e.state == "queued" for e in out)
    assert core.run is None and len(core.sched) == 1
    # nothing starts inside the window: the job waits with the manoeuvre as its reason
    got = core.dispatch(T0 + 200.0, COOL, FULL)
    assert core.run is None
    assert any(isinstance(e, JobNote) and e.state == "deferred"
               and e.detail == MANOEUVRE_REASON for e in got)
    assert core.lifetime_step(T0 + 400.0) == []  # the window closed: no effect to carry
    assert core.lifetime is not None and core.lifetime.halt is None
    (again,) = core.dispatch(T0 + 400.0, COOL, FULL)
    assert isinstance(again, Started) and again.run.q.job_id == "a"
    lt = core.lifetime
    assert lt.flown == 1
    assert lt.propulsion_j(T0, T0 + 1000.0) == pytest.approx(50.0 * 300.0)
    assert lt.propulsion_j(T0 + 350.0, T0 + 450.0) == pytest.approx(50.0 * 50.0)
    assert lt.propulsion_j(T0 + 400.0, T0 + 500.0) == 0.0
    assert lt.paused_s(T0 + 250.0) == pytest.approx(150.0)


def test_a_lost_accelerator_halts_the_node_for_good() -> None:
    core = _core(LifetimeSchedule(T0 + 50.0, ((T0 + 10.0, T0 + 20.0), (T0 + 60.0, T0 + 70.0)),
                                  50.0, 1))
    core.accept(_job(core, "a", 5e13), T0)
    core.accept(_job(core, "b", 5e13), T0)
    core.dispatch(T0, COOL, FULL)
    core.lifetime_step(T0 + 10.0)
    core.lifetime_step(T0 + 20.0)
    core.dispatch(T0 + 20.0, COOL, FULL)
    assert core.run is not None
    out = core.lifetime_step(T0 + 50.0)
    stopped = [e for e in out if isinstance(e, Stopped)]
    assert len(stopped) == 1 and not stopped[0].requeued and stopped[0].reason == FAILED_REASON
    assert StatusChanged("safe") in out
    assert core.run is None and len(core.sched) == 0 and core.leases() == {}
    assert core.safe_mode
    ok, why, _, _ = core.command("leave_safe", {}, T0 + 55.0)
    assert not ok and why is not None and FAILED_REASON in why
    assert core.safe_mode
    assert core.lifetime_step(T0 + 60.0) == []  # no manoeuvre after the failure
    lt = core.lifetime
    assert lt is not None and lt.flown == 1
    assert lt.propulsion_j(T0, T0 + 100.0) == pytest.approx(50.0 * 10.0)
    assert lt.paused_s(T0 + 100.0) == pytest.approx(10.0)
    core.accept(_job(core, "c", 1e9), T0 + 80.0)
    core.dispatch(T0 + 80.0, COOL, FULL)
    assert core.run is None


def test_overlapping_manoeuvres_pause_and_fire_once() -> None:
    lt = NodeLifetime(LifetimeSchedule(None, ((T0, T0 + 100.0), (T0 + 60.0, T0 + 160.0)),
                                       10.0, 1))
    assert lt.advance(T0).began
    assert lt.advance(T0 + 60.0).began
    assert lt.advance(T0 + 100.0) == (False, False, False)  # the second still lasts
    assert lt.halt == MANOEUVRE_REASON
    assert lt.advance(T0 + 160.0).ended and lt.halt is None
    assert lt.flown == 2
    assert lt.paused_s(T0 + 1000.0) == pytest.approx(160.0)
    assert lt.propulsion_j(T0 - 10.0, T0 + 1000.0) == pytest.approx(10.0 * 160.0)
    assert lt.propulsion_j(T0 + 50.0, T0 + 70.0) == pytest.approx(10.0 * 20.0)


def test_a_window_wholly_between_two_steps_still_counts() -> None:
    lt = NodeLifetime(LifetimeSchedule(None, ((T0 + 1.0, T0 + 2.0),), 10.0, 1))
    ch = lt.advance(T0 + 10.0)
    assert ch.began and ch.ended and lt.halt is None and lt.flown == 1
    assert lt.times() == [T0 + 1.0, T0 + 2.0]


def test_failure_times_follow_a_steep_law_inside_a_long_span() -> None:
    # a dose hazard so steep that every node fails within the first minutes of a year
    prof = load_profile("jetson-agx-orin")
    assert prof.lifetime is not None
    life = prof.lifetime.model_copy(update={
        "dose_rate_rad_per_year": 3.0e9, "hard_failure_dose_rad": 1.0e3,
        "hard_failure_shape": 1.0, "manoeuvres_per_year": 0.0})
    steep = prof.model_copy(update={"lifetime": life})
    year = 365.25 * 86_400.0
    draw = draw_lifetime_events([steep] * 400, 0.0, year, 0.0, np.random.default_rng(2))
    t = np.array(sorted(draw.failures.values()))
    assert len(t) == 400
    # exponential in time with mean D63 / rate years (behind the profile's shielding,
    # ~1.7 s): the median is the mean times ln 2
    mean_s = 1.0e3 / float(dose_rate_rad_per_year(life)) * year
    assert np.median(t) == pytest.approx(mean_s * math.log(2), rel=0.15)


def test_a_draw_late_in_a_steep_wear_out_is_exact_where_the_survival_underflows() -> None:
    prof = load_profile("jetson-agx-orin")
    life = prof.lifetime
    assert life is not None
    years = np.array([0.5, 2.0, 4.0])
    dose = dose_rate_rad_per_year(life) * years
    assert np.allclose(np.exp(-cumulative_hazard(life, years, dose)),
                       survival(life, years, dose), rtol=1e-12)
    # behind 0.05 mm the survival at year 4 is about exp(-1e7): 0.0 in float64, yet the hazard
    # of those still alive is finite and the failures spread over the span
    thin = prof.model_copy(update={"lifetime": life.model_copy(update={
        "shielding_mm_al": 0.05, "manoeuvres_per_year": 0.0})})
    thin_life = thin.lifetime
    assert thin_life is not None
    assert float(survival(thin_life, 4.0, dose_rate_rad_per_year(thin_life) * 4.0)) == 0.0
    draw = draw_lifetime_events([thin] * 200, 0.0, 3600.0, 4.0, np.random.default_rng(3))
    t = np.array(list(draw.failures.values()))
    assert len(t) > 0 and float(np.median(t)) > 1.0


def test_an_emulated_node_draws_over_its_remaining_design_life() -> None:
    prof = load_profile("starcloud-h100")
    a = node_schedule(prof, 1000.0, 2.0, seed=4)
    assert a == node_schedule(prof, 1000.0, 2.0, seed=4)
    assert a != node_schedule(prof, 1000.0, 2.0, seed=5)
    life = prof.lifetime
    assert life is not None
    span = (life.design_life_years - 2.0) * 365.25 * 86_400.0
    assert all(1000.0 <= s < 1000.0 + span for s, _ in a.manoeuvres)
    assert 33.0 * 3 - 4 * math.sqrt(99) < len(a.manoeuvres) < 99 + 4 * math.sqrt(99)
    late = node_schedule(prof, 0.0, 6.0, seed=4)  # past its design life: the next year
    assert late.manoeuvres and all(s < 365.25 * 86_400.0 for s, _ in late.manoeuvres)
    with pytest.raises(ConfigError, match="no \\[lifetime\\]"):
        node_schedule(prof.model_copy(update={"lifetime": None}), 0.0, 0.0, seed=1)
