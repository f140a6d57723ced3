"""Inter-satellite links: line of sight past the Earth, ranges, link availability.

A link between two satellites is up when the straight segment between them stays at least
``margin_km`` above the Earth's surface (a sphere of radius R_E; the default 80 km keeps
the beam above the dense atmosphere) and their range is at most ``max_range_km``.

Scale: :func:`range_matrix` and :func:`link_matrix` return dense (N, N) arrays; they are
computed in row blocks so the float work space stays ~32 MB, but the result itself is N^2
(10,000 satellites: 800 MB of float64 ranges, 100 MB of booleans). :func:`link_matrix`
therefore refuses more than ``DENSE_LIMIT`` satellites. For large constellations use
:func:`link_pairs` (a spatial-hash neighbour search, memory O(N + candidate pairs), returns
only the links that are up), :func:`nearest_links` (the k nearest visible neighbours of
each satellite) or :func:`pair_links` (check given pairs).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt

from flightsw.exceptions import ConfigError
from flightsw.physics.constants import C_KM_S, R_EARTH
from flightsw.physics.events import BoolArray, IntArray
from flightsw.physics.frames import FloatArray

__all__ = [
    "DENSE_LIMIT",
    "grid_pairs",
    "latency_s",
    "line_of_sight",
    "line_of_sight_pair",
    "link_matrix",
    "link_pairs",
    "nearest_links",
    "pair_links",
    "range_matrix",
]

DENSE_LIMIT = 12_000
_BLOCK_FLOATS = 4_000_000  # float64 elements per work block (32 MB)


def line_of_sight(r_a: npt.ArrayLike, r_b: npt.ArrayLike, margin_km: float = 80.0) -> BoolArray:
    """True where the segment a-b clears the Earth plus ``margin_km``; inputs (..., 3) km."""
    a = np.asarray(r_a, dtype=np.float64)
    b = np.asarray(r_b, dtype=np.float64)
    d = b - a
    dd = np.sum(d * d, axis=-1)
    # Closest point of the segment to the Earth's centre: a + s d, s clamped to [0, 1].
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.clip(-np.sum(a * d, axis=-1) / dd, 0.0, 1.0)
    s = np.where(dd > 0.0, s, 0.0)
    closest = a + s[..., None] * d
    limit = R_EARTH + margin_km
    return np.asarray(np.sum(closest * closest, axis=-1) > limit * limit)


def line_of_sight_pair(a: Sequence[float], b: Sequence[float], margin_km: float = 80.0) -> bool:
    """:func:`line_of_sight` for one pair of positions (km) in plain floats: the same
    operations in the same order, so the same answer, without numpy's cost per call (the
    simulator checks links one at a time when a transfer or relay completes)."""
    ax, ay, az = a
    dx, dy, dz = b[0] - ax, b[1] - ay, b[2] - az
    dd = dx * dx + dy * dy + dz * dz
    s = 0.0
    if dd > 0.0:
        s = min(max(-(ax * dx + ay * dy + az * dz) / dd, 0.0), 1.0)
    cx, cy, cz = ax + s * dx, ay + s * dy, az + s * dz
    limit = R_EARTH + margin_km
    return cx * cx + cy * cy + cz * cz > limit * limit


def _check_positions(r: npt.ArrayLike) -> FloatArray:
    arr = np.asarray(r, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ConfigError(f"r: expected positions of shape (N, 3), got {arr.shape}")
    return arr


def _block_rows(n: int) -> int:
    """Rows per block so a (rows, N, 3) float64 work array stays near 32 MB."""
    return max(1, _BLOCK_FLOATS // max(3 * n, 1))


def range_matrix(r: npt.ArrayLike) -> FloatArray:
    """(N, N) distances between positions (N, 3), km (direct differences: exact for
    satellites metres apart)."""
    pos = _check_positions(r)
    n = pos.shape[0]
    out = np.empty((n, n))
    step = _block_rows(n)
    for i0 in range(0, n, step):
        blk = pos[i0 : i0 + step]
        out[i0 : i0 + blk.shape[0]] = np.linalg.norm(blk[:, None, :] - pos[None, :, :], axis=-1)
    return out


def link_matrix(r: npt.ArrayLike, max_range_km: float, margin_km: float = 80.0) -> BoolArray:
    """(N, N) symmetric mask of links that are up (range and line of sight); diagonal False.

    Raises :class:`ConfigError` above ``DENSE_LIMIT`` satellites: use :func:`link_pairs`.
    """
    pos = _check_positions(r)
    n = pos.shape[0]
    if n > DENSE_LIMIT:
        raise ConfigError(
            f"link_matrix: {n} satellites exceed the dense limit {DENSE_LIMIT}; "
            "use link_pairs() or nearest_links()"
        )
    out = np.zeros((n, n), dtype=bool)
    step = _block_rows(n)
    for i0 in range(0, n, step):
        blk = pos[i0 : i0 + step]
        diff = blk[:, None, :] - pos[None, :, :]
        ok = np.sum(diff * diff, axis=-1) <= max_range_km * max_range_km
        rows, cols = np.nonzero(ok)
        up = line_of_sight(blk[rows], pos[cols], margin_km)
        out[rows[up] + i0, cols[up]] = True
    np.fill_diagonal(out, False)
    return out


def pair_links(
    r: npt.ArrayLike, pairs: npt.ArrayLike, max_range_km: float, margin_km: float = 80.0
) -> BoolArray:
    """For index pairs (M, 2), whether each link is up; (M,) bool."""
    pos = _check_positions(r)
    p = np.asarray(pairs, dtype=np.intp).reshape(-1, 2)
    a, b = pos[p[:, 0]], pos[p[:, 1]]
    rng = np.linalg.norm(b - a, axis=-1)
    up: BoolArray = (rng <= max_range_km) & line_of_sight(a, b, margin_km) & (p[:, 0] != p[:, 1])
    return up


def grid_pairs(pos: FloatArray, cell_km: float) -> Iterator[tuple[IntArray, IntArray]]:
    """Candidate index pairs (i, j) of satellites in the same or adjacent cubes of side
    ``cell_km``, one batch per neighbour offset (27 in all; both orders and i == j
    included). Every pair closer than ``cell_km`` is among them; callers filter the rest."""
    n = pos.shape[0]
    cells = np.floor(pos / cell_km).astype(np.int64)
    cells -= cells.min(axis=0) - 1  # >= 1, so a -1 offset never wraps
    dims = cells.max(axis=0) + 2
    key = (cells[:, 0] * dims[1] + cells[:, 1]) * dims[2] + cells[:, 2]
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    for off in itertools.product((-1, 0, 1), repeat=3):
        nk = ((cells[:, 0] + off[0]) * dims[1] + cells[:, 1] + off[1]) * dims[2] + (
            cells[:, 2] + off[2]
        )
        lo = np.searchsorted(sorted_key, nk, side="left")
        hi = np.searchsorted(sorted_key, nk, side="right")
        counts = hi - lo
        total = int(counts.sum())
        if total == 0:
            continue
        i = np.repeat(np.arange(n, dtype=np.intp), counts)
        first = np.repeat(lo - (np.cumsum(counts) - counts), counts)
        yield i, np.asarray(order[first + np.arange(total)], dtype=np.intp)


def link_pairs(r: npt.ArrayLike, max_range_km: float, margin_km: float = 80.0) -> IntArray:
    """All links that are up, as index pairs (M, 2) with i < j, sorted.

    Satellites are hashed into cubes of side ``max_range_km``; only pairs in neighbouring
    cubes are tested, so work is O(N + candidate pairs) rather than O(N^2) whenever the
    range is small compared with the constellation's extent.
    """
    pos = _check_positions(r)
    if not max_range_km > 0:
        raise ConfigError(f"max_range_km: must be > 0, got {max_range_km!r}")
    n = pos.shape[0]
    if n < 2:
        return np.empty((0, 2), dtype=np.intp)
    found: list[IntArray] = []
    for ci, cj in grid_pairs(pos, max_range_km):
        keep = ci < cj
        i, j = ci[keep], cj[keep]
        a, b = pos[i], pos[j]
        diff = b - a
        ok = np.sum(diff * diff, axis=-1) <= max_range_km * max_range_km
        up = line_of_sight(a[ok], b[ok], margin_km)
        found.append(np.stack((i[ok][up], j[ok][up]), axis=-1))
    if not found:
        return np.empty((0, 2), dtype=np.intp)
    pairs = np.concatenate(found)
    idx = np.lexsort((pairs[:, 1], pairs[:, 0]))
    return np.asarray(pairs[idx], dtype=np.intp)


def nearest_links(
    r: npt.ArrayLike, k: int, max_range_km: float, margin_km: float = 80.0
) -> IntArray:
    """Each satellite's ``k`` nearest neighbours with a link up, (N, k), -1 where fewer.

    Row blocks keep memory at O(block x N); time is O(N^2) (10,000 satellites: ~5 s on 2 cores).
    """
    pos = _check_positions(r)
    n = pos.shape[0]
    if k < 1:
        raise ConfigError(f"k: must be >= 1, got {k!r}")
    out = np.full((n, k), -1, dtype=np.intp)
    if n < 2:
        return out
    step = _block_rows(n)
    # Candidates: a few more than k nearest, so links blocked by the Earth can be skipped.
    m = min(n - 1, 4 * k)
    for i0 in range(0, n, step):
        blk = pos[i0 : i0 + step]
        rows = np.arange(blk.shape[0])
        d2 = np.sum((blk[:, None, :] - pos[None, :, :]) ** 2, axis=-1)
        d2[rows, rows + i0] = np.inf
        cand = np.argpartition(d2, m - 1, axis=1)[:, :m] if m < n else np.argsort(d2, axis=1)
        cd2 = np.take_along_axis(d2, cand, axis=1)
        srt = np.argsort(cd2, axis=1)
        cand, cd2 = np.take_along_axis(cand, srt, axis=1), np.take_along_axis(cd2, srt, axis=1)
        ok = cd2 <= max_range_km * max_range_km
        ok &= line_of_sight(blk[:, None, :], pos[cand], margin_km)
        # First k True per row, keeping distance order.
        rank = np.cumsum(ok, axis=1) - 1
        sel = ok & (rank < k)
        rr, cc = np.nonzero(sel)
        out[i0 + rr, rank[rr, cc]] = cand[rr, cc]
    return out


def latency_s(range_km: npt.ArrayLike, processing_s: float = 0.0) -> FloatArray:
    """One-way link latency: range / c + processing time, s."""
    return np.asarray(np.asarray(range_km, dtype=np.float64) / C_KM_S + processing_s)
