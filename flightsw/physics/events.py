"""Intervals during which a per-satellite condition holds, with bisection-refined edges.

The condition is sampled on a regular grid (``step_s``) for all satellites at once; each
change of state between two samples is then bisected, all edges of all satellites together,
until the bracket is narrower than ``tol_s``. Episodes shorter than one step can be missed
(an eclipse or pass never is, at the default 10 s step: they last minutes).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from flightsw.exceptions import ConfigError
from flightsw.physics.frames import FloatArray
from flightsw.physics.orbit import Orbits

__all__ = ["Predicate", "find_intervals", "sample_times"]

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]
# predicate(r_eci (K, 3), t (K,), sat_index (K,)) -> (K,) bool
Predicate = Callable[[FloatArray, FloatArray, IntArray], BoolArray]

_MAX_POINTS_PER_CHUNK = 200_000


def sample_times(start: float, end: float, step_s: float) -> FloatArray:
    """Grid ``start, start + step, ...`` always ending exactly at ``end``."""
    if not np.isfinite(start) or not np.isfinite(end):
        raise ConfigError("start/end: must be finite times")
    if end <= start:
        raise ConfigError(f"end: must be after start (start={start}, end={end})")
    if not step_s > 0:
        raise ConfigError(f"step_s: must be > 0, got {step_s!r}")
    n = int(np.ceil((end - start) / step_s))
    times = start + step_s * np.arange(n + 1, dtype=np.float64)
    times[-1] = end
    return times


def _sample(orbits: Orbits, times: FloatArray, predicate: Predicate) -> BoolArray:
    n_sat = len(orbits)
    mask = np.empty((times.shape[0], n_sat), dtype=bool)
    chunk = max(1, _MAX_POINTS_PER_CHUNK // max(n_sat, 1))
    sat_idx = np.arange(n_sat, dtype=np.intp)
    for k in range(0, times.shape[0], chunk):
        tt = times[k : k + chunk]
        r = orbits.positions_many(tt).reshape(-1, 3)
        t_flat = np.repeat(tt, n_sat)
        idx = np.tile(sat_idx, tt.shape[0])
        mask[k : k + chunk] = predicate(r, t_flat, idx).reshape(tt.shape[0], n_sat)
    return mask


def find_intervals(
    orbits: Orbits,
    start: float,
    end: float,
    predicate: Predicate,
    *,
    step_s: float = 10.0,
    tol_s: float = 0.1,
) -> list[list[tuple[float, float]]]:
    """Per satellite, the (start, end) intervals within [start, end] where ``predicate`` holds.

    Intervals are clipped at the window ends; interior edges are accurate to ``tol_s / 2``.
    """
    if not tol_s > 0:
        raise ConfigError(f"tol_s: must be > 0, got {tol_s!r}")
    times = sample_times(start, end, step_s)
    mask = _sample(orbits, times, predicate)
    k_idx, sat = np.nonzero(mask[1:] != mask[:-1])
    lo = times[k_idx].copy()
    hi = times[k_idx + 1].copy()
    state_lo = mask[k_idx, sat]
    while lo.size and float(np.max(hi - lo)) > tol_s:
        mid = 0.5 * (lo + hi)
        val = predicate(orbits.positions_at(mid, sat), mid, sat)
        same = val == state_lo
        lo = np.where(same, mid, lo)
        hi = np.where(same, hi, mid)
    edges = 0.5 * (lo + hi)
    result: list[list[tuple[float, float]]] = [[] for _ in range(len(orbits))]
    order = np.lexsort((edges, sat))
    open_at: dict[int, float] = {int(i): start for i in np.nonzero(mask[0])[0].tolist()}
    for j in order.tolist():
        i = int(sat[j])
        if state_lo[j]:  # condition ends
            result[i].append((open_at.pop(i), float(edges[j])))
        else:
            open_at[i] = float(edges[j])
    for i, t0 in open_at.items():
        result[i].append((t0, end))
    return result
