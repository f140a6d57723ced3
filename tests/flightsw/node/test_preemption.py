"""Pre-emption with checkpoints and the energy guard in the node core (issue #12, item 2)."""

from __future__ import annotations

import pytest

from flightsw.node.checkpoint import RESUME_S, SUSPEND_S
from flightsw.node.core import MAX_SUSPENSIONS, NodeCore
from flightsw.node.effects import JobNote, Started, Suspended
from flightsw.node.outlook import Outlook
from flightsw.node.scheduler import Queued
from flightsw.node.spec import NodeSpec
from hardware_profiles import load_profile

T0 = 1.8e9
COOL, FULL = 20.0, 1e6


def _core() -> NodeCore:
    return NodeCore("n1", NodeSpec.of(load_profile("jetson-orin-nano-super")),
                    overload_backlog_s=1e6)


def _job(core: NodeCore, jid: str, seconds: float, items: int, *, priority: int = 2,
         deadline: float | None = None) -> Queued:
    """A job of ``items`` items taking ``seconds`` at the fastest mode."""
    per_item = seconds * core.spec.fastest.ops_per_s / items / core.spec.work_factor
    q = Queued(jid, 0, priority, deadline, 1.0, core.spec.work(per_item, 0.0, 0.0, items), T0)
    q.items = items
    return q


def _start(core: NodeCore, q: Queued, now: float) -> Started:
    core.accept(q, now)
    got = core.dispatch(now, COOL, FULL)
    started = next(e for e in got if isinstance(e, Started))
    assert started.run.q is q
    return started


def test_an_urgent_job_suspends_a_long_one_at_an_item_boundary_and_it_resumes_later() -> None:
    core = _core()
    long = _job(core, "long", 1000.0, 1000, deadline=T0 + 10_000.0)  # 1 s per item
    whole = long.work
    first = _start(core, long, T0)
    per_item = first.run.d.latency_s / 1000
    now = T0 + 250.5 * per_item  # half way through item 251
    urgent = _job(core, "urgent", 10.0, 10, priority=8, deadline=now + 60.0)
    effects = core.accept(urgent, now)
    (susp,) = [e for e in effects if isinstance(e, Suspended)]
    assert susp.done == 250 and long.done == 250  # the item under way is lost
    assert any(isinstance(e, JobNote) and e.state == "suspended" for e in effects)
    assert core.run is None and core.preemptions == 1 and "long" in core.sched
    # the run so far and the checkpoint's write were paid for
    assert susp.spent_j == pytest.approx((250.5 * per_item + SUSPEND_S) * first.run.d.mode.watts)
    assert long.spent_j == susp.spent_j
    # the urgent job starts once the checkpoint is written; the long one waits
    (started,) = core.dispatch(now, COOL, FULL)
    assert isinstance(started, Started) and started.run.q is urgent
    assert started.run.start == pytest.approx(now + SUSPEND_S)
    assert core.finish(started.run.token) is not None
    # the long job resumes with only its 750 items left, plus the resume cost
    (again,) = core.dispatch(started.run.end, COOL, FULL)
    assert isinstance(again, Started) and again.run.q is long
    mode = again.run.d.mode
    left = long.work.latency_s(mode, core.spec.bandwidth_bps)
    assert left == pytest.approx(0.75 * whole.latency_s(mode, core.spec.bandwidth_bps))
    assert again.run.d.latency_s == pytest.approx(left + RESUME_S)
    assert long.first_start == first.run.start  # its result reports when it first ran


def test_no_pre_emption_when_waiting_still_meets_the_deadline_or_for_equal_priority() -> None:
    core = _core()
    _start(core, _job(core, "long", 100.0, 100), T0)
    roomy = _job(core, "roomy", 10.0, 10, priority=8, deadline=T0 + 1000.0)
    assert not any(isinstance(e, Suspended) for e in core.accept(roomy, T0 + 1.0))
    peer = _job(core, "peer", 10.0, 10, priority=2, deadline=T0 + 20.0)
    assert not any(isinstance(e, Suspended) for e in core.accept(peer, T0 + 1.0))
    assert core.preemptions == 0


def test_a_one_item_job_and_a_job_on_its_last_item_cannot_be_suspended() -> None:
    core = _core()
    _start(core, _job(core, "one", 100.0, 1), T0)
    urgent = _job(core, "u", 5.0, 5, priority=9, deadline=T0 + 30.0)
    assert not any(isinstance(e, Suspended) for e in core.accept(urgent, T0 + 1.0))
    core2 = _core()
    two = _job(core2, "two", 100.0, 2)
    started = _start(core2, two, T0)
    late = T0 + 0.75 * started.run.d.latency_s  # on the second (last) item
    assert core2.suspend(late, "test") == []


def test_a_job_is_pre_empted_at_most_max_suspensions_times() -> None:
    core = _core()
    long = _job(core, "long", 10_000.0, 10_000)
    now = T0
    for k in range(MAX_SUSPENSIONS + 1):
        started = _start(core, long, now) if k == 0 else None
        if started is None:
            got = [e for e in core.dispatch(now, COOL, FULL) if isinstance(e, Started)]
            assert got and got[0].run.q is long
        now += 60.0
        u = _job(core, f"u{k}", 5.0, 5, priority=9, deadline=now + 8.0)
        effects = core.accept(u, now)
        suspended = any(isinstance(e, Suspended) for e in effects)
        assert suspended == (k < MAX_SUSPENSIONS)
        if suspended:
            (run_u,) = [e for e in core.dispatch(now, COOL, FULL) if isinstance(e, Started)]
            core.finish(run_u.run.token)
            now = run_u.run.end
    assert long.suspensions == MAX_SUSPENSIONS


def _outlook(battery_wh: float, *, deficit: bool = False) -> Outlook:
    # in sunlight now, an eclipse in 1,000 s lasting 2,000 s, another one orbit later
    return Outlook(now=T0, battery_wh=battery_wh, floor_wh=30.0, capacity_wh=100.0,
                   solar_w=40.0, base_w=16.0, idle_w=4.0, eta_c=0.95, eta_d=0.95,
                   eclipses=((T0 + 1000.0, T0 + 3000.0), (T0 + 6700.0, T0 + 8700.0)),
                   horizon=T0 + 17_000.0, deficit=deficit)


def test_the_outlook_walks_a_run_through_the_eclipses_it_spans() -> None:
    ol = _outlook(60.0)
    assert ol.covered_until() == T0 + 3000.0
    # no compute: 1,000 s of +24 W, then 2,000 s of -16 W
    bus_only = 60.0 + 24 * 0.95 * 1000 / 3600 - 16 / 0.95 * 2000 / 3600
    assert ol.lowest_wh(4.0, 0.0) == pytest.approx(bus_only - 30.0)
    # a 25 W run of 4,000 s spans the first eclipse and runs into the second sunlit pass:
    # the walk goes on to the end of the second eclipse
    low = ol.lowest_wh(25.0, 4000.0)
    e1 = 60.0 + (40 - 37) * 0.95 * 1000 / 3600 - 37 / 0.95 * 2000 / 3600
    assert low == pytest.approx(e1 - 30.0)
    assert ol.lowest_wh(25.0, 20_000.0) == float("-inf")  # past the scan: refused


def test_a_node_whose_bus_loses_energy_computes_nothing_and_its_run_is_suspended() -> None:
    core = _core()
    q = _job(core, "a", 100.0, 100)
    core.accept(q, T0)
    assert core.dispatch(T0, COOL, FULL, _outlook(90.0, deficit=True)) == [] or core.run is None
    assert q.deferred is not None and "bus alone" in q.deferred
    started = next(e for e in core.dispatch(T0, COOL, FULL, _outlook(90.0)) if
                   isinstance(e, Started))
    assert core.guard(T0 + 10.0, FULL, _outlook(90.0)) == []
    effects = core.guard(T0 + 10.0, FULL, _outlook(90.0, deficit=True))
    assert any(isinstance(e, Suspended) for e in effects) and core.run is None
    assert started.run.q.done > 0


def test_the_guard_suspends_a_run_the_margin_can_no_longer_pay() -> None:
    core = _core()
    started = _start(core, _job(core, "a", 1000.0, 1000), T0)
    watts = started.run.d.mode.watts
    rest_wh = watts * (started.run.end - (T0 + 100.0)) / 3600.0 / 0.95
    assert core.guard(T0 + 100.0, rest_wh + 0.01) == []
    assert any(isinstance(e, Suspended) for e in core.guard(T0 + 100.0, rest_wh - 0.01))
