"""The chain a pipeline job runs on: K distinct nodes, each linked to the next.

One rule for the ground station (``groundstation/pipeline.py`` builds the candidates from
heartbeats and re-exports this module) and the simulator (:mod:`flightsw.sim.pipeline`
builds them from its own state).

A pipeline job runs stage ``k`` of its plan on the ``k``-th of as many distinct nodes, and
stage ``k``'s outputs cross an inter-satellite link to stage ``k + 1``: the group is a chain
over the ISL graph. The first stage's node must be in contact (with the ground, for a job
the ground uplinks; the simulator marks the node holding captured inputs instead). By
default two nodes are linked as the nodes' own migration rounds and the simulator's link
model judge it, from positions and terminals: both have a terminal (rate and range above
0), they are within the shorter of the two ranges, and the Earth does not block the line
between them; a caller with its own link graph (the simulator's neighbour lists, which
also count terminals and outages) passes its own test. A node in safe mode or throttled
(above its throttle temperature) is no member: the member before it would give the job
back (the same rule, ``flightsw.node.pipeline.unusable``).

Among the chains the choice weighs, in this order (a tuple compared element by element,
the first chain found winning a tie):

1. links predicted to break before the job ends: each pair is judged again at the sample
   times of the caller's horizon from the orbits (``Candidate.track_km``);
2. members without headroom: within ``HOT_MARGIN_K`` of the throttle temperature, below
   ``LOW_SOC`` state of charge, or no energy margin over the next eclipse;
3. stage models the members do not hold yet (each must be sent first);
4. seconds: the members' backlogs plus each link's hop time for this job's activation
   bytes (serialisation at the slower terminal's rate and light time over the range).
   A node's backlog is the caller's to give and should count the stages already planned
   on it that have not reached it yet: otherwise jobs planned close together all take the
   members that only look idle (the simulator's Walker shell at 10 Gbps: mean latency 220
   against 180 s, 161 against 59 re-plans, in a quarter-hour trial). The simulator's
   candidates and the ground station's both count them.

The search is depth first, each stage trying first a node whose link from the one before
is predicted to last, then one with headroom, then one holding (or being sent) its stage
model, then one holding no later stage's model, then the least backlog, then the fewest unused
nodes it links to; a partial chain already no better than the best found is dropped, and
so is one whose last member reaches (over links between unused nodes) fewer nodes than
stages are left. The search stops after ``MAX_STEPS`` extensions with the best chain found.
If that bound cut it short with none, a second pass of as many extensions tries first,
after a lasting link and headroom, the node with the fewest unused nodes to go on to, and
starts from the heads fewest nodes link to, each of the first ``HEAD_TRIES`` given an equal
share of the bound: when a chain needs nearly every node (81 stages on the 81-satellite
cluster, an 81-member ring in the Walker shell) the preference order alone strands a node
early and the bound runs out deep in the tree (or below one head from which there is
none), though a chain exists. Deterministic: no randomness, ties to the order above and
node names.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from flightsw.physics.isl import line_of_sight_pair

__all__ = ["HOT_MARGIN_K", "LOW_SOC", "MAX_STEPS", "TRACK_SAMPLES", "Candidate", "Km3",
           "choose_group", "hop_s", "lasts", "linked", "strained", "track_times", "usable"]

Km3 = tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A node a stage may be placed on, as the choice sees it."""

    node: str
    backlog_s: float  # queued, running and on its way, stages planned here included
    models: frozenset[str]  # held or being sent
    in_contact: bool
    position_km: Km3 | None = None  # now (the ground: its last heartbeat)
    isl_rate_bps: float = 0.0  # 0: no terminal
    isl_max_range_km: float = 0.0
    # headroom now (the ground: from its last heartbeat; the defaults: plenty)
    soc: float = 1.0
    margin_wh: float = math.inf
    temperature_c: float = 0.0
    throttle_c: float = math.inf
    safe_mode: bool = False
    # positions at the sample times of the job's horizon (``track_times``, from its orbit;
    # empty: not known, its links are taken to last)
    track_km: tuple[Km3, ...] = ()


#: partial chains the search may extend before it gives up (a fleet of a thousand nodes
#: with no chain must not stall the ground's uplink round)
MAX_STEPS = 20_000
#: heads the second pass shares the step bound among (see the module doc)
HEAD_TRIES = 8
#: a member this close to its throttle temperature has no thermal headroom
HOT_MARGIN_K = 5.0
#: a member below this state of charge has no energy headroom
LOW_SOC = 0.3
#: times over a job's horizon its links are judged at
TRACK_SAMPLES = 4

_C_KM_S = 299_792.458


def _pair(a: Km3, b: Km3, a_c: Candidate, b_c: Candidate) -> bool:
    if math.dist(a, b) > min(a_c.isl_max_range_km, b_c.isl_max_range_km):
        return False
    return line_of_sight_pair(a, b)


def track_times(now: float, horizon_s: float) -> list[float]:
    """The ``TRACK_SAMPLES`` times at which a job's links are judged: evenly over
    ``horizon_s`` after ``now``, the last at its end (none for a horizon of 0 or less)."""
    if not horizon_s > 0:
        return []
    return [now + horizon_s * (i + 1) / TRACK_SAMPLES for i in range(TRACK_SAMPLES)]


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


Score = tuple[int, int, int, float]


def choose_group(stages: Sequence[str], candidates: Sequence[Candidate],
                 boundary_bytes: Sequence[int] = (),
                 link: Callable[[Candidate, Candidate], bool] | None = None
                 ) -> list[str] | None:
    """The node of each stage, the best chain over the ISL graph (see the module doc);
    None if there is no such chain now (too few usable nodes, none in contact for the
    first stage, or no links). ``boundary_bytes[k]`` is what stage ``k`` ships to stage
    ``k + 1`` for this job (missing: 0, the links weighed by light time only). ``link(a,
    b)``: ``a``'s stage output can cross to ``b`` now (None: :func:`linked`, from positions
    and terminals)."""
    k_all = len(stages)
    pool_all = [c for c in candidates if usable(c)]
    if len(pool_all) < k_all:
        return None

    lasting: dict[tuple[str, str], bool] = {}

    def lasts_memo(a: Candidate, b: Candidate) -> bool:
        got = lasting.get((a.node, b.node))
        if got is None:
            got = lasting[(a.node, b.node)] = lasts(a, b)
        return got

    def order(k: int, prev: Candidate | None, pool: Sequence[Candidate]) -> list[Candidate]:
        """The search order of stage ``k``'s nodes after ``prev``: the score's first two
        parts first (a link that lasts, headroom), so that a good chain is found within the
        step bound, then the preference of the module doc, ties to the node with the fewest
        unused nodes to go on to; in the second pass (``fit``) that count comes right after
        the first two parts."""
        later = set(stages[k + 1:])  # a holder of a later stage's model is kept for it

        def onward(c: Candidate) -> int:
            return 0 if k + 1 == k_all else sum(1 for d in linked_to(c)
                                                 if d.node not in used)

        def key(c: Candidate) -> tuple[bool, bool, int, bool, bool, float, int, str]:
            ahead = onward(c)
            return (prev is not None and not lasts_memo(prev, c), strained(c),
                    ahead if fit else 0, stages[k] not in c.models, bool(later & c.models),
                    c.backlog_s, ahead, c.node)

        return sorted(pool, key=key)

    neighbours: dict[str, list[Candidate]] = {}
    # positions and ranges as arrays: the range test screens a node's possible neighbours
    # in one step (a thousand nodes), ``linked`` decides on the few left
    located = [c for c in pool_all if c.position_km is not None and c.isl_rate_bps > 0]
    where = np.array([c.position_km for c in located], dtype=np.float64).reshape(-1, 3)
    reach = np.array([c.isl_max_range_km for c in located], dtype=np.float64)

    def linked_to(a: Candidate) -> list[Candidate]:
        got = neighbours.get(a.node)
        if got is None and link is not None:  # the caller's graph: few nodes, test each
            got = neighbours[a.node] = [c for c in pool_all
                                        if c.node != a.node and link(a, c)]
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
            breaks = 0 if lasts_memo(prev, c) else 1
            size = boundary_bytes[k - 1] if k - 1 < len(boundary_bytes) else 0
            hop = hop_s(prev, c, size)
        return (breaks, int(strained(c)), int(stages[k] not in c.models), c.backlog_s + hop)

    chain: list[Candidate] = []
    used: set[str] = set()
    best: list[Candidate] | None = None
    best_score: Score | None = None
    steps = 0
    cap = MAX_STEPS  # extensions allowed to the subtree searched now
    fit = False  # the second pass: the nodes that keep a chain possible first

    def reaches(c: Candidate, need: int) -> bool:
        """At least ``need`` unused nodes are reachable from ``c`` over links between
        unused nodes: otherwise no chain of this prefix can be completed."""
        if need <= 0:
            return True
        seen = {c.node}
        todo = [c]
        while todo:
            for d in linked_to(todo.pop()):
                if d.node not in used and d.node not in seen:
                    if len(seen) >= need:
                        return True
                    seen.add(d.node)
                    todo.append(d)
        return len(seen) - 1 >= need

    def search(score: Score) -> None:
        nonlocal steps, cap, best, best_score
        k = len(chain)
        if k == k_all:
            if best_score is None or score < best_score:
                best, best_score = list(chain), score
            return
        if k == 0:
            pool = [c for c in pool_all if c.in_contact]
        else:
            pool = [c for c in linked_to(chain[-1]) if c.node not in used]
        heads = order(k, chain[-1] if chain else None, pool)
        share = MAX_STEPS
        if fit and k == 0:  # the heads fewest nodes link to first, each a share of the bound
            into = Counter(d.node for c in pool_all for d in linked_to(c))
            heads.sort(key=lambda c: (strained(c), into[c.node]))  # stable: order's ties
            share = MAX_STEPS // min(len(heads), HEAD_TRIES) if heads else MAX_STEPS
        for c in heads:
            if steps >= MAX_STEPS:
                return
            if k == 0:
                cap = min(MAX_STEPS, steps + share)
            elif steps >= cap:
                return
            steps += 1
            add = step(k, chain[-1] if chain else None, c)
            new = (score[0] + add[0], score[1] + add[1], score[2] + add[2], score[3] + add[3])
            if best_score is not None and new >= best_score:
                continue  # no better than the best found (every part only grows)
            chain.append(c)
            used.add(c.node)
            if reaches(c, k_all - k - 1):
                search(new)
            chain.pop()
            used.discard(c.node)

    search((0, 0, 0, 0.0))
    if best is None and steps >= MAX_STEPS:  # cut short with no chain: look for one first
        fit, steps = True, 0
        search((0, 0, 0, 0.0))
    return None if best is None else [c.node for c in best]
