"""The ground's antenna rule (flightsw.protocol.antennas), shared by simulator and ground."""

from __future__ import annotations

import pytest

from flightsw.exceptions import ConfigError
from flightsw.protocol.antennas import Antennas, check_antennas


def test_one_antenna_sends_one_uplink_after_the_other_whichever_satellite() -> None:
    ant = Antennas([1], 0.0)
    assert ant.start(0, "a", 5.0) == (0, 5.0)
    ant.book(0, 0, "a", 12.0)
    assert ant.start(0, "a", 6.0) == (0, 12.0)  # behind its own uplink
    assert ant.start(0, "b", 6.0) == (0, 12.0)  # and so is another satellite
    assert ant.start(0, "b", 20.0) == (0, 20.0)  # free again
    assert ant.next_free(0) == 12.0


def test_each_antenna_serves_one_satellite_and_a_served_one_keeps_its_antenna() -> None:
    ant = Antennas([2, 1], 0.0)
    assert ant.count(0) == 2
    assert ant.count(1) == 1
    ant.book(0, 0, "a", 10.0)
    a, start = ant.start(0, "b", 1.0)
    assert (a, start) == (1, 1.0)  # the other antenna, at once
    ant.book(0, a, "b", 4.0)
    assert ant.start(0, "c", 2.0) == (1, 4.0)  # both antennas serve a satellite at 2 s
    assert ant.next_free(0) == 4.0
    # "a" stays on antenna 0 though antenna 1 frees first: never two antennas on one satellite
    assert ant.start(0, "a", 5.0) == (0, 10.0)
    assert ant.start(0, "c", 5.0) == (1, 5.0)  # at 5 s only antenna 0 serves one
    assert ant.start(1, "a", 5.0) == (0, 5.0)  # another station is not coordinated


def test_blocked_are_the_satellites_that_cannot_start_before_the_horizon() -> None:
    ant = Antennas([3], 0.0)
    ant.book(0, 0, "a", 30.0)
    ant.book(0, 1, "b", 12.0)
    assert ant.blocked(0, 20.0) == {"a"}  # "b" is through by then, "c" has antenna 2
    for sat in ("a", "b", "c"):
        assert (ant.start(0, sat, 10.0)[1] < 20.0) == (sat not in ant.blocked(0, 20.0))


@pytest.mark.parametrize("bad", [0, -3, 1.5, "2", True, None])
def test_bad_counts_are_refused_naming_where(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"^ground_stations\[2\]\.antennas: "):
        check_antennas(bad, "ground_stations[2].antennas")
    with pytest.raises(ConfigError, match=r"^antennas of station 0: "):
        Antennas([bad], 0.0)  # type: ignore[list-item]
    assert check_antennas(3) == 3
