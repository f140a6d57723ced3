"""Inter-satellite links of the simulation: who can talk to whom, right now.

Each node points its ``terminals`` optical terminals at its nearest neighbours that are in
line of sight (past the Earth plus an 80 km atmosphere margin) and within range; the
neighbour lists are refreshed every ``refresh_s`` and every use re-checks the link at the
current positions: range (the shorter of the two ends' ``isl_max_range_km``), line of
sight, both ends alive, and no ISL outage fault covering it. Rate is the slower end's,
latency range / c + the sender's processing latency.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from flightsw.physics.constants import C_KM_S, R_EARTH
from flightsw.physics.isl import grid_pairs, line_of_sight, line_of_sight_pair, nearest_links
from flightsw.sim.world import FaultSpec

__all__ = ["Link", "Topology", "nearest_visible"]

F = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]
I = npt.NDArray[np.intp]  # noqa: E741


class Link(NamedTuple):
    """An ISL that is up: its far end, range, rate and latency (a named tuple: cheap to
    make in the migration round's inner loop)."""

    peer: int
    range_km: float
    rate_bps: float
    latency_s: float


_DENSE_MAX = 600  # up to this many nodes, an exact O(N^2) search is cheap enough


def nearest_visible(pos: F, k: int, reach_km: float) -> I:
    """Each row's ``k`` nearest neighbours in line of sight within ``reach_km``, (N, k), -1
    where fewer. Same result as :func:`flightsw.physics.isl.nearest_links`, in O(N) for a
    large shell: candidates come from a spatial hash with cells 1.6 x the mean spacing (the
    fastest measured); rows whose k-th neighbour lies beyond the searched radius are redone
    exactly.
    """
    n = len(pos)
    if n <= _DENSE_MAX:
        return nearest_links(pos, k, reach_km)
    r = float(np.mean(np.linalg.norm(pos, axis=1)))
    spacing = math.sqrt(4.0 * math.pi * r * r / n)
    cell = min(max(1.6 * spacing, 1e-3), reach_km)
    ii: list[I] = []
    jj: list[I] = []
    for i, j in grid_pairs(pos, cell):
        keep = i != j
        ii.append(i[keep])
        jj.append(j[keep])
    out: I = np.full((n, k), -1, dtype=np.intp)
    if ii:
        i = np.concatenate(ii)
        j = np.concatenate(jj)
        d = np.linalg.norm(pos[j] - pos[i], axis=1)
        ok = d <= reach_km
        i, j, d = i[ok], j[ok], d[ok]
        # a segment between points above r_min clears the Earth (+80 km) if it is shorter
        # than the chord 2 sqrt(r_min^2 - (R_E + 80)^2): only longer ones need the test
        r_min = float(np.min(np.linalg.norm(pos, axis=1)))
        clear = 2.0 * math.sqrt(max(r_min**2 - (R_EARTH + 80.0) ** 2, 0.0))
        far = d > clear
        if np.any(far):
            keep = np.ones(len(d), dtype=bool)
            keep[far] = line_of_sight(pos[i[far]], pos[j[far]])
            i, j, d = i[keep], j[keep], d[keep]
        srt = np.lexsort((j, d, i))
        i, j, d = i[srt], j[srt], d[srt]
        counts = np.bincount(i, minlength=n)
        rank = np.arange(len(i)) - np.repeat(np.cumsum(counts) - counts, counts)
        sel = rank < k
        out[i[sel], rank[sel]] = j[sel]
        # exact only within the searched radius (one cell): redo rows that need more
        kth = np.full(n, np.inf)
        full = counts >= k
        last = (np.cumsum(counts) - counts + k - 1)[full]
        kth[full] = d[last]
        redo = np.nonzero((kth > cell) & (cell < reach_km))[0]
    else:
        redo = np.arange(n)
    if len(redo):
        d2 = np.linalg.norm(pos[redo][:, None, :] - pos[None, :, :], axis=2)
        d2[np.arange(len(redo)), redo] = np.inf
        vis = (d2 <= reach_km) & line_of_sight(pos[redo][:, None, :], pos[None, :, :])
        d2 = np.where(vis, d2, np.inf)
        near = np.argsort(d2, axis=1, kind="stable")[:, :k]
        good = np.take_along_axis(d2, near, axis=1) < np.inf
        out[redo] = np.where(good, near, -1)
    return out


class Topology:
    """Nearest-neighbour ISL topology (see the module docstring)."""

    def __init__(
        self,
        range_km: F,
        rate_bps: F,
        processing_s: F,
        outages: list[FaultSpec],
        *,
        terminals: int = 4,
        refresh_s: float = 60.0,
    ) -> None:
        self.range_km = range_km
        self.rate_bps = rate_bps
        self.processing_s = processing_s
        self.capable = (range_km > 0) & (rate_bps > 0)
        self.terminals = max(1, terminals)
        self.refresh_s = refresh_s
        self.outages = [f for f in outages if f.kind == "isl_outage"]
        n = len(range_km)
        self._nbr: I = np.full((n, self.terminals), -1, dtype=np.intp)
        self._t = -np.inf
        self.reverse: list[list[int]] = [[] for _ in range(n)]  # who lists each node
        self.checked = 0  # link checks made (for tests and profiling)

    def _refresh(self, pos: F, t: float) -> None:
        if not np.any(self.capable):
            self._t = t
            return
        reach = float(np.max(self.range_km))
        self._nbr = nearest_visible(pos, self.terminals, reach)
        self._t = t
        rev: list[list[int]] = [[] for _ in range(len(pos))]
        for i, row in enumerate(self._nbr.tolist()):
            for j in row:
                if j >= 0:
                    rev[j].append(i)
        self.reverse = rev

    def neighbours(self, pos: F, t: float) -> I:
        """(N, k) neighbour indices (-1 where none), refreshed every ``refresh_s``."""
        if t - self._t >= self.refresh_s or t < self._t:
            self._refresh(pos, t)
        return self._nbr

    def _out(self, i: int, j: int, t: float) -> bool:
        for f in self.outages:
            if f.start <= t < (f.end if f.end is not None else np.inf) and (
                (f.peer is None and f.node in (i, j))
                or (f.peer is not None and {f.node, f.peer} == {i, j})
            ):
                return True
        return False

    def up(self, i: int, j: int, pos: F, t: float, alive: B) -> Link | None:
        """The link i -> j if it is up now, else ``None``."""
        self.checked += 1
        if i == j or not (alive[i] and alive[j] and self.capable[i] and self.capable[j]):
            return None
        d = float(np.linalg.norm(pos[j] - pos[i]))
        if d > min(self.range_km[i], self.range_km[j]):
            return None
        if not line_of_sight_pair(pos[i].tolist(), pos[j].tolist()):
            return None
        if self.outages and self._out(i, j, t):
            return None
        rate = float(min(self.rate_bps[i], self.rate_bps[j]))
        return Link(j, d, rate, d / C_KM_S + float(self.processing_s[i]))

    def links_for(self, rows: I, pos: F, t: float, alive: B) -> dict[int, list[Link]]:
        """The links that are up now of each node in ``rows`` (one vectorised check of
        their (len(rows), k) neighbour pairs), nearest first."""
        out: dict[int, list[Link]] = {int(i): [] for i in rows.tolist()}
        if len(rows) == 0:
            return out
        nbr = self.neighbours(pos, t)[rows]
        j = np.maximum(nbr, 0)
        ok = ((nbr >= 0) & alive[rows][:, None] & alive[j] & self.capable[rows][:, None]
              & self.capable[j])
        if not np.any(ok):
            return out
        d = np.linalg.norm(pos[j] - pos[rows][:, None, :], axis=2)
        ok &= d <= np.minimum(self.range_km[rows][:, None], self.range_km[j])
        rr, kk = np.nonzero(ok)
        ii = rows[rr]
        jj = j[rr, kk]
        self.checked += len(ii)
        los = line_of_sight(pos[ii], pos[jj])
        rate = np.minimum(self.rate_bps[ii], self.rate_bps[jj])
        dist = d[rr, kk]
        lat = dist / C_KM_S + self.processing_s[ii]
        for a, b, good, dd, ra, la in zip(ii.tolist(), jj.tolist(), los.tolist(),
                                          dist.tolist(), rate.tolist(), lat.tolist(),
                                          strict=True):
            if good and not (self.outages and self._out(a, b, t)):
                out[a].append(Link(b, dd, ra, la))
        return out

    def links_of(self, i: int, pos: F, t: float, alive: B) -> list[Link]:
        """Links of node ``i`` that are up now, nearest first."""
        if not self.capable[i] or not alive[i]:
            return []
        nbr = self.neighbours(pos, t)[i]
        cand = nbr[nbr >= 0]
        if len(cand) == 0:
            return []
        cand = cand[alive[cand] & self.capable[cand]]
        if len(cand) == 0:
            return []
        self.checked += len(cand)
        d = np.linalg.norm(pos[cand] - pos[i], axis=1)
        ok = (d <= np.minimum(self.range_km[i], self.range_km[cand])) & line_of_sight(
            pos[i], pos[cand]
        )
        out = []
        for j, dist, good in zip(cand.tolist(), d.tolist(), ok.tolist(), strict=True):
            if not good or (self.outages and self._out(i, j, t)):
                continue
            rate = float(min(self.rate_bps[i], self.rate_bps[j]))
            out.append(Link(j, dist, rate, dist / C_KM_S + float(self.processing_s[i])))
        return out
