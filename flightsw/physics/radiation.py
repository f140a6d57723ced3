"""Single-event upsets as a Poisson process, raised inside the South Atlantic Anomaly.

SAA region: an ellipse in latitude/longitude centred at 27 S, 45 W with semi-axes 20 deg
(latitude) and 45 deg (longitude), i.e. roughly 47 S to 7 S and 90 W to 0 E. This
approximates the AP-8/AP-9 trapped-proton flux contour (> 10 MeV, ~10 p/cm^2/s) at
500-600 km (e.g. ESA SPENVIS maps; the anomaly drifts ~0.3 deg/yr westward, ignored).
Change ``SAA_CENTRE_DEG`` / ``SAA_SEMI_AXES_DEG`` for another altitude or epoch.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from flightsw.exceptions import ConfigError
from flightsw.physics.constants import SECONDS_PER_DAY
from flightsw.physics.events import BoolArray, IntArray
from flightsw.physics.frames import FloatArray

__all__ = [
    "SAA_CENTRE_DEG",
    "SAA_SEMI_AXES_DEG",
    "expected_upsets",
    "in_saa",
    "sample_upsets",
    "split_rate",
]

SAA_CENTRE_DEG = (-27.0, -45.0)  # (lat, lon)
SAA_SEMI_AXES_DEG = (20.0, 45.0)  # (lat, lon)


def in_saa(lat_deg: npt.ArrayLike, lon_deg: npt.ArrayLike) -> BoolArray:
    """True inside the SAA ellipse; longitudes in any 360-degree range."""
    lat = np.asarray(lat_deg, dtype=np.float64)
    lon = np.asarray(lon_deg, dtype=np.float64)
    dlon = (lon - SAA_CENTRE_DEG[1] + 180.0) % 360.0 - 180.0
    dlat = lat - SAA_CENTRE_DEG[0]
    dist2 = (dlat / SAA_SEMI_AXES_DEG[0]) ** 2 + (dlon / SAA_SEMI_AXES_DEG[1]) ** 2
    return np.asarray(dist2 <= 1.0)


def expected_upsets(
    rate_per_bit_day: npt.ArrayLike,
    bits: npt.ArrayLike,
    dt_s: float,
    saa_mask: npt.ArrayLike,
    saa_factor: npt.ArrayLike,
) -> FloatArray:
    """Mean number of upsets in ``dt_s``: rate x bits x days x (saa_factor inside the SAA)."""
    rate = np.asarray(rate_per_bit_day, dtype=np.float64)
    nbits = np.asarray(bits, dtype=np.float64)
    if np.any(rate < 0) or np.any(nbits < 0):
        raise ConfigError("rate_per_bit_day, bits: must be >= 0")
    boost = np.asarray(saa_factor, dtype=np.float64)
    if dt_s < 0 or np.any(boost < 0):
        raise ConfigError("dt_s, saa_factor: must be >= 0")
    factor = np.where(np.asarray(saa_mask, dtype=bool), boost, 1.0)
    return np.asarray(rate * nbits * (dt_s / SECONDS_PER_DAY) * factor)


def sample_upsets(
    rng: np.random.Generator,
    rate_per_bit_day: npt.ArrayLike,
    bits: npt.ArrayLike,
    dt_s: float,
    saa_mask: npt.ArrayLike,
    saa_factor: npt.ArrayLike,
) -> IntArray:
    """Upset counts per satellite in ``dt_s``, Poisson-distributed, from the run's ``rng``."""
    lam = expected_upsets(rate_per_bit_day, bits, dt_s, saa_mask, saa_factor)
    return np.asarray(rng.poisson(lam), dtype=np.intp)


def split_rate(
    mean_rate_per_bit_day: float, saa_upset_fraction: float, saa_time_fraction: float
) -> tuple[float, float]:
    """Turn an orbit-average rate into (rate outside the SAA, saa_factor).

    Published figures come as "r upsets/bit/day, a fraction f_u of them in the SAA" (e.g.
    4e-7 and 0.8-0.97 for Alsat-1); with a fraction f_t of the time inside the SAA the
    outside rate is r (1 - f_u) / (1 - f_t) and the SAA rate r f_u / f_t.
    """
    if not 0.0 < saa_time_fraction < 1.0:
        raise ConfigError(f"saa_time_fraction: must be in (0, 1), got {saa_time_fraction!r}")
    if not 0.0 <= saa_upset_fraction < 1.0:
        raise ConfigError(f"saa_upset_fraction: must be in [0, 1), got {saa_upset_fraction!r}")
    outside = mean_rate_per_bit_day * (1.0 - saa_upset_fraction) / (1.0 - saa_time_fraction)
    inside = mean_rate_per_bit_day * saa_upset_fraction / saa_time_fraction
    return outside, inside / outside
