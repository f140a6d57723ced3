"""The node core: events in, effects out, no clock and no I/O."""

from __future__ import annotations

import math

import numpy as np
import pytest

from flightsw.node.core import RETRY_S, NodeCore
from flightsw.node.effects import Failed, JobNote, Started, StatusChanged, Stopped
from flightsw.node.limits import limit_flags
from flightsw.node.outlook import Outlook
from flightsw.node.scheduler import Queued, Work
from flightsw.node.spec import NodeSpec
from hardware_profiles import load_profile

T0 = 1.8e9  # near today's POSIX time: a float64 resolves only ~2.4e-7 s here
COOL, FULL = 20.0, 1e6  # temperature (C) and energy margin (Wh) that allow everything


def _core(profile: str = "jetson-agx-orin", **kw: float) -> NodeCore:
    return NodeCore("n1", NodeSpec.of(load_profile(profile)), **kw)  # type: ignore[arg-type]


def _job(core: NodeCore, jid: str, flops: float, *, priority: int = 5,
         deadline: float | None = None, value: float = 1.0) -> Queued:
    return Queued(jid, 0, priority, deadline, value, core.spec.work(flops, 0.0, 0.0, 1), T0)


def test_dual_execution_doubles_the_work_of_a_job() -> None:
    orin, h100 = _core("jetson-agx-orin"), _core("starcloud-h100")
    assert "dual_execution" in orin.spec.profile.radiation.mitigation
    assert "dual_execution" not in h100.spec.profile.radiation.mitigation
    assert orin.spec.work(1e9, 10.0, 100.0, 4) == Work(8e9, 2 * (100.0 + 40.0))
    assert h100.spec.work(1e9, 10.0, 100.0, 4) == Work(4e9, 100.0 + 40.0)
    # peers price a job's own FLOPs at the useful rate, the mitigation taken out
    assert orin.spec.useful_ops_per_s == orin.spec.fastest.ops_per_s / 2
    assert orin.spec.job_flops(orin.spec.work(1e9, 0, 0, 4)) == 4e9


def test_a_tiny_job_keeps_its_duration_and_energy_near_a_large_epoch() -> None:
    core = _core("starcloud-h100")
    core.accept(_job(core, "tiny", 2e4), T0 + 0.123)
    (started,) = core.dispatch(T0 + 0.123, COOL, FULL)
    assert isinstance(started, Started)
    d = started.run.d
    assert 0 < d.latency_s < 1e-7  # below the resolution of absolute times near T0
    assert (T0 + 0.123 + d.latency_s) - (T0 + 0.123) != d.latency_s  # what used to be lost
    run = core.finish(started.run.token)
    assert run is not None and run.d.latency_s == d.latency_s
    assert core.energy_used_j == d.energy_j == d.mode.watts * d.latency_s > 0
    assert core.jobs_done == 1 and core.run is None


def test_a_stopped_run_is_requeued_and_pays_only_what_it_ran() -> None:
    core = _core()
    core.accept(_job(core, "a", 5e13), T0)
    (started,) = core.dispatch(T0, COOL, FULL)
    assert isinstance(started, Started)
    watts = started.run.d.mode.watts
    stopped, note = core.stop(T0 + 2.0, "safe mode: test", requeue=True)
    assert isinstance(stopped, Stopped) and stopped.requeued
    assert stopped.spent_j == pytest.approx(2.0 * watts)
    assert note == JobNote(started.run.q, "queued", "safe mode: test")
    assert "a" in core.sched and core.run is None
    assert core.finish(started.run.token) is None  # the stale end of the stopped run


def test_overload_sheds_the_least_value_per_second_with_a_named_reason() -> None:
    core = _core(overload_backlog_s=100.0)
    seconds = core.spec.seconds(core.spec.work(1e12, 0, 0, 1))
    keep = _job(core, "keep", 1e12, value=10.0)
    cheap = _job(core, "cheap", 1e12, value=0.1)
    assert core.accept(keep, T0) == []
    n = math.floor(100.0 / seconds)  # jobs that fit under the limit, ``keep`` included
    for k in range(n - 1):
        assert core.accept(_job(core, f"f{k}", 1e12, value=5.0), T0) == []
    effects = core.accept(cheap, T0)
    note, failed = effects
    assert isinstance(note, JobNote) and isinstance(failed, Failed)
    assert failed.q is cheap and failed.reason.startswith("shed: overload")
    assert core.jobs_failed == 1 and "keep" in core.sched


def test_expired_jobs_fail_at_the_next_dispatch() -> None:
    core = _core()
    core.accept(_job(core, "late", 1e9, deadline=T0 + 5.0), T0)
    core.safe_manual = True  # nothing runs, so it waits
    (note,) = core.dispatch(T0 + 1.0, COOL, FULL)
    late = core.sched.get("late")
    assert late is not None and note == JobNote(late, "deferred", "safe mode (commanded)")
    effects = core.dispatch(T0 + 6.0, COOL, FULL)
    assert isinstance(effects[-1], Failed)
    assert effects[-1].reason == "deadline expired before start"
    assert len(core.sched) == 0


def test_an_energy_deferral_names_the_need_and_retries_by_rule() -> None:
    core = _core()
    core.accept(_job(core, "big", 5e15), T0)
    effects = core.dispatch(T0, COOL, 0.001)
    assert len(effects) == 1 and isinstance(effects[0], JobNote)
    assert effects[0].state == "deferred" and effects[0].detail is not None
    assert effects[0].detail.startswith("energy: needs")
    assert core.dispatch(T0 + 1, COOL, 0.001) == []  # the same reason is told once
    need = core.need_wh
    assert core.waiting() and 0.001 < need < math.inf
    assert not core.due(T0 + 1.0, need * 0.99)
    assert core.due(T0 + 1.0, need)
    assert not core.due(T0 + RETRY_S, 0.0)  # it last looked at T0 + 1
    assert core.due(T0 + 1.0 + RETRY_S, 0.0)


def test_work_waiting_for_sunlight_is_looked_at_again_when_the_eclipse_ends() -> None:
    core = _core()
    # in eclipse now for 30 s more, the battery below its comfort level
    ol = Outlook(now=T0, battery_wh=40.0, floor_wh=30.0, capacity_wh=100.0, solar_w=40.0,
                 base_w=16.0, idle_w=4.0, eta_c=0.95, eta_d=0.95,
                 eclipses=((T0 - 1000.0, T0 + 30.0), (T0 + 5000.0, T0 + 7000.0)),
                 horizon=T0 + 17_000.0)
    q = _job(core, "later", 5e13)
    core.accept(q, T0)
    (note,) = core.dispatch(T0, COOL, 30.0, ol)
    assert isinstance(note, JobNote) and note.detail is not None
    assert note.detail.startswith("energy: waiting for sunlight")
    assert q.until == T0 + 30.0
    # the margin is not what it waits for: only time (or the periodic look) ends the wait
    assert core.need_wh == math.inf and core.retry_at == T0 + 30.0
    assert not core.due(T0 + 29.0, FULL) and core.due(T0 + 30.0, 0.0)
    # a wait longer than the periodic look is looked at again RETRY_S later
    long_ol = ol._replace(eclipses=((T0 - 1000.0, T0 + 2000.0),))
    core.dispatch(T0, COOL, 30.0, long_ol)
    assert q.until == T0 + 2000.0 and core.retry_at == T0 + RETRY_S
    # an urgent job never waits for sunlight
    core.accept(_job(core, "alert", 1e9, priority=9), T0)
    (started,) = [e for e in core.dispatch(T0, COOL, 30.0, ol) if isinstance(e, Started)]
    assert started.run.q.job_id == "alert"


def test_throttle_replans_the_running_job_and_safe_mode_tells_the_ground() -> None:
    core = _core()
    th = core.spec.profile.thermal
    core.accept(_job(core, "a", 5e13), T0)
    core.accept(_job(core, "b", 5e13), T0)
    (started,) = core.dispatch(T0, COOL, FULL)
    assert isinstance(started, Started)
    assert started.run.d.mode.watts > core.spec.modes[0].watts  # busy: fastest mode
    changed, effects = core.limits(T0 + 1, th.throttle_c + 1.0, 0.9)
    assert changed and core.throttled and core.mode == core.spec.modes[0].name
    assert isinstance(effects[0], Stopped) and effects[0].requeued
    changed, effects = core.limits(T0 + 2, th.throttle_c - 1.0, 0.9)  # within hysteresis
    assert not changed and effects == [] and core.throttled
    floor = core.spec.profile.bus.dod_floor
    changed, effects = core.limits(T0 + 3, th.throttle_c - 10.0, floor - 0.01)
    assert changed and not core.throttled and core.safe_auto is not None
    assert effects[-1] == StatusChanged("safe")
    notes = core.dispatch(T0 + 4, COOL, FULL)
    assert len(notes) == 2 and all(isinstance(n, JobNote) for n in notes)
    assert all(str(n.detail).startswith("safe mode (battery") for n in notes)  # type: ignore[union-attr]
    changed, effects = core.limits(T0 + 5, th.throttle_c - 10.0, floor + 0.06)
    assert changed and effects == [StatusChanged("online")]


def test_limits_for_one_row_and_for_many_agree() -> None:
    rng = np.random.default_rng(7)
    n = 5000
    temp = rng.uniform(0, 100, n)
    soc = rng.uniform(0, 1, n)
    throttled = rng.random(n) < 0.5
    safe = rng.random(n) < 0.5
    thr, mx, floor = np.full(n, 60.0), np.full(n, 75.0), np.full(n, 0.3)
    many = limit_flags(temp, soc, throttled, safe, thr, mx, floor)
    for i in range(0, n, 7):
        one = limit_flags(temp[i:i + 1], soc[i:i + 1], throttled[i:i + 1], safe[i:i + 1],
                          thr[i:i + 1], mx[i:i + 1], floor[i:i + 1])
        assert tuple(bool(f[0]) for f in one) == tuple(bool(f[i]) for f in many)
    assert all(f.any() for f in many)  # every transition occurs in the sample


def test_commands_change_state_and_name_what_is_wrong() -> None:
    core = _core()
    ok, reason, _, _ = core.command("set_power_mode", {"mode": "turbo"}, T0)
    assert not ok and reason is not None and "turbo" in reason and "MAXN" in reason
    ok, _, data, _ = core.command("set_power_mode", {"mode": "30W"}, T0)
    assert ok and core.forced_mode == "30W" and data == {"mode": "30W"}
    core.accept(_job(core, "a", 5e13), T0)
    (started,) = core.dispatch(T0, COOL, FULL)
    assert isinstance(started, Started) and started.run.d.mode.name == "30W"
    ok, _, _, effects = core.command("cancel_job", {"job_id": "a"}, T0 + 1)
    stopped, note, failed = effects
    assert isinstance(stopped, Stopped) and isinstance(note, JobNote)
    assert isinstance(failed, Failed) and failed.reason == "cancelled by telecommand"
    ok, reason, _, _ = core.command("cancel_job", {"job_id": "a"}, T0 + 2)
    assert not ok and reason == "args.job_id: a is not queued or running here"
    ok, reason, _, _ = core.command("warp", {}, T0)
    assert not ok and reason == "name: unknown command 'warp'"
