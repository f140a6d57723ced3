"""The ground's antenna rule: how many satellites a station can uplink to at once.

One rule for the simulator's uplink (``flightsw/sim/engine.py``) and the emulated ground
station (``groundstation/service.py``), beside the rest of the ground's rulebook
(:mod:`flightsw.protocol.jobrules`). A value object with no I/O and no clock (times are
passed in).

* Station ``s`` has ``counts[s]`` antennas (at least 1). Each antenna serves one satellite
  at a time: an uplink holds it from its start to its end.
* An uplink to a satellite that an antenna of the station is still serving goes on that
  antenna, after what it is sending now (a satellite never holds two antennas of one
  station, and its messages arrive in order).
* Otherwise it takes the antenna of the station that is free soonest (the lowest index on
  ties) and starts when that antenna is free, not before the uplink is asked for.
* A driver that uplinks in rounds (the simulator every ``step_s``, the emulated ground every
  ``tick_s``) offers a job only to the satellites an antenna can start on before the next
  round (:meth:`Antennas.start` < ``horizon``).

With one antenna per station the rule is the simulator's original one: each station
uplinks one job after the other, to whichever satellite. Different stations are not
coordinated: a satellite in view of two stations may receive from both at once.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from flightsw.exceptions import ConfigError

__all__ = ["Antennas", "check_antennas"]


def check_antennas(value: object, where: str = "antennas") -> int:
    """``value`` as an antenna count: an int >= 1 (not a bool), else a
    :class:`ConfigError` naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: expected a whole number of antennas, got {value!r}")
    if value < 1:
        raise ConfigError(f"{where}: a station needs at least 1 antenna, got {value}")
    return value


class Antennas:
    """The antennas of a ground network (see the module docstring)."""

    __slots__ = ("_free", "_serving")

    def __init__(self, counts: Sequence[int], t0: float) -> None:
        for s, c in enumerate(counts):
            check_antennas(c, f"antennas of station {s}")
        # per station, per antenna: when it is free, and the satellite it serves until then
        self._free: list[list[float]] = [[t0] * c for c in counts]
        self._serving: list[list[Hashable | None]] = [[None] * c for c in counts]

    def count(self, s: int) -> int:
        return len(self._free[s])

    def next_free(self, s: int) -> float:
        """When the first antenna of station ``s`` is free."""
        return min(self._free[s])

    def start(self, s: int, sat: Hashable, t: float) -> tuple[int, float]:
        """``(antenna, start time)`` of an uplink to ``sat`` from station ``s`` asked for
        at ``t``: the antenna serving ``sat`` after its current uplink, else the antenna
        free soonest, not before ``t``."""
        free = self._free[s]
        serving = self._serving[s]
        for a, who in enumerate(serving):
            if who == sat and free[a] > t:
                return a, free[a]
        a = min(range(len(free)), key=free.__getitem__)
        return a, max(free[a], t)

    def book(self, s: int, antenna: int, sat: Hashable, end: float) -> None:
        """Antenna ``antenna`` of station ``s`` serves ``sat`` until ``end``."""
        self._free[s][antenna] = end
        self._serving[s][antenna] = sat

    def blocked(self, s: int, horizon: float) -> set[Hashable]:
        """The satellites station ``s`` cannot start an uplink to before ``horizon``
        because an antenna serves them past it (while an antenna is free before
        ``horizon``, every other satellite can start before it)."""
        return {who for who, f in zip(self._serving[s], self._free[s], strict=True)
                if who is not None and f >= horizon}
