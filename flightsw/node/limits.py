"""The thermal and battery limits rule, for one node or N at once.

A node throttles to its lowest power mode above the throttle temperature and lifts the
throttle ``THROTTLE_HYSTERESIS_K`` below it; it enters safe mode at or above its maximum
temperature or below its depth-of-discharge floor, and leaves it once the battery is
``SAFE_EXIT_SOC`` above the floor and the temperature under the throttle point. The core
applies it to one row; the simulator finds the few rows that changed in one pass.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = ["SAFE_EXIT_SOC", "THROTTLE_HYSTERESIS_K", "LimitFlags", "limit_flags"]

THROTTLE_HYSTERESIS_K = 5.0  # the throttle lifts this far below the throttle temperature
SAFE_EXIT_SOC = 0.05  # automatic safe mode ends this far above the depth-of-discharge floor

B = npt.NDArray[np.bool_]
F = npt.NDArray[np.float64]


class LimitFlags(NamedTuple):
    throttle_on: B
    throttle_off: B
    safe_on: B
    safe_off: B


def limit_flags(temp_c: F, soc: F, throttled: B, safe_auto: B, throttle_c: F, max_c: F,
                floor_soc: F) -> LimitFlags:
    """Which rows cross a thermal or battery limit now (the rule of :meth:`NodeCore.limits`,
    vectorised so a constellation finds the few rows that changed in one pass).

    Throttle above ``throttle_c``, lifted ``THROTTLE_HYSTERESIS_K`` below it; automatic safe
    mode at or above ``max_c`` or below the floor, left once the battery is ``SAFE_EXIT_SOC``
    above the floor and the temperature under the throttle point.
    """
    danger = (temp_c >= max_c) | (soc < floor_soc)
    return LimitFlags(
        ~throttled & (temp_c > throttle_c),
        throttled & (temp_c < throttle_c - THROTTLE_HYSTERESIS_K),
        ~safe_auto & danger,
        safe_auto & ~danger & (soc > floor_soc + SAFE_EXIT_SOC) & (temp_c < throttle_c),
    )
