"""The body of a migration round, the same for the emulated node and the simulator.

:func:`plan_moves` decides which queued jobs of a node to hand to which linked peer; the
drivers gather the peers (from published states, or from the simulator's arrays) and carry
the moves out.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterator, Sequence
from typing import Any, Generic, NamedTuple, TypeVar, overload

import numpy as np

from flightsw.constellation.policies import Candidate, Peer, Policy, run_time_s
from flightsw.node.core import NodeCore
from flightsw.node.scheduler import Queued

__all__ = ["LazyPeers", "Move", "PeerList", "plan_moves", "with_queue"]

L = TypeVar("L")


class LazyPeers(Sequence[Peer], Generic[L]):
    """Linked peers whose views are built on first access (a policy that decides without
    looking at its neighbours costs nothing for them); a round writes its updated views
    back in place."""

    __slots__ = ("_items", "_links", "_make")

    def __init__(self, links: Sequence[L], make: Callable[[L], Peer]) -> None:
        self._links = links
        self._make = make
        self._items: list[Peer | None] = [None] * len(links)

    def __len__(self) -> int:
        return len(self._links)

    @overload
    def __getitem__(self, k: int) -> Peer: ...

    @overload
    def __getitem__(self, k: slice) -> list[Peer]: ...

    def __getitem__(self, k: int | slice) -> Peer | list[Peer]:
        if isinstance(k, slice):
            return [self[j] for j in range(len(self))[k]]
        v = self._items[k]
        if v is None:
            v = self._items[k] = self._make(self._links[k])
        return v

    def __iter__(self) -> Iterator[Peer]:
        items, links, make = self._items, self._links, self._make
        for k in range(len(links)):
            v = items[k]
            if v is None:
                v = items[k] = make(links[k])
            yield v

    def __setitem__(self, k: int, v: Peer) -> None:
        self._items[k] = v


PeerList = list[Peer] | LazyPeers[Any]


class Move(NamedTuple):
    """One decision of a round: hand ``q`` to ``peer`` (as seen before the move)."""

    q: Queued
    cand: Candidate
    peer: Peer
    there: Peer  # the peer's view after the move (queue, models, work by priority)


def _add_work(work: tuple[float, ...], priority: int, seconds: float) -> tuple[float, ...]:
    if not work:
        return work
    out = list(work)
    out[priority] = max(0.0, out[priority] + seconds)
    return tuple(out)


def with_queue(v: Peer, queued_work_s: float, queue_depth: int, models: frozenset[str],
               work_by_priority: tuple[float, ...]) -> Peer:
    """``v`` with its queue figures replaced (positional construction: cheaper than
    ``_replace`` on a hot path)."""
    return Peer(v.node, v.soc, v.margin_wh, v.temperature_c, v.throttle_c, queued_work_s,
                queue_depth, v.sunlit, v.next_eclipse_s, v.eclipse_s, v.ops_per_s, v.watts,
                v.heat_capacity_j_per_k, models, v.safe_mode, v.link_rate_bps,
                v.link_latency_s, v.running_s, work_by_priority)


def plan_moves(
    core: NodeCore,
    here: Peer,
    peers: PeerList,
    policy: Policy,
    now: float,
    rng: np.random.Generator,
    candidate: Callable[[Queued, float], Candidate],
    *,
    only: Container[str] | None = None,
) -> tuple[list[Move], Peer]:
    """Decide which queued jobs of ``core`` to hand to which linked peer this round.

    Jobs are considered in run order, each seeing the work that stays ahead of it (the
    running job's rest and earlier jobs that stay). After each move, later decisions see
    it: here loses the job's work, the peer gains it (and its model). ``peers`` may build
    its views lazily (:class:`LazyPeers`): a round whose jobs all stay never looks at them.
    ``only``: consider just these jobs (the rest stay and count ahead). Returns the moves
    and the view of here after them.
    """
    moves: list[Move] = []
    if not len(core.sched):
        return moves, here
    should, choose = policy.should_consider, policy.choose
    limit = policy.rules.max_per_round
    fastest, bandwidth = core.spec.fastest, core.spec.bandwidth_bps
    ahead = core.running_s(now)
    keep = only
    for q in core.sched:
        if len(moves) >= limit:
            break
        if keep is not None and q.job_id not in keep:
            ahead += q.work.latency_s(fastest, bandwidth)
            continue
        cand = candidate(q, ahead)
        if not should(cand, here, now):
            ahead += q.work.latency_s(fastest, bandwidth)
            continue
        if not peers:
            break
        dst = choose(cand, here, peers, now, rng)
        k = -1 if dst is None else next((n for n, p in enumerate(peers) if p.node == dst), -1)
        if k < 0:
            ahead += q.work.latency_s(fastest, bandwidth)
            continue
        peer = peers[k]
        run_here, run_there = run_time_s(cand, here), run_time_s(cand, peer)
        here = with_queue(here, max(0.0, here.queued_work_s - run_here),
                           max(0, here.queue_depth - 1), here.models,
                           _add_work(here.work_by_priority, cand.priority, -run_here))
        there = peers[k] = with_queue(
            peer, peer.queued_work_s + run_there, peer.queue_depth + 1,
            peer.models | {cand.model},
            _add_work(peer.work_by_priority, cand.priority, run_there))
        moves.append(Move(q, cand, peer, there))
    return moves, here
