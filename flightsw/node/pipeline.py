"""A node's part in a pipeline job: which copies of a stage it runs, and passing one on.

A pipeline job (``JobSubmit.pipeline``) runs stage by stage on the members the ground
chose. Stage 0 comes from the ground, on the node's job topic, with the original inputs
(their digest is the one the warrant signs). A later stage comes only as a handover from
the member of the stage before, on this node's handover inbox, whose topic the broker
binds to the sender; its inputs are that member's outputs, which no signature covers.
A node finishing a stage that is not the last hands the job to the next member, outputs
as inputs, epoch + 1 (the ground follows the holder as for a migration), after the
modelled time of the hop over the inter-satellite link (queued behind the hand-overs
before it on the same link, :class:`LinkQueue`), adding what its stage and hop took
to the pipeline's account (``Pipeline.spent_s``/``spent_j``, and stage 0's acceptance and
start); the last stage's node sends the result for the whole pipeline.

Before the hop the node checks the next member is still usable: its status as the broker
retains it is neither ``offline`` (its last will) nor ``safe`` (:func:`status_of`), and its
latest heartbeat (:func:`unusable`; a node whose policy is ``local`` listens to no peer, so
it follows the next member's heartbeats while it holds the stage, :func:`follow_next`)
came within three state periods (else offline), shows it neither in safe mode nor
throttled, and places it linked by the rule of the migration rounds
(``Migration.linked_peers``: both have a terminal, within the shorter range, the Earth not
in the way). A stage that ended before the member was heard, less than three state periods
after the node began following it, goes on without waiting for a heartbeat (the ground
placed the member from a fresh one); otherwise, with no fresh heartbeat at hand, the node
waits up to 1.5 state periods for one. If the member is not usable, the job is
not handed to it: the node gives it back to the ground
(:class:`~flightsw.protocol.messages.StageReturn` on its result topic, through the
downlink's contact windows; while it waits there the heartbeats keep listing the job, so
its lease does not lapse) as the next stage with the finished stage's outputs, and the
ground places the stages left on a new chain with epoch + 1, so no finished stage is run
again. Such a copy arrives from the ground at ``Pipeline.start`` > 0.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from flightsw.exceptions import FlightSwError, JobRejected, ProtocolError
from flightsw.protocol import Handover, JobSubmit, NodeState, Status, dump, parse, topics
from flightsw.protocol.messages import StageReturn, Tensor
from flightsw.protocol.warrant import inputs_sha256

if TYPE_CHECKING:
    from flightsw.bus import Subscription
    from flightsw.node.scheduler import Queued
    from flightsw.node.service import Node

__all__ = ["Following", "LinkQueue", "check_plan", "check_sender", "firsts", "follow_next",
           "give_back", "hop_s", "is_passed_on", "latest_state", "next_stage", "pass_on",
           "send_s", "spent", "unusable"]

#: a peer's heartbeat older than this many state periods counts as offline (as for the
#: migration rounds' linked peers)
FRESH_PERIODS = 3
#: without a fresh heartbeat of the next member at hand, wait this many state periods for one
WAIT_PERIODS = 1.5

#: host seconds to wait for the next member's retained status (it comes within a broker
#: round trip when there is one; the bound matters only when there is none)
STATUS_WAIT_S = 2.0

#: entries of :class:`Following` above which those older than ``STALE_PERIODS`` go
MAX_FOLLOWING = 4096
STALE_PERIODS = 100

log = logging.getLogger("flightsw.node")

_C_KM_S = 299_792.458


class Following:
    """One node's pipeline stages whose next member it follows (:func:`follow_next`): job
    id -> when it began, in mission seconds. An entry goes when its stage is passed on;
    one of a stage that never ended here (cancelled, failed) goes once there are more than
    ``MAX_FOLLOWING`` and it is ``STALE_PERIODS`` state periods old."""

    def __init__(self) -> None:
        self._since: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._since)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._since

    def begin(self, job_id: str, now: float, state_period_s: float) -> None:
        if len(self._since) > MAX_FOLLOWING:
            for key, t in list(self._since.items()):
                if now - t > STALE_PERIODS * state_period_s:
                    del self._since[key]
        self._since[job_id] = now

    def end(self, job_id: str) -> float | None:
        """When following for ``job_id`` began (None if it never did), forgetting it."""
        return self._since.pop(job_id, None)


def check_plan(job: JobSubmit) -> None:
    """A pipeline job's own consistency: its model is its stage's, and at stage 0 its
    inputs are those the plan (and so the warrant) names; :class:`JobRejected` naming the
    field otherwise."""
    p = job.pipeline
    if p is None:
        return
    if job.model != p.stages[p.stage]:
        raise JobRejected(f"model: {job.model} is not stage {p.stage}'s model "
                          f"{p.stages[p.stage]}", field="model")
    if p.stage == 0 and inputs_sha256(job.inputs) != p.inputs_sha256:
        raise JobRejected("inputs: their sha256 is not the pipeline's inputs_sha256",
                          field="inputs")


def check_sender(job: JobSubmit, me: str, src: str | None) -> None:
    """Where a pipeline job may come from: stage ``start`` (0, or the first stage left
    after a re-plan) from the ground (``src`` None), a later stage ``s`` handed over by
    member ``s - 1`` to member ``s`` == ``me``. A job that is not a
    pipeline passes. :class:`JobRejected` (field ``pipeline``) names what is wrong."""
    p = job.pipeline
    if p is None:
        return
    if not p.members:
        raise JobRejected("pipeline.members: empty (the ground names them at uplink)",
                          field="pipeline.members")
    if p.members[p.stage] != me:
        raise JobRejected(f"pipeline.members: stage {p.stage} is {p.members[p.stage]}'s, "
                          f"not {me}'s", field="pipeline.members")
    if src is None and p.stage != p.start:
        raise JobRejected(f"pipeline.stage: stage {p.stage} comes from member "
                          f"{p.members[p.stage - 1]}, not from the ground",
                          field="pipeline.stage")
    if src is not None and (p.stage == p.start or p.members[p.stage - 1] != src):
        want = "the ground" if p.stage == p.start else p.members[p.stage - 1]
        raise JobRejected(f"pipeline.stage: stage {p.stage} comes from {want}, not from "
                          f"{src}", field="pipeline.stage")


def is_passed_on(job: JobSubmit) -> bool:
    """The job is a pipeline stage with a stage after it."""
    p = job.pipeline
    return p is not None and p.stage + 1 < len(p.stages)


def next_stage(job: JobSubmit, outputs: dict[str, Tensor], spent_s: float = 0.0,
               spent_j: float = 0.0, accepted_at: float | None = None,
               started_at: float | None = None) -> JobSubmit:
    """The job as the next member receives it: the next stage's model on this stage's
    outputs, epoch + 1 (the warrant stays: it covers neither), with the modelled seconds and
    joules this stage (and its hop) took added to the pipeline's, and ``accepted_at`` and
    ``started_at`` (this stage's) kept as the pipeline's if it has none yet."""
    p = job.pipeline
    assert p is not None
    assert p.stage + 1 < len(p.stages)
    nxt = p.model_copy(update={"stage": p.stage + 1, "spent_s": p.spent_s + spent_s,
                               "spent_j": p.spent_j + spent_j,
                               "accepted_at": p.accepted_at if p.accepted_at is not None
                               else accepted_at,
                               "started_at": p.started_at if p.started_at is not None
                               else started_at})
    return job.model_copy(update={"epoch": job.epoch + 1, "model": p.stages[p.stage + 1],
                                  "inputs": dict(outputs), "pipeline": nxt})


def send_s(rate_bps: float, peer: NodeState | None, size: int) -> float:
    """Modelled seconds the terminal is busy putting ``size`` bytes on the link to
    ``peer``: serialisation at the slower end's ISL rate (this node's without the peer's
    state; 0 with no rate known)."""
    rate = rate_bps
    if peer is not None and peer.isl_rate_bps > 0:
        rate = min(rate, peer.isl_rate_bps) if rate > 0 else peer.isl_rate_bps
    send = 8.0 * size / rate if rate > 0 else 0.0
    return send if math.isfinite(send) else 0.0


def hop_s(here_km: npt.NDArray[np.float64], rate_bps: float, latency_s: float,
          peer: NodeState | None, size: int) -> float:
    """Modelled seconds to ship ``size`` bytes to ``peer``: serialisation
    (:func:`send_s`), light time over the straight range and the link's processing latency
    (the range as it stands now; line of sight is not required, a relay is not modelled).
    Without the peer's state: this node's rate and latency only."""
    light = 0.0
    if peer is not None:
        there = np.asarray(peer.position_km, dtype=np.float64)
        if there.shape == here_km.shape:
            light = float(np.linalg.norm(there - here_km)) / _C_KM_S
    total = send_s(rate_bps, peer, size) + light + latency_s
    return total if math.isfinite(total) else 0.0


class LinkQueue:
    """One node's outgoing inter-satellite links as queues: peer -> the mission time its
    link is busy until. A hand-over to a peer starts serialising once the hand-overs
    before it on the same link are out (micro-batches of one pipeline job follow each
    other on one chain), as the simulator queues hops on an ordered pair of nodes."""

    def __init__(self) -> None:
        self._free: dict[str, float] = {}

    def book(self, peer: str, now: float, busy_s: float) -> float:
        """Book ``busy_s`` seconds of the link to ``peer`` asked for at ``now``; the
        seconds to wait before it starts."""
        for key, t in list(self._free.items()):
            if t <= now:  # idle links are forgotten, so the map holds busy ones only
                del self._free[key]
        start = max(now, self._free.get(peer, now))
        self._free[peer] = start + busy_s
        return start - now


def spent(job: JobSubmit) -> tuple[float, float]:
    """Modelled seconds and joules of a pipeline job's earlier stages (0, 0 if none)."""
    p = job.pipeline
    return (0.0, 0.0) if p is None else (p.spent_s, p.spent_j)


def firsts(job: JobSubmit, accepted: float, started: float) -> tuple[float, float]:
    """When the job was accepted and started: stage 0's times for a later pipeline stage,
    else this stage's ``accepted`` and ``started``."""
    p = job.pipeline
    if p is None or p.accepted_at is None or p.started_at is None:
        return accepted, started
    return p.accepted_at, p.started_at


def unusable(st: NodeState | None, now: float, fresh_s: float, linked: bool) -> str | None:
    """Why the next member, whose latest heartbeat is ``st``, may not take a stage now
    (None if it may): not heard from or silent for more than ``fresh_s`` (offline), in safe
    mode, throttled (above its throttle temperature), or not ``linked`` to this node."""
    if st is None:
        return "not heard from"
    if now - st.t > fresh_s:
        return f"silent for {now - st.t:.1f} s (offline)"
    if st.safe_mode:
        return "in safe mode"
    if st.temperature_c > st.throttle_c:
        return f"throttled ({st.temperature_c:.1f} C > {st.throttle_c:.1f} C)"
    if not linked:
        return "no inter-satellite link (out of range, no terminal or the Earth in the way)"
    return None


def give_back(node: Node, q: Queued, job: JobSubmit, outputs: dict[str, Tensor],
              latency_s: float, energy_j: float, why: str) -> StageReturn:
    """Give the job back to the ground as its next stage (see the module doc); the
    return, queued on the downlink."""
    p = job.pipeline
    assert p is not None
    started = q.first_start if q.first_start is not None else node.clock.now()
    moved = next_stage(job, outputs, latency_s, energy_j, q.accepted_at, started)
    dst = p.members[p.stage + 1]
    ret = StageReturn(node=node.id, epoch=job.epoch, t=node.clock.now(),
                      reason=f"stage {p.stage} done; next member {dst} {why}", job=moved)
    log.warning("node %s: %s given back to the ground: %s", node.id, job.job_id, ret.reason)
    node.downlink.send(topics.result(node.id), ret)
    return ret


async def status_of(node: Node, peer: str) -> str | None:
    """``peer``'s status as the broker retains it (``online``, ``safe``, or ``offline``
    once its last will is out), read within ``STATUS_WAIT_S`` host seconds; None if
    there is none or it is unreadable."""
    try:
        async with node.bus.subscribe(topics.status(peer), qos=1) as sub:
            msg = await sub.get_before(node.clock.sleep_host(STATUS_WAIT_S))
    except FlightSwError as exc:
        log.info("node %s: no status of %s: %s", node.id, peer, exc)
        return None
    if msg is None or not msg.payload:
        return None
    try:
        st = parse(Status, msg.payload)
    except ProtocolError as exc:
        log.info("node %s: bad status of %s: %s", node.id, peer, exc)
        return None
    return st.state if st.node == peer else None


async def _next_state(node: Node, sub: Subscription, peer: str,
                      timeout_s: float) -> NodeState | None:
    """The next heartbeat of ``peer`` on ``sub`` within ``timeout_s`` mission seconds
    (kept as the node's latest copy of it), None if none came or it was unreadable."""
    msg = await sub.get_before(node.clock.sleep(timeout_s))
    if msg is None:
        return None
    try:
        st = parse(NodeState, msg.payload)
    except ProtocolError as exc:
        log.info("node %s: bad state from %s: %s", node.id, peer, exc)
        return None
    if st.node != peer:
        return None
    node.migration.peers[peer] = st
    return st


def follow_next(node: Node, job: JobSubmit) -> None:
    """Follow the next member's heartbeats while this node holds a pipeline stage before
    the last, so a fresh one is at hand when the stage ends. Only under the ``local``
    policy: under any other the migration rounds' peer listener keeps every peer's. A stage
    that ends before the member was heard, within three state periods of the start of
    following, goes to it without waiting (the ground placed it from a fresh heartbeat)."""
    p = job.pipeline
    if (p is None or p.stage + 1 >= len(p.stages) or not p.members
            or node.policy.name != "local"):
        return
    node.following.begin(job.job_id, node.clock.now(), node.config.state_period_s)
    node.spawn(_follow(node, job.job_id, job.epoch, p.members[p.stage + 1]),
               f"next:{job.job_id}")


async def _follow(node: Node, job_id: str, epoch: int, peer: str) -> None:
    period = node.config.state_period_s
    try:
        async with node.bus.subscribe(topics.state(peer), qos=0) as sub:
            while node.core.leases().get(job_id) == epoch:
                await _next_state(node, sub, peer, period)
    except FlightSwError as exc:  # pass_on waits for a heartbeat itself
        log.info("node %s: not following %s for %s: %s", node.id, peer, job_id, exc)


async def latest_state(node: Node, peer: str) -> NodeState | None:
    """``peer``'s latest heartbeat: the node's copy if fresh (kept by the peer listener,
    or by :func:`follow_next`), else the next one on ``peer``'s state topic, waited for at
    most ``WAIT_PERIODS`` state periods; the stale copy (or None) if none came."""
    period = node.config.state_period_s
    st = node.migration.peers.get(peer)
    if st is not None and node.clock.now() - st.t <= FRESH_PERIODS * period:
        return st
    async with node.bus.subscribe(topics.state(peer), qos=0) as sub:
        fresh = await _next_state(node, sub, peer, WAIT_PERIODS * period)
    return fresh if fresh is not None else st


async def pass_on(node: Node, q: Queued, job: JobSubmit, outputs: dict[str, Tensor],
                  latency_s: float, energy_j: float) -> None:
    """Hand the finished stage's outputs to the next member, or give the job back to the
    ground if that member is no longer usable (see the module doc); the stage took
    ``latency_s`` and ``energy_j`` (modelled)."""
    p = job.pipeline
    assert p is not None
    dst = p.members[p.stage + 1]
    before = node.clock.now()
    fresh_s = FRESH_PERIODS * node.config.state_period_s
    since = node.following.end(job.job_id)
    mode = await status_of(node, dst)
    st = node.migration.peers.get(dst)
    if mode == "offline":
        why: str | None = "offline (its status: its last will or its own)"
    elif mode == "safe":
        why = "in safe mode"
    elif (since is not None and before - since < fresh_s
          and (st is None or before - st.t > fresh_s)):
        # followed for less time than a member may stay silent, and not heard yet: the
        # ground placed it from a fresh heartbeat, linked; nothing says otherwise
        why = None
    else:
        st = await latest_state(node, dst)
        now = node.clock.now()
        linked = any(peer.node == dst for peer in node.migration.linked_peers(now))
        why = unusable(st, now, fresh_s, linked)
    latency_s += node.clock.now() - before  # the job waited for the status and heartbeat
    if why is not None:
        give_back(node, q, job, outputs, latency_s, energy_j, why)
        return
    links = node.profile.links
    size = len(dump(next_stage(job, outputs)))
    peer = node.migration.peers.get(dst)
    hop = hop_s(node.budget.position_of(0), links.isl_rate_bps,
                links.processing_latency_s, peer, size)
    queued = node.links_out.book(dst, node.clock.now(), send_s(links.isl_rate_bps, peer, size))
    transfer = queued + hop
    started = q.first_start if q.first_start is not None else node.clock.now()
    moved = next_stage(job, outputs, latency_s + transfer, energy_j, q.accepted_at, started)
    p = moved.pipeline
    assert p is not None
    node.epochs[job.job_id] = moved.epoch
    await node.event(q, "handed_over",
                     f"stage {p.stage - 1} done, stage {p.stage} to {dst} "
                     f"({size} B, {hop:.3f} s hop"
                     + (f" after {queued:.3f} s queued on the link" if queued > 0 else "")
                     + ")", target=dst)
    if transfer > 0:
        await node.clock.sleep(transfer)
    await node.send(topics.handover(node.id, dst),
                    Handover(src=node.id, dst=dst, t=node.clock.now(), job=moved))
