"""Yellow and red limits of a node, from its hardware profile.

A limit is one number with the side that is bad: the battery floor (state of charge below
it is red, within ``SOC_MARGIN`` above it yellow), the throttle temperature (yellow) and the
maximum temperature (red). The console draws them on the plots and raises alarms on them.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from flightsw.exceptions import FlightSwError
from hardware_profiles import load_profile

__all__ = ["SOC_MARGIN", "Limits", "limits_for"]

SOC_MARGIN = 0.10  # yellow when the state of charge is less than this above the floor


class Limits(NamedTuple):
    soc_floor: float  # fraction of capacity
    soc_yellow: float
    throttle_c: float
    max_c: float
    battery_wh: float
    modes: tuple[str, ...] = ()  # the power modes a telecommand may set

    def as_dict(self) -> dict[str, object]:
        return self._asdict()


@lru_cache(maxsize=64)
def limits_for(profile: str | None) -> Limits | None:
    """The limits of a packaged profile, ``None`` if the profile is unknown here."""
    if not profile:
        return None
    try:
        p = load_profile(profile)
    except (FlightSwError, OSError, ValueError):
        return None
    floor = p.bus.dod_floor
    return Limits(
        soc_floor=floor,
        soc_yellow=min(1.0, floor + SOC_MARGIN),
        throttle_c=p.thermal.throttle_c,
        max_c=p.thermal.max_c,
        battery_wh=p.bus.battery_wh,
        modes=tuple(m.name for m in p.compute.power_modes),
    )
