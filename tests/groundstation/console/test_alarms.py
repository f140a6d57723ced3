"""The alarm rules and the alarm book's life cycle (pure: no bus, no clock)."""

from __future__ import annotations

import pytest

from groundstation.console.alarms import TELEMETRY_KINDS, AlarmBook, Condition, conditions
from groundstation.console.exceptions import NotFound
from groundstation.console.limits import limits_for

NANO = limits_for("jetson-orin-nano-super")  # floor 0.30, throttle 60 C, max 75 C


def kinds(found: list[Condition]) -> list[tuple[str, str]]:
    return [(c.kind, c.level) for c in found]


def test_limits_come_from_the_profile() -> None:
    assert NANO is not None
    assert (NANO.soc_floor, NANO.soc_yellow, NANO.throttle_c, NANO.max_c) == (0.3, 0.4, 60, 75)
    assert "25W" in NANO.modes
    assert limits_for("no-such-profile") is None


@pytest.mark.parametrize(
    ("soc", "temp", "safe", "want"),
    [
        (0.80, 30.0, False, []),
        (0.39, 30.0, False, [("battery", "yellow")]),
        (0.30, 30.0, False, [("battery", "red")]),
        (0.80, 60.0, False, [("temperature", "yellow")]),
        (0.80, 75.0, False, [("temperature", "red")]),
        (0.20, 80.0, True, [("battery", "red"), ("temperature", "red"), ("safe_mode", "red")]),
    ],
)
def test_conditions(soc: float, temp: float, safe: bool, want: list[tuple[str, str]]) -> None:
    assert kinds(conditions("n1", soc, temp, safe, NANO)) == want


def test_one_alarm_per_node_and_kind_through_its_life() -> None:
    book = AlarmBook()

    def frame(soc: float, t: float) -> None:
        book.judge("n1", TELEMETRY_KINDS, conditions("n1", soc, 30.0, False, NANO), t)

    frame(0.35, 0.0)
    frame(0.34, 1.0)  # still yellow: the same alarm
    (a,) = book.listed()
    assert (a.level, a.active, a.acked) == ("yellow", True, False)
    book.acknowledge(a.id, "op", 2.0)
    frame(0.29, 3.0)  # worse than ever: red, to be acknowledged again
    (a,) = book.listed()
    assert (a.level, a.acked, a.peak) == ("red", False, "red")
    assert book.raised_total == {"yellow": 1, "red": 1}
    frame(0.35, 4.0)  # back to yellow: level and message say what holds now
    (a,) = book.listed()
    assert a.level == "yellow" and "35%" in a.message and a.as_dict()["peak"] == "red"
    frame(0.9, 5.0)  # cleared but never acknowledged since it went red: still listed
    (a,) = book.listed()
    assert not a.active
    book.acknowledge(a.id, "op", 6.0)
    assert book.listed() == []
    with pytest.raises(NotFound):
        book.acknowledge(a.id, "op", 7.0)
    changed = book.changed()
    assert changed and changed[-1].acked and not changed[-1].active  # the page drops it


def test_event_alarms_stay_until_acknowledged_and_red_sorts_first() -> None:
    book = AlarmBook()
    book.raise_(Condition("n2", "failed_job", "yellow", "job x failed: deadline"), 1.0)
    book.clear("n2", "failed_job", 1.0)
    book.raise_(Condition("n3", "safe_mode", "red", "node in safe mode"), 2.0)
    listed = book.listed()
    assert [(a.node, a.kind) for a in listed] == [("n3", "safe_mode"), ("n2", "failed_job")]
    assert book.counts() == {"red": 1, "yellow": 0, "unacked": 2}
