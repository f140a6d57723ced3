"""The ground's part in a pipeline job: the checks at submission and the group it uplinks.

A pipeline job runs stage ``k`` of its plan on the ``k``-th of as many distinct nodes, and
stage ``k``'s outputs cross an inter-satellite link to stage ``k + 1``: the group is a chain
over the ISL graph. At each uplink (the first, every re-run after a lapsed lease, and the
re-plan of the stages left when a member gave the job back) the ground chooses it afresh
among the nodes it may place work on (online, a heartbeat within the lease), so a member
that went silent is left out; the first stage's node must also be in contact. Two nodes
are linked as the nodes' own migration rounds and the simulator's link model judge it,
from the positions and terminals in their last heartbeats: both have a terminal (rate and
range above 0), they are within the shorter of the two ranges, and the Earth does not
block the line between them. A node in safe mode or throttled (above its throttle
temperature) is no member: the member before it would give the job back (the same rule,
``flightsw.node.pipeline.unusable``).

Among the chains the choice weighs, in this order (a tuple compared element by element,
the first chain found winning a tie):

1. links predicted to break before the job ends: each pair is judged again at the sample
   times of the job's expected duration from the orbits (``Candidate.track_km``);
2. members without headroom: within ``HOT_MARGIN_K`` of the throttle temperature, below
   ``LOW_SOC`` state of charge, or no energy margin over the next eclipse;
3. stage models the members do not hold yet (each must be uplinked first);
4. seconds: the members' backlogs plus each link's hop time for this job's activation
   bytes (serialisation at the slower terminal's rate and light time over the range).

The search is depth first, each stage trying first a node holding (or being sent) its
stage model, then one holding no later stage's model, then the least backlog; a partial
chain already no better than the best found is dropped, and the search stops after
``MAX_STEPS`` extensions with the best chain found (deterministic: no randomness, ties to
the order above and node names).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from flightsw.physics.isl import line_of_sight_pair
from groundstation.exceptions import RequestError

__all__ = ["Candidate", "check_stages", "choose_group", "hop_s", "lasts", "linked",
           "strained"]

Km3 = tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A node the ground may place a stage on, as the choice sees it."""

    node: str
    backlog_s: float
    models: frozenset[str]  # held or being sent
    in_contact: bool
    position_km: Km3 | None = None  # from its last heartbeat
    isl_rate_bps: float = 0.0  # 0: no terminal
    isl_max_range_km: float = 0.0
    # headroom, from its last heartbeat (the defaults: plenty)
    soc: float = 1.0
    margin_wh: float = math.inf
    temperature_c: float = 0.0
    throttle_c: float = math.inf
    safe_mode: bool = False
    # positions at the sample times of the job's expected duration (from its orbit; empty:
    # not known, its links are taken to last)
    track_km: tuple[Km3, ...] = ()


#: partial chains the search may extend before it gives up (a fleet of a thousand nodes
#: with no chain must not stall the ground's uplink round)
MAX_STEPS = 20_000
#: a member this close to its throttle temperature has no thermal headroom
HOT_MARGIN_K = 5.0
#: a member below this state of charge has no energy headroom
LOW_SOC = 0.3

_C_KM_S = 299_792.458


def _pair(a: Km3, b: Km3, a_c: Candidate, b_c: Candidate) -> bool:
    if math.dist(a, b) > min(a_c.isl_max_range_km, b_c.isl_max_range_km):
        return False
    return line_of_sight_pair(a, b)


def linked(a: Candidate, b: Candidate) -> bool:
    """An inter-satellite link between ``a`` and ``b`` now (see the module doc)."""
    if a.position_km is None or b.position_km is None:
        return False
    if min(a.isl_rate_bps, b.isl_rate_bps) <= 0 or min(a.isl_max_range_km,
                                                        b.isl_max_range_km) <= 0:
        return False
    return _pair(a.position_km, b.position_km, a, b)


def lasts(a: Candidate, b: Candidate) -> bool:
    """The link ``a``-``b`` stays up at every sample time both tracks have (True when
    either track is unknown)."""
    return all(_pair(p, q, a, b) for p, q in zip(a.track_km, b.track_km, strict=False))


def strained(c: Candidate) -> bool:
    """No thermal or energy headroom (see the module doc)."""
    return (c.temperature_c >= c.throttle_c - HOT_MARGIN_K or c.soc < LOW_SOC
            or c.margin_wh <= 0)


def usable(c: Candidate) -> bool:
    """Not in safe mode and not throttled: a member may be handed a stage."""
    return not c.safe_mode and c.temperature_c <= c.throttle_c


def hop_s(a: Candidate, b: Candidate, size: int) -> float:
    """Modelled seconds to ship ``size`` bytes from ``a`` to ``b``: serialisation at the
    slower terminal's rate plus light time over the range of their last heartbeats."""
    rate = min(a.isl_rate_bps, b.isl_rate_bps)
    send = 8.0 * size / rate if rate > 0 else math.inf
    light = (math.dist(a.position_km, b.position_km) / _C_KM_S
             if a.position_km is not None and b.position_km is not None else 0.0)
    return send + light


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


Score = tuple[int, int, int, float]


def choose_group(stages: Sequence[str], candidates: Sequence[Candidate],
                 boundary_bytes: Sequence[int] = ()) -> list[str] | None:
    """The node of each stage, the best chain over the ISL graph (see the module doc);
    None if there is no such chain now (too few usable nodes, none in contact for the
    first stage, or no links). ``boundary_bytes[k]`` is what stage ``k`` ships to stage
    ``k + 1`` for this job (missing: 0, the links weighed by light time only)."""
    k_all = len(stages)
    pool_all = [c for c in candidates if usable(c)]
    if len(pool_all) < k_all:
        return None

    def order(k: int, pool: Sequence[Candidate]) -> list[Candidate]:
        later = set(stages[k + 1:])  # a holder of a later stage's model is kept for it
        return sorted(pool, key=lambda c: (stages[k] not in c.models,
                                           bool(later & c.models), c.backlog_s, c.node))

    neighbours: dict[str, list[Candidate]] = {}
    # positions and ranges as arrays: the range test screens a node's possible neighbours
    # in one step (a thousand nodes), ``linked`` decides on the few left
    located = [c for c in pool_all if c.position_km is not None and c.isl_rate_bps > 0]
    where = np.array([c.position_km for c in located], dtype=np.float64).reshape(-1, 3)
    reach = np.array([c.isl_max_range_km for c in located], dtype=np.float64)

    def linked_to(a: Candidate) -> list[Candidate]:
        got = neighbours.get(a.node)
        if got is None:
            got = []
            if a.position_km is not None and len(located):
                d = np.linalg.norm(where - np.asarray(a.position_km), axis=1)
                near = np.flatnonzero(d <= np.minimum(reach, a.isl_max_range_km) * 1.000001)
                got = [located[i] for i in near
                       if located[i].node != a.node and linked(a, located[i])]
            neighbours[a.node] = got
        return got

    def step(k: int, prev: Candidate | None, c: Candidate) -> Score:
        """What adding ``c`` as stage ``k``'s node (after ``prev``) adds to the score."""
        breaks = 0
        hop = 0.0
        if prev is not None:
            breaks = 0 if lasts(prev, c) else 1
            size = boundary_bytes[k - 1] if k - 1 < len(boundary_bytes) else 0
            hop = hop_s(prev, c, size)
        return (breaks, int(strained(c)), int(stages[k] not in c.models), c.backlog_s + hop)

    chain: list[Candidate] = []
    used: set[str] = set()
    best: list[Candidate] | None = None
    best_score: Score | None = None
    steps = 0

    def search(score: Score) -> None:
        nonlocal steps, best, best_score
        k = len(chain)
        if k == k_all:
            if best_score is None or score < best_score:
                best, best_score = list(chain), score
            return
        if k == 0:
            pool = [c for c in pool_all if c.in_contact]
        else:
            pool = [c for c in linked_to(chain[-1]) if c.node not in used]
        for c in order(k, pool):
            if steps >= MAX_STEPS:
                return
            steps += 1
            add = step(k, chain[-1] if chain else None, c)
            new = (score[0] + add[0], score[1] + add[1], score[2] + add[2], score[3] + add[3])
            if best_score is not None and new >= best_score:
                continue  # no better than the best found (every part only grows)
            chain.append(c)
            used.add(c.node)
            search(new)
            chain.pop()
            used.discard(c.node)

    search((0, 0, 0, 0.0))
    return None if best is None else [c.node for c in best]
