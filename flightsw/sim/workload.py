"""Job arrivals: piecewise-constant Poisson processes per class (and per node), with bursts.

Rates are constant between burst boundaries, so arrivals are drawn exactly segment by
segment: the count in a segment is Poisson(rate x multiplier x length) and the times are
uniform within it. Onboard classes arrive at each node independently (a node-scoped burst
raises only its nodes); ground classes arrive at the ground. Everything is drawn up front
from the run's seeded generator and kept as arrays, so a run with the same seed sees the
same arrivals whatever the policy.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from flightsw.sim.world import ClassSpec, World

__all__ = ["Arrivals", "generate_arrivals"]


@dataclass(frozen=True)
class Arrivals:
    """All arrivals of a run, sorted by time (ties by class, then node)."""

    t: npt.NDArray[np.float64]
    cls: npt.NDArray[np.int64]
    node: npt.NDArray[np.int64]  # -1 for ground arrivals
    items: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.t)


def _multipliers(world: World, c: ClassSpec, a: float, b: float) -> npt.NDArray[np.float64]:
    """Rate multiplier of each node (or the ground, one value) over [a, b)."""
    n = world.n if c.origin == "onboard" else 1
    m = np.ones(n)
    for burst in world.bursts:
        if burst.classes and c.index not in burst.classes:
            continue
        if burst.start >= b or burst.end <= a:
            continue
        if burst.nodes and c.origin == "onboard":
            idx = np.fromiter(sorted(burst.nodes), dtype=np.int64)
            m[idx] *= burst.multiplier
        else:
            m *= burst.multiplier
    return m


def generate_arrivals(world: World, rng: np.random.Generator) -> Arrivals:
    """Draw every arrival over the mission (see the module docstring)."""
    ts: list[npt.NDArray[np.float64]] = []
    cs: list[npt.NDArray[np.int64]] = []
    ns: list[npt.NDArray[np.int64]] = []
    its: list[npt.NDArray[np.int64]] = []
    edges = {world.t0, world.t_end}
    for burst in world.bursts:
        edges.update(x for x in (burst.start, burst.end) if world.t0 < x < world.t_end)
    cuts = sorted(edges)
    for c in world.classes:
        if c.times is not None:  # an explicit trace
            times = np.asarray(c.times, dtype=np.float64)
            keep = (times >= world.t0) & (times < world.t_end)
            k = int(keep.sum())
            ts.append(times[keep])
            if c.origin == "onboard":
                nodes = np.asarray(c.nodes * len(times) if len(c.nodes) == 1 else c.nodes,
                                   dtype=np.int64)
                ns.append(nodes[keep])
            else:
                ns.append(np.full(k, -1, dtype=np.int64))
            cs.append(np.full(k, c.index, dtype=np.int64))
            its.append(rng.integers(c.items[0], c.items[1] + 1, size=k, dtype=np.int64))
            continue
        if c.origin == "onboard":
            per_node = c.total_rate_per_hour(world.n) / world.n
        else:
            per_node = c.total_rate_per_hour(world.n)
        for a, b in itertools.pairwise(cuts):
            lam = per_node * _multipliers(world, c, a, b) * (b - a) / 3600.0
            counts = rng.poisson(lam)
            total = int(counts.sum())
            if total == 0:
                continue
            ts.append(rng.uniform(a, b, size=total))
            if c.origin == "onboard":
                ns.append(np.repeat(np.arange(len(counts), dtype=np.int64), counts))
            else:
                ns.append(np.full(total, -1, dtype=np.int64))
            cs.append(np.full(total, c.index, dtype=np.int64))
            its.append(rng.integers(c.items[0], c.items[1] + 1, size=total, dtype=np.int64))
    if not ts:
        empty_i = np.empty(0, dtype=np.int64)
        return Arrivals(np.empty(0), empty_i, empty_i.copy(), empty_i.copy())
    t = np.concatenate(ts)
    cls = np.concatenate(cs)
    node = np.concatenate(ns)
    items = np.concatenate(its)
    order = np.lexsort((node, cls, t))
    return Arrivals(t[order], cls[order], node[order], items[order])
