"""Inter-satellite links of the simulation: who can talk to whom, right now.

Each node points its ``terminals`` optical terminals at its nearest neighbours that are in
line of sight (past the Earth plus an 80 km atmosphere margin) and within range; the
neighbour lists are refreshed every ``refresh_s`` and every use re-checks the link at the
current positions: range (the shorter of the two ends' ``isl_max_range_km``), line of
sight, both ends alive, and no ISL outage fault covering it. Rate is the slower end's,
latency range / c + the sender's processing latency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from flightsw.physics.constants import C_KM_S
from flightsw.physics.isl import line_of_sight, nearest_links
from flightsw.sim.world import FaultSpec

__all__ = ["Link", "Topology"]

F = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]
I = npt.NDArray[np.intp]  # noqa: E741


@dataclass(frozen=True, slots=True)
class Link:
    peer: int
    range_km: float
    rate_bps: float
    latency_s: float


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
        self.checked = 0  # link checks made (for tests and profiling)

    def _refresh(self, pos: F, t: float) -> None:
        if not np.any(self.capable):
            self._t = t
            return
        reach = float(np.max(self.range_km))
        self._nbr = nearest_links(pos, self.terminals, reach)
        self._t = t

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
        if not bool(line_of_sight(pos[i], pos[j])):
            return None
        if self.outages and self._out(i, j, t):
            return None
        rate = float(min(self.rate_bps[i], self.rate_bps[j]))
        return Link(j, d, rate, d / C_KM_S + float(self.processing_s[i]))

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
