"""Simulated nodes as the chain rule sees them (:class:`~flightsw.constellation.chain.Candidate`).

Pipeline jobs (:mod:`flightsw.sim.pipeline`) and training jobs (:mod:`flightsw.sim.training`)
choose their members by the one chain rule. Both build the rule's candidates from the
simulator's state in the same way: backlog (queued, running, on its way by migration, plus
what the caller owes the node), models held, in contact (a head), position, terminal
rate and range, headroom (temperature against throttle, state of charge, energy margin
less what is booked, safe mode) and, over a span, positions at
:func:`~flightsw.constellation.chain.track_times`.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence
from typing import TYPE_CHECKING

import numpy as np

from flightsw.constellation.chain import Candidate, Km3, track_times

if TYPE_CHECKING:
    from flightsw.sim.engine import Simulation

__all__ = ["candidates", "links_now"]


class _Everyone:
    def __contains__(self, item: object) -> bool:
        return True


def candidates(sim: Simulation, nodes: list[int], t: float, span_s: float | None = None,
               *, heads: Container[int] | None = None,
               owed_s: Sequence[float] | None = None) -> list[Candidate]:
    """``nodes`` as the chain rule sees them at ``t``: a head if in ``heads`` (every node
    without it), with ``owed_s[i]`` seconds added to node ``i``'s backlog, and, with a
    ``span_s``, their positions at :func:`track_times` over it (none without)."""
    if not nodes:
        return []
    idx = np.asarray(nodes, dtype=np.intp)
    tracks: list[tuple[Km3, ...]] = [() for _ in nodes]
    times = track_times(t, span_s) if span_s is not None else []
    if times:
        at = sim.w.orbits.positions_at(np.repeat(np.asarray(times), len(idx)),
                                       np.tile(idx, len(times)))
        rows = at.reshape(len(times), len(idx), 3).tolist()
        tracks = [tuple((r[k][0], r[k][1], r[k][2]) for r in rows) for k in range(len(nodes))]
    b = sim.budget
    topo = sim.topology
    pos = b.position[idx].tolist()
    soc = (b.battery_wh[idx] / b.capacity_wh[idx]).tolist()
    margin = (sim.margins[idx] - sim.load.pending_j[idx] / 3600.0).tolist()
    temp = sim.temp_c[idx].tolist()
    throttle = sim.throttle_c[idx].tolist()
    rate = topo.rate_bps[idx].tolist()
    reach = topo.range_km[idx].tolist()
    head = _Everyone() if heads is None else heads
    out = []
    for k, i in enumerate(nodes):
        node = sim.nodes[i]
        p = pos[k]
        owed = owed_s[i] if owed_s is not None else 0.0
        out.append(Candidate(
            node.name, node.backlog_s(t) + sim.incoming_s[i] + owed, node.models_frozen(),
            i in head, (p[0], p[1], p[2]), rate[k], reach[k], soc=soc[k],
            margin_wh=margin[k], temperature_c=temp[k], throttle_c=throttle[k],
            safe_mode=node.safe_mode, track_km=tracks[k]))
    return out


def links_now(sim: Simulation, t: float) -> Callable[[int], set[int]]:
    """Node ``i`` -> the nodes ``i`` has a link up to at ``t`` (a neighbour in the
    topology, alive, in range and in sight), each node's looked up once."""
    pos = sim.budget.position
    alive = sim.alive
    topo = sim.topology
    nbr = topo.neighbours(pos, t).tolist()
    adj: dict[int, set[int]] = {}

    def out(i: int) -> set[int]:
        got = adj.get(i)
        if got is None:
            got = adj[i] = {j for j in nbr[i]
                            if j >= 0 and topo.up(i, j, pos, t, alive) is not None}
        return got

    return out
