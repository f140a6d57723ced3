"""Onboard scheduler: queue order, power mode choice, deferral, shedding."""

from __future__ import annotations

import math

import pytest

from flightsw.node.scheduler import Admission, Decision, ModeSpec, OnboardScheduler, Queued, Work

# three DVFS points: the slow mode spends the least energy per FLOP, the fast one the most
M7 = ModeSpec("7W", 7.0, 3.5e12)  # 2.00 J/TFLOP
M15 = ModeSpec("15W", 15.0, 7.0e12)  # 2.14 J/TFLOP
M25 = ModeSpec("25W", 25.0, 1.0e13)  # 2.50 J/TFLOP
BW = 1.0e11  # bytes/s
BIG = 1.0e14  # FLOPs: 28.6 s / 200 J at 7W, 14.3 s / 214 J at 15W, 10 s / 250 J at 25W

ROOMY = Admission(
    margin_wh=100.0, temperature_c=20.0, max_c=75.0, heat_capacity_j_per_k=14_400.0,
    mode_cap_w=math.inf,
)


def _sched() -> OnboardScheduler:
    return OnboardScheduler([M25, M7, M15], BW)


def _q(job_id: str, *, priority: int = 5, deadline: float | None = None, value: float = 1.0,
       flops: float = BIG, nbytes: float = 0.0) -> Queued:
    return Queued(job_id=job_id, epoch=0, priority=priority, deadline=deadline, value=value,
                  work=Work(flops, nbytes), accepted_at=0.0)


def test_modes_sorted_and_required() -> None:
    s = _sched()
    assert [m.name for m in s.modes] == ["7W", "15W", "25W"]
    assert s.fastest() == M25
    with pytest.raises(ValueError, match="at least one power mode"):
        OnboardScheduler([], BW)


def test_roofline_latency() -> None:
    assert Work(1e13, 0.0).latency_s(M25, BW) == 1.0
    assert Work(1e13, 5e11).latency_s(M25, BW) == 5.0  # memory bound
    assert Work(1e13, 5e11).latency_s(M7, BW) == 5.0  # still memory bound at 2.9 s compute
    assert Work(1e13, 1e11).latency_s(M7, BW) == pytest.approx(1e13 / 3.5e12)


def test_order_priority_then_deadline_then_arrival() -> None:
    s = _sched()
    for q in [_q("a"), _q("b", deadline=100.0), _q("c", priority=9), _q("d", deadline=50.0),
              _q("e", deadline=100.0), _q("f", priority=0, deadline=1.0)]:
        s.push(q)
    want = ["c", "d", "b", "e", "a", "f"]
    assert [q.job_id for q in s] == want
    got = []
    while len(s):
        d = s.next(0.0, ROOMY)
        assert isinstance(d, Decision)
        got.append(d.job.job_id)
    assert got == want


def test_queue_accessors_and_remove() -> None:
    s = _sched()
    a, b = _q("a"), _q("b")
    s.push(a)
    s.push(b)
    assert len(s) == 2 and "a" in s and s.get("a") is a and s.get("zz") is None
    assert s.remove("a") is a
    assert s.remove("a") is None
    assert "a" not in s and len(s) == 1
    d = s.next(0.0, ROOMY)
    assert isinstance(d, Decision) and d.job is b
    assert s.next(0.0, ROOMY) == []


def test_a_removed_then_resubmitted_id_runs_once() -> None:
    s = _sched()
    old = _q("j", priority=9)
    s.push(old)
    s.remove("j")
    new = _q("j", priority=1)
    s.push(new)
    s.push(_q("other", priority=5))
    order = []
    while (d := s.next(0.0, ROOMY)) and isinstance(d, Decision):
        order.append((d.job.job_id, d.job.priority))
    assert order == [("other", 5), ("j", 1)]



def test_the_same_job_queued_again_is_listed_once_and_runs_alone_as_alone() -> None:
    """A job handed away and handed back (or stopped and re-queued) is the same object
    pushed twice: it must appear once, and alone it takes the least-energy mode."""
    s = _sched()
    j = _q("j")
    s.push(j)
    assert s.remove("j") is j
    s.push(j)
    s.push(j)  # pushing a queued id again replaces it
    assert [q.job_id for q in s] == ["j"] and len(s) == 1
    d = s.next(0.0, ROOMY)
    assert isinstance(d, Decision) and d.job is j and d.mode == M7
    assert s.next(0.0, ROOMY) == [] and list(s) == []


def test_queue_order_survives_interleaved_push_remove_expire_and_shed() -> None:
    s = _sched()
    for k in range(40):
        s.push(_q(f"q{k}", priority=k % 3, deadline=float(100 + (k * 37) % 50),
                  value=float(1 + k % 7)))
        if k % 5 == 4:
            s.remove(f"q{k - 2}")
    s.expired(110.0)
    s.shed(backlog_limit_s=150.0, max_queue=100)
    listed = list(s)
    assert len(listed) == len(s) == len({q.job_id for q in listed})
    assert listed == sorted(listed, key=Queued.sort_key)
    taken = []
    while isinstance(d := s.next(0.0, ROOMY), Decision):
        taken.append(d.job)
    assert taken == listed and len(s) == 0

# -- choose_mode ---------------------------------------------------------------------------


def test_alone_takes_the_least_energy_others_waiting_take_the_fastest() -> None:
    s = _sched()
    got = s.choose_mode(_q("j"), 0.0, ROOMY)
    assert not isinstance(got, str)
    mode, lat, energy, late = got
    assert (mode, late) == (M7, False)
    assert lat == pytest.approx(BIG / M7.ops_per_s) and energy == pytest.approx(200.0)
    got = s.choose_mode(_q("j"), 0.0, ROOMY, busy=True)
    assert not isinstance(got, str) and got[0] == M25 and got[1] == pytest.approx(10.0)


def test_least_energy_that_meets_the_deadline() -> None:
    s = _sched()
    got = s.choose_mode(_q("j", deadline=1020.0), 1000.0, ROOMY)  # 7W needs 28.6 s
    assert not isinstance(got, str) and got[0] == M15 and got[3] is False
    got = s.choose_mode(_q("j", deadline=1010.0), 1000.0, ROOMY)  # exactly on time at 25W
    assert not isinstance(got, str) and got[0] == M25 and got[3] is False


def test_late_when_no_mode_meets_the_deadline() -> None:
    s = _sched()
    got = s.choose_mode(_q("j", deadline=1005.0), 1000.0, ROOMY)
    assert not isinstance(got, str)
    mode, lat, _, late = got
    assert mode == M25 and lat == pytest.approx(10.0) and late is True
    capped = ROOMY._replace(mode_cap_w=15.0)
    got = s.choose_mode(_q("j", deadline=1005.0), 1000.0, capped)
    assert not isinstance(got, str) and got[0] == M15 and got[3] is True


def test_energy_margin_defers_with_a_reason() -> None:
    s = _sched()
    tight = ROOMY._replace(margin_wh=0.05)  # 200 J = 0.0556 Wh at the cheapest
    reason = s.choose_mode(_q("j"), 0.0, tight)
    assert isinstance(reason, str)
    assert reason.startswith("energy: needs 0.056 Wh at mode 7W, only 0.050 Wh above the floor")
    broke = ROOMY._replace(margin_wh=-3.0)
    reason = s.choose_mode(_q("j"), 0.0, broke)
    assert isinstance(reason, str) and "only 0.000 Wh" in reason


def test_energy_margin_leaves_only_the_cheap_mode() -> None:
    s = _sched()
    adm = ROOMY._replace(margin_wh=0.057)  # 7W fits (0.0556 Wh), 15W does not
    got = s.choose_mode(_q("j"), 0.0, adm, busy=True)
    assert not isinstance(got, str) and got[0] == M7


def test_thermal_max_defers() -> None:
    s = _sched()
    hot = ROOMY._replace(temperature_c=74.99)  # 200 J / 14400 J/K = 0.014 K
    reason = s.choose_mode(_q("j"), 0.0, hot)
    assert isinstance(reason, str) and reason.startswith("thermal: 75.0 C + 0.0 K would pass max")
    # a small job still fits under the maximum
    got = s.choose_mode(_q("small", flops=1e12), 0.0, hot)
    assert not isinstance(got, str) and got[0] == M7


def test_forced_mode() -> None:
    s = _sched()
    forced = ROOMY._replace(forced_mode="15W")
    got = s.choose_mode(_q("j"), 0.0, forced)
    assert not isinstance(got, str) and got[0] == M15
    got = s.choose_mode(_q("j", deadline=5.0), 0.0, forced)  # late rather than another mode
    assert not isinstance(got, str) and got[0] == M15 and got[3] is True
    unknown = ROOMY._replace(forced_mode="99W")
    assert s.choose_mode(_q("j"), 0.0, unknown) == "no power mode available"


def test_throttle_cap() -> None:
    s = _sched()
    capped = ROOMY._replace(mode_cap_w=15.0)
    got = s.choose_mode(_q("j"), 0.0, capped, busy=True)
    assert not isinstance(got, str) and got[0] == M15
    below_all = ROOMY._replace(mode_cap_w=1.0)  # the lowest mode still runs
    got = s.choose_mode(_q("j"), 0.0, below_all, busy=True)
    assert not isinstance(got, str) and got[0] == M7


def test_compute_not_allowed() -> None:
    s = _sched()
    safe = ROOMY._replace(compute_allowed=False, reason="safe mode")
    assert s.choose_mode(_q("j"), 0.0, safe) == "safe mode"
    off = ROOMY._replace(compute_allowed=False)
    assert s.choose_mode(_q("j"), 0.0, off) == "compute not allowed"


# -- next ------------------------------------------------------------------------------


def test_next_tries_a_smaller_job_when_the_big_one_does_not_fit() -> None:
    s = _sched()
    big = _q("big", priority=9)  # 0.0556 Wh at best
    small = _q("small", priority=1, flops=1e12)  # 0.00056 Wh
    s.push(big)
    s.push(small)
    adm = ROOMY._replace(margin_wh=0.01)
    d = s.next(0.0, adm)
    assert isinstance(d, Decision) and d.job is small
    assert d.mode == M25  # another job waits behind it
    assert d.latency_s == pytest.approx(0.1) and d.energy_j == pytest.approx(2.5)
    assert small.deferred is None
    assert big.deferred is not None and big.deferred.startswith("energy: ")
    assert "big" in s and "small" not in s
    deferred = s.next(0.0, adm)
    assert deferred == [big] and "big" in s  # deferred jobs stay queued
    d = s.next(0.0, ROOMY)
    assert isinstance(d, Decision) and d.job is big and d.mode == M7  # alone now
    assert big.deferred is None


# -- shedding and expiry ---------------------------------------------------------------


def test_backlog_is_work_at_the_fastest_mode() -> None:
    s = _sched()
    assert s.backlog_s() == 0.0
    s.push(_q("a"))  # 10 s at 25W
    s.push(_q("b", flops=1e12, nbytes=2e11))  # memory bound: 2 s
    assert s.backlog_s() == pytest.approx(12.0)


def test_shed_lowest_value_per_second_first_until_under_the_backlog() -> None:
    s = _sched()
    s.push(_q("v1", value=1.0))  # 10 s each: 0.1 / s
    s.push(_q("v5", value=5.0))  # 0.5 / s
    s.push(_q("v3", value=3.0))  # 0.3 / s
    s.push(_q("tiny", value=0.2, flops=1e11))  # 0.01 s: 20 / s, kept despite its low value
    shed = s.shed(backlog_limit_s=15.0, max_queue=100)
    assert [q.job_id for q in shed] == ["v1", "v3"]
    assert sorted(q.job_id for q in s) == ["tiny", "v5"]
    assert s.backlog_s() == pytest.approx(10.01)
    assert s.shed(backlog_limit_s=15.0, max_queue=100) == []


def test_shed_to_the_queue_limit_with_ties_broken_by_priority_then_arrival() -> None:
    s = _sched()
    for name, prio in [("old-lo", 1), ("old-hi", 7), ("new-lo", 1), ("new-hi", 7), ("x", 9)]:
        s.push(_q(name, priority=prio))
    shed = s.shed(backlog_limit_s=1e9, max_queue=2)
    # equal value per second: lower priority first, and among equals the latest arrival
    assert [q.job_id for q in shed] == ["new-lo", "old-lo", "new-hi"]
    assert sorted(q.job_id for q in s) == ["old-hi", "x"]


def test_expired() -> None:
    s = _sched()
    s.push(_q("past", deadline=99.0))
    s.push(_q("now", deadline=100.0))
    s.push(_q("later", deadline=500.0))
    s.push(_q("none"))
    gone = s.expired(100.0)
    assert [q.job_id for q in gone] == ["past"]
    assert sorted(q.job_id for q in s) == ["later", "none", "now"]
    assert [q.job_id for q in s.expired(1e9)] == ["now", "later"]
    d = s.next(1e9, ROOMY)
    assert isinstance(d, Decision) and d.job.job_id == "none" and len(s) == 0
