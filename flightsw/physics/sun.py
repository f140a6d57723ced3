"""Sun position (low-precision ephemeris), Earth shadow and beta angle.

Solar ephemeris: the Astronomical Almanac's low-precision formulae (section C, "Low
precision formulas for the Sun"), good to ~0.01 deg in 1950-2050. They give the apparent
ecliptic longitude referred to the equinox of date and the obliquity of date, so the
result is in the same "of date" frame as SGP4's TEME (see :mod:`flightsw.physics.frames`).

Shadow models:

* ``cylindrical``: Earth's shadow is a cylinder of radius R_E behind the Earth; the result
  is 0 or 1.
* ``conical``: the satellite sees the Sun's and the Earth's discs; the lit fraction is the
  part of the solar disc not covered by the Earth (circle-overlap area, flat-disc
  approximation, no limb darkening, no atmosphere), in [0, 1], so penumbra is fractional.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from flightsw.exceptions import ConfigError
from flightsw.physics.constants import AU_KM, R_EARTH, R_SUN
from flightsw.physics.frames import FloatArray, julian_date

if TYPE_CHECKING:
    from flightsw.physics.orbit import Orbits

__all__ = [
    "ShadowModel",
    "beta_angle_deg",
    "illumination",
    "sun_direction",
    "sun_distance_au",
    "sun_position_km",
]

ShadowModel = Literal["cylindrical", "conical"]
SHADOW_MODELS: tuple[str, ...] = ("cylindrical", "conical")


def _ephemeris(t: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Unit vector(s) to the Sun, shape (..., 3), and distance in AU, shape (...)."""
    n = julian_date(t) - 2451545.0
    mean_lon = np.radians(np.mod(280.460 + 0.9856474 * n, 360.0))
    g = np.radians(np.mod(357.528 + 0.9856003 * n, 360.0))
    lam = mean_lon + np.radians(1.915) * np.sin(g) + np.radians(0.020) * np.sin(2.0 * g)
    eps = np.radians(23.439 - 4.0e-7 * n)
    dist = 1.00014 - 0.01671 * np.cos(g) - 0.00014 * np.cos(2.0 * g)
    cl, sl = np.cos(lam), np.sin(lam)
    unit = np.stack((cl, np.cos(eps) * sl, np.sin(eps) * sl), axis=-1)
    return unit, np.asarray(dist)


def sun_direction(t: npt.ArrayLike) -> FloatArray:
    """Unit vector from the Earth to the Sun in ECI; shape (3,) for scalar t, else (T, 3)."""
    return _ephemeris(t)[0]


def sun_distance_au(t: npt.ArrayLike) -> FloatArray:
    """Earth-Sun distance, AU (0.983 in January to 1.017 in July)."""
    return _ephemeris(t)[1]


def sun_position_km(t: npt.ArrayLike) -> FloatArray:
    """Geocentric Sun position in ECI, km; shape (3,) for scalar t, else (T, 3)."""
    unit, dist = _ephemeris(t)
    return np.asarray(unit * (dist * AU_KM)[..., None])


def illumination(
    r_eci: npt.ArrayLike, sun_pos: npt.ArrayLike, model: str = "cylindrical"
) -> FloatArray:
    """Fraction of the solar disc visible from each position, in [0, 1].

    ``r_eci`` is (..., 3) km; ``sun_pos`` (km, geocentric) broadcasts against it, e.g.
    (3,) for one time, or (T, 1, 3) against positions (T, N, 3).
    """
    r = np.asarray(r_eci, dtype=np.float64)
    s = np.asarray(sun_pos, dtype=np.float64)
    if model == "cylindrical":
        s_hat = s / np.linalg.norm(s, axis=-1, keepdims=True)
        along = np.sum(r * s_hat, axis=-1)
        perp2 = np.sum(r * r, axis=-1) - along * along
        shadow = (along < 0.0) & (perp2 < R_EARTH * R_EARTH)
        return np.where(shadow, 0.0, 1.0)
    if model == "conical":
        return _conical(r, s)
    raise ConfigError(f"model: unknown shadow model {model!r}, expected one of {SHADOW_MODELS}")


def _conical(r: FloatArray, s: FloatArray) -> FloatArray:
    to_sun = s - r
    d_sun = np.linalg.norm(to_sun, axis=-1)
    d_earth = np.linalg.norm(r, axis=-1)
    a = np.arcsin(np.clip(R_SUN / d_sun, -1.0, 1.0))  # apparent solar radius
    b = np.arcsin(np.clip(R_EARTH / d_earth, -1.0, 1.0))  # apparent Earth radius
    cos_sep = -np.sum(to_sun * r, axis=-1) / (d_sun * d_earth)
    sep = np.arccos(np.clip(cos_sep, -1.0, 1.0))
    lit: FloatArray = np.ones_like(sep)
    total = sep <= b - a  # solar disc entirely behind the Earth (umbra)
    partial = (sep < a + b) & ~total
    lit[total] = 0.0
    if np.any(partial):
        aa, bb, dd = a[partial], b[partial], sep[partial]
        # Area of intersection of two discs of radii aa, bb with centres dd apart.
        c1 = np.clip((dd * dd + aa * aa - bb * bb) / (2.0 * dd * aa), -1.0, 1.0)
        c2 = np.clip((dd * dd + bb * bb - aa * aa) / (2.0 * dd * bb), -1.0, 1.0)
        k = (-dd + aa + bb) * (dd + aa - bb) * (dd - aa + bb) * (dd + aa + bb)
        overlap = (
            aa * aa * np.arccos(c1) + bb * bb * np.arccos(c2) - 0.5 * np.sqrt(np.maximum(k, 0.0))
        )
        # Annular case (Earth disc inside the solar disc) cannot occur below ~1.3 million
        # km but is handled: the covered area is then the whole Earth disc.
        inside = dd <= aa - bb
        overlap = np.where(inside, np.pi * bb * bb, overlap)
        lit[partial] = np.clip(1.0 - overlap / (np.pi * aa * aa), 0.0, 1.0)
    return lit


def beta_angle_deg(orbits: Orbits, t: float) -> FloatArray:
    """Angle between each orbit plane and the Sun direction, deg, (N,), in [-90, 90].

    Positive when the Sun is on the side of the orbit normal h = r x v.
    """
    s = sun_direction(t)
    cos_angle: FloatArray = np.clip(orbits.normals(t) @ s, -1.0, 1.0)
    return np.asarray(np.degrees(np.arcsin(cos_angle)))
