"""Eclipse intervals of every satellite over a time window."""

from __future__ import annotations

from flightsw.exceptions import ConfigError
from flightsw.physics.events import BoolArray, IntArray, find_intervals
from flightsw.physics.frames import FloatArray
from flightsw.physics.orbit import Orbits
from flightsw.physics.sun import SHADOW_MODELS, illumination, sun_position_km

__all__ = ["eclipse_fraction", "eclipse_intervals"]


def eclipse_intervals(
    orbits: Orbits,
    start: float,
    end: float,
    step_s: float = 10.0,
    model: str = "cylindrical",
    *,
    threshold: float = 1.0,
    tol_s: float = 0.1,
) -> list[list[tuple[float, float]]]:
    """Per satellite, the (start, end) POSIX-second intervals of eclipse within the window.

    A satellite is in eclipse while its illumination (see :func:`~flightsw.physics.sun.
    illumination`) is below ``threshold``: with the default 1.0 the conical model counts
    penumbra as eclipse; pass e.g. 1e-9 for umbra only. Edges are bisected to ``tol_s``
    (default 0.1 s); intervals are clipped at the window ends.
    """
    if model not in SHADOW_MODELS:
        raise ConfigError(f"model: unknown shadow model {model!r}, expected one of {SHADOW_MODELS}")
    if not 0.0 < threshold <= 1.0:
        raise ConfigError(f"threshold: must be in (0, 1], got {threshold!r}")

    def in_shadow(r: FloatArray, t: FloatArray, _idx: IntArray) -> BoolArray:
        shadow: BoolArray = illumination(r, sun_position_km(t), model) < threshold
        return shadow

    return find_intervals(orbits, start, end, in_shadow, step_s=step_s, tol_s=tol_s)


def eclipse_fraction(intervals: list[tuple[float, float]], start: float, end: float) -> float:
    """Fraction of [start, end] covered by ``intervals`` (one satellite's eclipses)."""
    if end <= start:
        raise ConfigError("end: must be after start")
    return sum(b - a for a, b in intervals) / (end - start)
