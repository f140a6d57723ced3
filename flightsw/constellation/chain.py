"""The chain a pipeline job runs on: K distinct nodes, each linked to the next.

A pipeline job runs stage ``k`` of its plan on the ``k``-th of as many distinct nodes, and
stage ``k``'s outputs cross an inter-satellite link to stage ``k + 1``: the group is a chain
over the ISL graph. Stage 0's node must be in contact (with the ground, for a job the ground
uplinks; the simulator marks the node holding captured inputs instead). By default two
nodes are linked as the nodes' own migration rounds and the simulator's link model judge
it, from positions and terminals: both have a terminal (rate and range above 0), they are
within the shorter of the two ranges, and the Earth does not block the line between them;
a caller with its own link graph (the simulator's neighbour lists) passes its own test.
Among the chains, each stage in turn prefers a node holding (or being sent) its stage
model, then one holding no later stage's model (kept for that stage), then the least
backlog, then the name: a depth-first search in that order, so the first chain found is
the preferred one.

The simulator (:mod:`flightsw.sim.pipeline`) chooses with :func:`choose_group`. This is the
ground station's rule as it stood when it moved here; the ground has since grown its own
copy (``groundstation/pipeline.py``: links predicted to break over the job, members without
thermal or energy headroom, hop seconds), which imports the ground's exceptions and so
cannot be used from flightsw. The two should become one function here again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flightsw.physics.isl import line_of_sight_pair

__all__ = ["MAX_STEPS", "Candidate", "choose_group", "linked"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A node a stage may be placed on, as the choice sees it."""

    node: str
    backlog_s: float
    models: frozenset[str]  # held or being sent
    in_contact: bool
    position_km: tuple[float, float, float] | None = None  # from its last heartbeat
    isl_rate_bps: float = 0.0  # 0: no terminal
    isl_max_range_km: float = 0.0


#: partial chains the search may extend before it gives up (a fleet of a thousand nodes
#: with no chain must not stall the ground's uplink round)
MAX_STEPS = 20_000


def linked(a: Candidate, b: Candidate) -> bool:
    """An inter-satellite link between ``a`` and ``b`` now, from their positions and
    terminals (see the module doc)."""
    if a.position_km is None or b.position_km is None:
        return False
    if min(a.isl_rate_bps, b.isl_rate_bps) <= 0 or min(a.isl_max_range_km,
                                                        b.isl_max_range_km) <= 0:
        return False
    if math.dist(a.position_km, b.position_km) > min(a.isl_max_range_km, b.isl_max_range_km):
        return False
    return line_of_sight_pair(a.position_km, b.position_km)


def choose_group(
    stages: Sequence[str],
    candidates: Sequence[Candidate],
    link: Callable[[Candidate, Candidate], bool] = linked,
) -> list[str] | None:
    """The node of each stage, a chain over the ISL graph (see the module doc); None if
    there is no such chain now (too few nodes, none in contact for stage 0, or no links).
    ``link(a, b)``: ``a``'s stage output can cross to ``b`` now."""
    k_all = len(stages)
    if len(candidates) < k_all:
        return None

    def order(k: int, pool: Sequence[Candidate]) -> list[Candidate]:
        later = set(stages[k + 1:])  # a holder of a later stage's model is kept for it
        return sorted(pool, key=lambda c: (stages[k] not in c.models,
                                           bool(later & c.models), c.backlog_s, c.node))

    chain: list[Candidate] = []
    used: set[str] = set()
    steps = 0

    def extend() -> bool:
        nonlocal steps
        k = len(chain)
        if k == k_all:
            return True
        if k == 0:
            pool = [c for c in candidates if c.in_contact]
        else:
            pool = [c for c in candidates if c.node not in used and link(chain[-1], c)]
        for c in order(k, pool):
            steps += 1
            if steps > MAX_STEPS:
                return False
            chain.append(c)
            used.add(c.node)
            if extend():
                return True
            chain.pop()
            used.discard(c.node)
        return False

    return [c.node for c in chain] if extend() else None
