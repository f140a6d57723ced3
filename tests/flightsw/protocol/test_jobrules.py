"""The ground's rulebook: which result counts, leases, and where a job is uplinked."""

from __future__ import annotations

import math

import pytest

from flightsw.protocol.jobrules import (
    UplinkOption,
    choose_uplink,
    judge_result,
    lapses_when_offline,
    lease_lapsed,
    next_epoch,
    uplink_ready_s,
)


@pytest.mark.parametrize(
    ("terminal", "current", "got", "want"),
    [
        (False, 0, 0, "record"),
        (False, 1, 2, "record"),  # the handover that raised it has not been seen yet
        (False, 2, 1, "stale"),
        (True, 1, 1, "duplicate"),
        (True, 1, 0, "duplicate"),  # an ended job: any later copy is a duplicate
        (True, 1, 5, "duplicate"),
    ],
)
def test_judge_result(terminal: bool, current: int, got: int, want: str) -> None:
    assert judge_result(terminal, current, got) == want


def test_epochs_and_leases() -> None:
    assert next_epoch(0) == 1 and next_epoch(7) == 8
    assert not lease_lapsed(160.0, 100.0, 60.0)  # exactly the lease: still held
    assert lease_lapsed(160.5, 100.0, 60.0)
    assert not lapses_when_offline("queued")
    for state in ("uplinked", "accepted", "deferred", "running", "migrating"):
        assert lapses_when_offline(state)


def test_ready_time_counts_link_model_and_backlog() -> None:
    bare = UplinkOption("a", uplink_rate_bps=8e6, backlog_s=3.0, has_model=False)
    assert uplink_ready_s(bare, 1e6, 4e6) == pytest.approx(5.0 + 3.0)
    held = bare._replace(has_model=True)
    assert uplink_ready_s(held, 1e6, 4e6) == pytest.approx(1.0 + 3.0)
    for rate in (math.inf, 0.0, -1.0):  # link not modelled: only the backlog counts
        assert uplink_ready_s(bare._replace(uplink_rate_bps=rate), 1e6, 4e6) == 3.0


def test_choose_uplink_least_ready_then_name() -> None:
    assert choose_uplink([], 1e3, 1e6) is None
    opts = [
        UplinkOption("c", 1e6, 0.0, has_model=False),  # 8 s for the model
        UplinkOption("b", 1e6, 2.0, has_model=True),
        UplinkOption("a", 1e6, 2.0, has_model=True),  # same as b: the lower name wins
    ]
    assert choose_uplink(opts, 0.0, 1e6) == 2
    # a small model makes the idle node that lacks it the soonest
    assert choose_uplink(opts, 0.0, 1e5) == 0
    # a faster link wins when backlogs are equal
    fast = [UplinkOption("x", 1e6, 0.0, True), UplinkOption("y", 1e7, 0.0, True)]
    assert choose_uplink(fast, 1e6, 0.0) == 1


def test_work_sent_in_a_pass_spreads_a_burst() -> None:
    """How a driver uses it: after each job, the chosen node's backlog grows by its work."""
    backlog = {"a": 0.0, "b": 0.0, "c": 5.0}
    picks = []
    for _ in range(7):
        opts = [UplinkOption(n, math.inf, w, True) for n, w in backlog.items()]
        k = choose_uplink(opts, 1e3, 1e6)
        assert k is not None
        picks.append(opts[k].node)
        backlog[opts[k].node] += 2.0
    # a and b alternate (ties by name); once both hold 6 s, c (5 s) is the soonest
    assert picks == ["a", "b", "a", "b", "a", "b", "c"]


def test_a_job_past_its_deadline_fails_at_the_ground() -> None:
    from flightsw.protocol.jobrules import EXPIRED_AT_GROUND, expired_at_ground

    assert expired_at_ground(100.0, 100.5)
    assert not expired_at_ground(100.0, 100.0)  # at the deadline it may still go
    assert not expired_at_ground(None, 1e12)
    assert "deadline" in EXPIRED_AT_GROUND
