"""The ground's part in a pipeline job: the checks at submission and the group it uplinks.

A pipeline job runs stage ``k`` of its plan on the ``k``-th of as many distinct nodes, and
stage ``k``'s outputs cross an inter-satellite link to stage ``k + 1``: the group is a chain
over the ISL graph. At each uplink (the first, and every re-run after a lapsed lease) the
ground chooses it afresh among the nodes it may place work on (online, a heartbeat within
the lease), so a member that went silent is left out; stage 0's node must also be in
contact. Two nodes are linked as the nodes' own migration rounds and the simulator's link
model judge it, from the positions and terminals in their last heartbeats: both have a
terminal (rate and range above 0), they are within the shorter of the two ranges, and the
Earth does not block the line between them. Among the chains, each stage in turn prefers a
node holding (or being sent) its stage model, then one holding no later stage's model (kept
for that stage), then the least backlog: a depth-first search in that order, so the first
chain found is the preferred one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flightsw.physics.isl import line_of_sight_pair
from groundstation.exceptions import RequestError

__all__ = ["Candidate", "check_stages", "choose_group"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A node the ground may place a stage on, as the choice sees it."""

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
    """An inter-satellite link between ``a`` and ``b`` now (see the module doc)."""
    if a.position_km is None or b.position_km is None:
        return False
    if min(a.isl_rate_bps, b.isl_rate_bps) <= 0 or min(a.isl_max_range_km,
                                                        b.isl_max_range_km) <= 0:
        return False
    if math.dist(a.position_km, b.position_km) > min(a.isl_max_range_km, b.isl_max_range_km):
        return False
    return line_of_sight_pair(a.position_km, b.position_km)


def check_stages(model: str, stages: Sequence[str], node: str | None,
                 stored: Callable[[str], bool]) -> None:
    """A pipeline submission the ground can run: ``model`` is the first stage, every stage
    model is uploaded, and no node is pinned; :class:`RequestError` naming the field."""
    if model != stages[0]:
        raise RequestError(f"job.model: {model} is not the first stage {stages[0]}",
                           field="job.model")
    for k, stage in enumerate(stages):
        if not stored(stage):
            raise RequestError(
                f"job.stages.{k}: {stage} is not uploaded to the ground station",
                field=f"job.stages.{k}",
            )
    if node is not None:
        raise RequestError("node: a pipeline job runs on a group the ground chooses; "
                           "it cannot be pinned to one node", field="node")


def choose_group(stages: Sequence[str], candidates: Sequence[Candidate]) -> list[str] | None:
    """The node of each stage, a chain over the ISL graph (see the module doc); None if
    there is no such chain now (too few nodes, none in contact for stage 0, or no links)."""
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
            pool = [c for c in candidates if c.node not in used and linked(chain[-1], c)]
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
