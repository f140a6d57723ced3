"""The ground's job table: epochs, owners and exactly one outcome per job."""

from __future__ import annotations

from sim_cases import scenario, small

from flightsw.sim import build_world
from flightsw.sim.ledger import GROUND, Job, Ledger


def _job(jid: str = "j1") -> Job:
    cls = build_world(scenario(small())).classes[1]
    return Job(jid, cls, 10, 1e15, 0.0, 2e4, 2e4, 0.0, 3600.0, GROUND)


def _record(led: Ledger, job: Job, epoch: int, node: int = 0) -> str:
    return led.record_result(job, epoch, node, finished_at=10.0, delivered_at=20.0,
                             started_at=5.0, accepted_at=1.0, energy_j=1.0, mode="x",
                             migrations=0)


def test_result_of_the_current_epoch_is_recorded_once() -> None:
    led = Ledger()
    job = _job()
    led.submit(job, GROUND)
    led.set_owner(job, 3)
    assert led.jobs_of(3) == [job]
    assert _record(led, job, 0) == "recorded"
    assert _record(led, job, 0) == "duplicate"
    assert job.outcome == "done"
    assert led.duplicate_outcomes() == 0
    assert led.duplicate_deliveries == 1
    assert led.jobs_of(3) == []
    assert not led.fail(job, 0, 3, "late", 30.0)  # already done: nothing changes
    assert job.outcome == "done"


def test_stale_epoch_is_ignored_after_a_rerun() -> None:
    led = Ledger()
    job = _job()
    led.submit(job, 2)
    assert led.bump(job) == 1  # the owner's lease lapsed: re-run with epoch + 1
    led.set_owner(job, GROUND)
    assert _record(led, job, 0, node=2) == "stale"
    assert job.outcome == ""
    assert led.stale_results == 1
    led.set_owner(job, 4)
    assert _record(led, job, 1, node=4) == "recorded"
    assert job.node == 4
    assert led.unresolved() == []


def test_failure_of_a_stale_epoch_is_ignored() -> None:
    led = Ledger()
    job = _job()
    led.submit(job, 1)
    led.set_owner(job, 1, epoch=1)  # handed over: epoch 1
    assert not led.fail(job, 0, 1, "shed", 5.0)
    assert led.stale_failures == 1
    assert led.fail(job, 1, 1, "shed", 5.0)
    assert job.outcome == "failed" and job.reason == "shed"
    assert led.recorded["j1"] == 1


def test_a_higher_epoch_is_recorded_and_taken() -> None:
    """One rule with the ground station: a result of a higher epoch than the ledger knows
    (its handover not seen yet) counts; a lower one is stale; done and failed alike."""
    led = Ledger()
    job = _job()
    led.submit(job, 1)
    assert _record(led, job, 2, node=5) == "recorded"
    assert job.epoch == 2 and job.node == 5
    other = _job("j2")
    led.submit(other, 1)
    assert led.fail(other, 3, 1, "shed", 5.0)
    assert other.epoch == 3 and other.outcome == "failed"
    assert not led.fail(other, 4, 1, "again", 6.0)  # already ended
    third = _job("j3")
    led.submit(third, 1)
    led.bump(third)
    assert not led.fail(third, 0, 1, "late", 5.0)
    assert led.fail(third, None, -1, "the ground's own decision", 6.0)
    assert third.epoch == 1 and led.stale_failures == 1
