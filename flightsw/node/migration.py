"""The node's part in constellation scheduling: peers' states, links, handovers.

Every ``state_period_s`` the node runs one migration round: the body is the core's
:func:`~flightsw.node.core.plan_moves` (the same as the simulator's); this module only
gathers the peers it has a link to now and carries each move out (the job leaves the queue
at once; the handover message follows after its modelled transfer time).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from flightsw.bus import Subscription
from flightsw.constellation import Candidate, Peer, transfer_time_s
from flightsw.exceptions import ProtocolError
from flightsw.node.jobs import Intake
from flightsw.node.rounds import plan_moves
from flightsw.node.scheduler import Queued
from flightsw.physics.isl import line_of_sight
from flightsw.protocol import Handover, JobSubmit, NodeState, parse, topics

if TYPE_CHECKING:
    from flightsw.node.service import Node

__all__ = ["Migration", "as_peer"]

log = logging.getLogger("flightsw.node")

_C_KM_S = 299_792.458


def as_peer(st: NodeState, rate: float, latency: float) -> Peer:
    """A published node state as a policy sees it over a link of ``rate`` and ``latency``."""
    return Peer(
        node=st.node,
        soc=st.soc,
        margin_wh=st.margin_wh,
        temperature_c=st.temperature_c,
        throttle_c=st.throttle_c,
        queued_work_s=st.queued_work_s,
        queue_depth=st.queue_depth,
        sunlit=st.sunlit,
        next_eclipse_s=st.next_eclipse_s,
        eclipse_s=st.eclipse_s,
        ops_per_s=st.effective_ops_per_s,
        watts=st.power_w,
        heat_capacity_j_per_k=st.heat_capacity_j_per_k,
        models=frozenset(st.models),
        safe_mode=st.safe_mode,
        link_rate_bps=rate,
        link_latency_s=latency,
        running_s=st.running_s,
        work_by_priority=tuple(st.work_by_priority),
    )


class Migration:
    """Peers heard on the bus and the node's migration rounds."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.peers: dict[str, NodeState] = {}
        self.rng = np.random.default_rng([node.config.seed, 2])

    async def listen(self, sub: Subscription) -> None:
        me = self.node.id
        async for msg in sub:
            name = topics.node_from_topic(msg.topic)
            if name is None or name == me:
                continue
            try:
                self.peers[name] = parse(NodeState, msg.payload)
            except ProtocolError as exc:
                log.debug("node %s: bad state from %s: %s", me, name, exc)

    def linked_peers(self, now: float) -> list[Peer]:
        """Peers heard recently with an inter-satellite link up (line of sight and range)."""
        node = self.node
        links = node.profile.links
        if links.isl_rate_bps <= 0:
            return []
        here = node.budget.position_of(0)
        fresh = 3 * node.config.state_period_s
        out = []
        for st in self.peers.values():
            if now - st.t > fresh or st.safe_mode:
                continue
            if st.isl_rate_bps <= 0 or st.isl_max_range_km <= 0:
                continue  # the peer has no terminal: no link, as the simulator's links say
            there = np.asarray(st.position_km, dtype=np.float64)
            rng_km = float(np.linalg.norm(there - here))
            max_km = min(links.isl_max_range_km, st.isl_max_range_km)
            if rng_km > max_km or not bool(line_of_sight(here, there)):
                continue
            rate = min(links.isl_rate_bps, st.isl_rate_bps)
            latency = rng_km / _C_KM_S + links.processing_latency_s
            out.append(as_peer(st, rate, latency))
        return out

    def candidate(self, q: Queued, ahead_s: float) -> Candidate:
        node = self.node
        intake = _intake(q)
        size = sum(int(a.nbytes) for a in intake.arrays.values())
        return Candidate(
            job_id=q.job_id,
            flops=node.core.spec.job_flops(q.work),
            input_bytes=size,
            model=intake.job.model,
            model_bytes=node.store.size(intake.job.model),
            deadline=q.deadline,
            value=q.value,
            priority=q.priority,
            migrations=intake.job.migrations,
            ahead_s=ahead_s,
        )

    async def rounds(self) -> None:
        node = self.node
        while True:
            await node.clock.sleep(node.config.state_period_s)
            # let every state published at this instant arrive first (on a virtual clock:
            # the round takes its turn after every other task due now)
            await node.clock.sleep(0.0)
            core = node.core
            if core.safe_mode or core.paused or len(core.sched) == 0:
                continue
            now = node.clock.now()
            peers = self.linked_peers(now)
            if not peers:
                continue
            here = as_peer(node.node_state(), 0.0, 0.0)
            # a pipeline stage stays where the ground placed it: the next member takes it
            # only from this one (flightsw.node.pipeline)
            staged = {q.job_id for q in core.sched if _intake(q).job.pipeline is not None}
            only = {q.job_id for q in core.sched} - staged if staged else None
            moves, _ = plan_moves(core, here, peers, node.policy, now, self.rng, self.candidate,
                                  only=only)
            for mv in moves:
                node.spawn(
                    self.hand_over(mv.q.job_id, mv.peer.node, transfer_time_s(mv.cand, mv.peer)),
                    f"handover:{mv.q.job_id}",
                )

    async def hand_over(self, job_id: str, dst: str, transfer_s: float = 0.0) -> bool:
        """Give a queued job to ``dst`` with epoch + 1; False if it is no longer queued."""
        node = self.node
        q = node.core.hand_over(job_id)
        if q is None:
            return False
        job: JobSubmit = _intake(q).job
        # a suspended job moves with the outputs of the items it has done (Progress)
        progress = node.take_progress(job_id, q.done, q.suspensions)
        moved = job.model_copy(update={"epoch": job.epoch + 1, "migrations": job.migrations + 1,
                                       "progress": progress})
        node.epochs[job_id] = moved.epoch
        await node.event(q, "handed_over", f"to {dst} ({transfer_s:.3f} s transfer)", target=dst)
        if transfer_s > 0:
            await node.clock.sleep(transfer_s)
        await node.send(
            topics.handover(node.id, dst),
            Handover(src=node.id, dst=dst, t=node.clock.now(), job=moved),
        )
        return True


def _intake(q: Queued) -> Intake:
    assert isinstance(q.payload, Intake)
    return q.payload

