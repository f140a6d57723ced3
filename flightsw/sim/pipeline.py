"""Pipeline jobs in the simulator: a job class with ``stages = K`` runs across K satellites.

A pipeline job is split into K stages (equal shares of the class's work, or its
``stage_fractions``) and its items into ``micro_batches = M`` parts (1 by default; sizes
differ by at most one item). Each time it is planned it gets a chain of distinct live nodes
for the stages left, each linked to the next over the ISL graph, chosen by the ground
station's rule (:func:`flightsw.constellation.chain.choose_group`, the one function both
use) on candidates built from the simulator's state: backlog (queued, running, on its way
by migration, and the stages already planned on the node that have not reached it yet,
``count_planned``), stage models held, position and terminal, temperature against the
throttle temperature, state of charge, energy margin less what is booked, safe mode. Two
nodes are linked when the second is in the first's neighbour list and the link is up now
(:class:`~flightsw.sim.links.Topology`). With ``predict`` (the default) each candidate also
carries its positions at four times over twice the job's expected duration (its stages at
the fastest mode, its hops at the ISL rate), so the rule puts chains with fewer links
predicted to break first; without, links up now only. The first member is, for a ground
job, a satellite a station sees (the job is uplinked to it), for an onboard job the node
that captured the inputs.

Each stage runs as M runs (one per micro-batch, ``items / M`` of the stage's work) on its
member's shared node core (queue, power modes, admission, limits: the same decisions as any
job). Micro-batch ``m`` finished at a stage that is not the last hands its activations
(``activation_bytes_per_item`` x its items) to the next member over the ISL at once while
the member goes on with ``m + 1`` (GPipe-style forward streaming): serialisation at the
link's rate, queued behind earlier hops on the same ordered pair of nodes, plus the link's
latency (range / c + processing); the link must be up at both ends of the hop. The emulation
runs the same shape as M child pipeline jobs on one chain; here the job stays one job in
the ledger: its value, energy and latency are counted once, it is done when the last
micro-batch leaves the last stage, and its energy and modelled seconds are the sums over
every micro-batch's stages and hops. The ledger's epoch is the highest any micro-batch
reached (stage ``k`` of a chain planned at epoch ``e`` from stage ``f`` runs at ``e + k -
f``, so with M = 1 each hop is epoch + 1, as a migration); the simulator, not the ledger,
follows which member holds each micro-batch.

Losing a member, as the emulation does (``flightsw/node/pipeline.py``,
``groundstation/service.py``), decided per micro-batch (the emulation's child jobs each
have their own lease):

* A stage finished but the next member is not linked, gone, in safe mode or throttled, or
  the link or the target is lost during the hop: the member holding the outputs gives the
  micro-batch back as its next stage, and only the stages left are placed again, on a new
  chain under epoch + 1. A ground job goes back to the ground (a StageReturn): the member
  keeps the lease while it waits for a station in view, or a linked neighbour in view (one
  ISL hop, then that node's downlink: the rule of the simulator's results), and sends the
  activations down at the downlink rate; the ground then holds them and uplinks them, at
  the member's uplink rate, to the first member of a chain for the stages left that a
  station sees. An onboard job (the emulation has none) is placed at once on a chain from
  the member holding the outputs, which runs the next stage itself (it holds its inputs,
  as the origin holds stage 0's), or waits there a migration period. No finished stage is
  run again.
* A member crashes: at its lease's lapse every micro-batch it held (queued, running, on a
  hop from it, or waiting to be given back) starts again under epoch + 1 from what survives
  elsewhere: the ground's copy (the inputs of a ground job, or the activations of a
  give-back) re-planned and uplinked as above, else, for an onboard job, stage 0 at the
  node that captured the inputs, if that node has not crashed since (else the job fails:
  its inputs are gone). Activations held on the crashed node die with it.

When no chain exists the micro-batches wait and are tried again every ``step_s`` (at the
ground) or ``migration_period_s`` (onboard). Pipeline stages are never moved by migration
rounds. The ground's re-uplinks are not given antennas (the first uplink of a ground job
takes its station's antenna, as any job); a scenario without ground stations takes the
ground link to be a relay network: a give-back and its re-uplink cost no time.

Not modelled: sending the stage models to members (members are taken to receive them with
the plan), a finished micro-batch's result being lost with the last member (it is taken to
go down with the job's result).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections import deque
from collections.abc import Container, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from flightsw.constellation.chain import Candidate, choose_group
from flightsw.node.scheduler import Queued, Work
from flightsw.sim.candidates import candidates, links_now
from flightsw.sim.ledger import GROUND, Job, Ticket
from flightsw.sim.node import OutResult
from flightsw.sim.world import ClassSpec

if TYPE_CHECKING:
    from flightsw.sim.engine import Simulation

__all__ = ["Flow", "Piece", "Pipelines", "Plan", "StageTicket", "micro_items",
           "pipeline_metrics", "stage_key"]

_UNFINISHED = "unfinished at end of run"
_EXPIRED = "deadline expired before start"  # the core's reason, for a job no chain took
_NO_WORK = Work(0.0, 0.0)


def stage_key(c: ClassSpec, stage: int) -> str:
    """The model key of stage ``stage`` of class ``c`` (what a member holds once sent)."""
    return f"{c.model_key}#stage{stage}"


def micro_items(items: int, parts: int) -> list[int]:
    """``items`` split into ``parts`` micro-batches, the first ``items % parts`` one larger."""
    if not 1 <= parts <= items:
        raise ValueError(f"micro_batches: {parts} parts of {items} items (need 1..{items})")
    q, r = divmod(items, parts)
    return [q + (1 if m < r else 0) for m in range(parts)]


@dataclass(slots=True, eq=False)
class Plan:
    """One chain some micro-batches of a pipeline job run on: ``members[j]`` runs stage
    ``first + j``."""

    members: tuple[int, ...]
    epoch: int  # stage ``first``'s epoch; stage k runs at epoch + k - first
    first: int = 0


@dataclass(slots=True, eq=False)
class Piece:
    """One micro-batch of a pipeline job, as the simulator follows it."""

    m: int
    items: int
    plan: Plan | None = None  # the chain it is on (None: at the ground, or given back)
    base: int = 0  # the first stage whose inputs survive off the chain (ground or origin)
    holder: int = GROUND  # who holds its lease now
    done: bool = False
    gen: int = 0  # a new token at every change of chain: older events about it are stale
    chains: int = 0  # chains it was launched on
    ran: list[int] = field(default_factory=list)  # the member of each stage it ran
    owed: dict[int, tuple[int, float]] = field(default_factory=dict)  # stage -> (node, s)


@dataclass(slots=True, eq=False)
class Flow:
    """A pipeline job in flight: its micro-batches and what its stages and hops took."""

    job: Job
    pieces: list[Piece]
    accepted_at: float = math.nan
    started_at: float = math.nan
    stage_s: float = 0.0
    hop_s: float = 0.0
    energy_j: float = 0.0
    replans: int = 0  # chains found again for its micro-batches (one per micro-batch)


@dataclass(slots=True)
class StageTicket(Ticket):
    """A member's copy of one stage of one micro-batch of a pipeline job."""

    stage: int = 0
    plan: Plan = field(default_factory=lambda: Plan((), 0))
    piece: Piece = field(default_factory=lambda: Piece(0, 1))


@dataclass(frozen=True, slots=True)
class Hop:
    """Activations of one micro-batch in flight from member ``src`` (stage ``stage``) to
    ``dst``."""

    flow: Flow
    piece: Piece
    plan: Plan
    stage: int  # the stage that finished at src
    src: int
    dst: int
    epoch: int  # the next stage's
    t0: float
    bytes: float
    seconds: float


@dataclass(slots=True)
class PipeStats:
    plans: int = 0  # chain searches
    replans: int = 0  # chains found again for a micro-batch after a loss or a give-back
    jobs_replanned: int = 0  # jobs with at least one of those
    no_chain: int = 0  # plans that found no chain (the micro-batches waited)
    hops: int = 0
    hop_bytes: float = 0.0
    hops_broken: int = 0  # next member unusable, link down or target lost: given back
    returns: int = 0  # give-backs that reached the ground
    relayed_returns: int = 0  # of those, sent down through a linked neighbour in view
    lapses: int = 0  # micro-batches lost with a crashed member
    stale_stages: int = 0  # stages that finished after their micro-batch was re-planned


class Pipelines:
    """The pipeline jobs of one :class:`~flightsw.sim.engine.Simulation` (see the module
    docstring); the engine calls it from a few hooks."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.active = any(c.stages > 1 for c in sim.w.classes)
        #: give the chain rule the members' tracks over twice the job's expected duration,
        #: so chains whose links are predicted to stay up win; off: links up now only
        self.predict = True
        #: count in a candidate's backlog the stages planned on it that have not reached it
        #: (off: only what is queued, running or migrating there, the rule before)
        self.count_planned = True
        self.stats = PipeStats()
        self.hops: dict[int, Hop] = {}
        self._hop_ids = itertools.count()
        self._gens = itertools.count(1)
        self._swept = -math.inf
        self._seen: tuple[float, list[int]] = (math.nan, [])  # (t, nodes a station sees)
        self.link_free: dict[tuple[int, int], float] = {}  # ordered pair -> busy until
        self.planned: dict[str, Plan] = {}  # ground jobs: the chain chosen at uplink
        self.held: dict[str, Job] = {}  # ground jobs waiting for a first chain
        self.flows: dict[str, Flow] = {}  # jobs in flight
        self.away: dict[tuple[str, int], Flow] = {}  # micro-batches off any chain
        self.captured: dict[str, int] = {}  # onboard job -> its origin's crash count then
        #: seconds (fastest mode) of stages planned on each node that have not reached it
        self.owed_s = [0.0] * sim.n
        # (job id, epoch) of the result -> (stage seconds, hop seconds, members of the
        # micro-batch that finished last, the job's re-plans counted per micro-batch)
        self.finals: dict[tuple[str, int], tuple[float, float, tuple[int, ...], int]] = {}
        #: every hop that completed: (job, epoch, src, dst, start, end, bytes, rate, latency)
        self.log: deque[tuple[str, int, int, int, float, float, float, float, float]] = deque()

    # ------------------------------------------------------------------ planning
    def plan(self, job: Job, heads: Container[int], t: float, first: int = 0,
             items: int | None = None) -> Plan | None:
        """A chain for stages ``first``.. of ``job`` (``items`` of it; default all) whose
        first member is one of ``heads`` (see the module doc); its epoch is the job's."""
        sim = self.sim
        c = job.cls
        n_items = job.items if items is None else items
        if t > self._swept:  # jobs that ended on a core (a deadline) owe nothing more
            self._swept = t
            for flow in [f for f in self.flows.values() if f.job.outcome]:
                self._end(flow)
        alive = sim.alive
        topo = sim.topology
        out = links_now(sim, t)

        # safe mode and throttling are the chain rule's to judge (``usable``)
        linkable = [i for i in range(sim.n) if alive[i] and topo.capable[i]]
        starts = [i for i in linkable if i in heads]
        left = c.stages - first
        # only nodes within (stages left - 1) hops of a head can be in a chain
        reach = set(starts)
        edge = list(starts)
        for _ in range(left - 1):
            nxt = [j for i in edge for j in out(i) if j not in reach]
            reach.update(nxt)
            edge = nxt
        ok = sorted(i for i in linkable if i in reach)
        cands = self._candidates(job, ok, heads, t, first, n_items)
        index = sim.index
        keys = [stage_key(c, k) for k in range(first, c.stages)]
        parts = max(1, min(c.micro_batches, n_items))
        # what one hop ships: a micro-batch's activations (the chain carries M of them)
        bounds = [round(c.activation_bytes_per_item * n_items / parts)] * (left - 1)
        self.stats.plans += 1

        def now(a: Candidate, b: Candidate) -> bool:
            return index[b.node] in out(index[a.node])

        chain = choose_group(keys, cands, bounds, now)
        if chain is None:
            self.stats.no_chain += 1
            return None
        return Plan(tuple(index[n] for n in chain), job.epoch, first)

    def _candidates(self, job: Job, nodes: list[int], heads: Container[int], t: float,
                    first: int = 0, items: int | None = None) -> list[Candidate]:
        """``nodes`` as the chain rule sees them now: backlog (queued, running, on its way
        by migration and, if ``count_planned``, stages planned there not yet arrived),
        stage models held, in contact (a head), position, terminal, headroom (temperature
        against throttle, state of charge, energy margin less what is booked, safe mode)
        and, if ``predict``, positions at :func:`track_times` over twice the expected
        duration of stages ``first``.. of ``items`` of the job (at the fastest mode of
        ``nodes[0]``'s profile, its hops at that profile's ISL rate)."""
        n_items = job.items if items is None else items
        span = 2.0 * self._expected_s(job, nodes[0], first, n_items) \
            if self.predict and nodes else None
        return candidates(self.sim, nodes, t, span, heads=heads,
                          owed_s=self.owed_s if self.count_planned else None)

    def _expected_s(self, job: Job, i: int, first: int = 0, items: int | None = None
                    ) -> float:
        """Stages ``first``.. of ``items`` of ``job`` at the fastest mode of node ``i``'s
        profile plus their hops at that profile's ISL rate."""
        c = job.cls
        n_items = job.items if items is None else items
        spec = self.sim.nodes[i].spec
        links = spec.profile.links
        est = sum(self._stage_s(i, c, k, n_items) for k in range(first, c.stages))
        if links.isl_rate_bps > 0:
            est += (c.stages - 1 - first) * 8.0 * c.activation_bytes_per_item * n_items \
                / links.isl_rate_bps
        return est

    def _work(self, i: int, c: ClassSpec, stage: int, items: int) -> Work:
        f = c.stage_fractions[stage]
        return self.sim.nodes[i].spec.work(c.flops_per_item * f, c.bytes_per_item * f,
                                           c.weight_bytes * f, items)

    def _stage_s(self, i: int, c: ClassSpec, stage: int, items: int) -> float:
        return self.sim.nodes[i].spec.seconds(self._work(i, c, stage, items))

    # ------------------------------------------------------------------ bookkeeping
    def _owe(self, piece: Piece, plan: Plan, c: ClassSpec) -> None:
        """``piece`` joins ``plan``: its stages there count in their members' backlogs
        until they arrive."""
        self._settle(piece)
        piece.plan = plan
        piece.gen = next(self._gens)
        piece.chains += 1
        for j, i in enumerate(plan.members):
            s = self._stage_s(i, c, plan.first + j, piece.items)
            piece.owed[plan.first + j] = (i, s)
            self.owed_s[i] += s

    def _arrived(self, piece: Piece, stage: int) -> None:
        got = piece.owed.pop(stage, None)
        if got is not None:
            self.owed_s[got[0]] = max(0.0, self.owed_s[got[0]] - got[1])

    def _settle(self, piece: Piece) -> None:
        """``piece`` leaves its chain: what it still owed its members is dropped."""
        for i, s in piece.owed.values():
            self.owed_s[i] = max(0.0, self.owed_s[i] - s)
        piece.owed.clear()

    def _off_chain(self, flow: Flow, piece: Piece) -> None:
        self._settle(piece)
        piece.plan = None
        piece.gen = next(self._gens)
        self.away[(flow.job.jid, piece.m)] = flow

    def _queued(self, flow: Flow, piece: Piece, i: int, epoch: int, t: float, stage: int,
                plan: Plan) -> Queued:
        job = flow.job
        c = job.cls
        self.sim.nodes[i].add_model(stage_key(c, stage))
        self._arrived(piece, stage)
        piece.holder = i
        jid = job.jid if len(flow.pieces) == 1 else f"{job.jid}/{piece.m}"
        return Queued(job_id=jid, epoch=epoch, priority=job.priority,
                      deadline=job.deadline, value=job.value,
                      work=self._work(i, c, stage, piece.items), accepted_at=t,
                      payload=StageTicket(job, 0, stage, plan, piece), items=piece.items)

    def _advance(self, job: Job, epoch: int) -> None:
        """The ledger takes ``epoch`` if it is past the job's (the ground follows the
        micro-batch furthest on); the simulator keeps who holds which micro-batch."""
        self.sim.ledger.set_owner(job, GROUND, epoch)

    def _flow(self, job: Job) -> Flow:
        flow = Flow(job, [Piece(m, n) for m, n in
                          enumerate(micro_items(job.items, job.cls.micro_batches))])
        self.flows[job.jid] = flow
        self.sim.ledger.set_owner(job, GROUND)  # the lapses are this module's (lapsed)
        return flow

    def _launch(self, flow: Flow, pieces: list[Piece], plan: Plan, t: float) -> Queued:
        """``pieces`` start on ``plan`` at its first member: the first one's queue entry is
        returned, the others are admitted right after it (in micro-batch order)."""
        head = plan.members[0]
        c = flow.job.cls
        out = []
        for p in pieces:
            self._owe(p, plan, c)
            self.away.pop((flow.job.jid, p.m), None)
        for p in pieces:
            out.append(self._queued(flow, p, head, plan.epoch, t, plan.first, plan))
        for q in out[1:]:
            self.sim.q.push(t, self._admit_later, head, q)
        return out[0]

    def _admit_later(self, t: float, i: int, q: Queued) -> None:
        tk = q.payload
        assert isinstance(tk, StageTicket)
        if tk.job.outcome or tk.piece.plan is not tk.plan or not self.sim.alive[i]:
            return
        self.sim._event(i, q, "accepted", t, f"micro-batch {tk.piece.m}")
        self.sim._admit(i, q, t)

    # ------------------------------------------------------------------ ground jobs
    def head(self, job: Job, sats: list[int], t: float) -> int | None:
        """The uplink target of ground pipeline job ``job`` among ``sats`` (the satellites
        the station sees, as the index into ``sats``), its chain recorded; None: no chain
        now, the job is held and goes back to the ground queue a step later."""
        plan = self.plan(job, set(sats), t)
        if plan is None:
            self.held[job.jid] = job
            self.sim.q.push(t + self.sim.step_s, self._release, job)
            return None
        self.planned[job.jid] = plan
        return sats.index(plan.members[0])

    def _release(self, t: float, job: Job) -> None:
        if self.held.pop(job.jid, None) is not None and not job.outcome:
            self.sim._ground_push(job)

    def first_stage(self, i: int, job: Job, epoch: int, t: float) -> Queued:
        """Stage 0 of a ground job just uplinked to node ``i`` (its first micro-batch; the
        others follow it into the queue)."""
        plan = self.planned.pop(job.jid, None)
        if plan is None or plan.members[0] != i:  # not planned at uplink: plan from i now
            plan = self.plan(job, {i}, t)
        # head() plans every uplink and targets the chain's first member; a one-member
        # stand-in would end a K-stage job after its first stage
        assert plan is not None, f"pipeline job {job.jid} uplinked to {i} without a chain"
        plan.epoch = epoch
        flow = self._flow(job)
        return self._launch(flow, flow.pieces, plan, t)

    # ------------------------------------------------------------------ onboard jobs
    def arrive(self, job: Job, i: int, t: float) -> None:
        """An onboard pipeline job captured at node ``i`` (already in the ledger)."""
        self.captured[job.jid] = self.sim.nodes[i].crashes
        flow = self._flow(job)
        for p in flow.pieces:
            self.away[(job.jid, p.m)] = flow
        self._start(t, flow, flow.pieces, 0)

    def _start(self, t: float, flow: Flow, pieces: list[Piece], gen: int) -> None:
        """``pieces`` (stage 0) on a chain from the job's origin, or wait for one."""
        job = flow.job
        sim = self.sim
        if job.outcome or any(p.gen != gen for p in pieces):
            return
        o = job.origin_node
        if not sim.alive[o] or sim.nodes[o].crashes != self.captured[job.jid]:
            sim._fail(job, None, o, f"node crash: {sim.nodes[o].name} lost the captured "
                      "inputs of a pipeline job", t)
            self._end(flow)
            return
        if job.deadline is not None and t > job.deadline:
            sim._fail(job, None, o, _EXPIRED, t)
            self._end(flow)
            return
        plan = self.plan(job, {o}, t, 0, sum(p.items for p in pieces))
        if plan is None:
            sim.q.push(t + sim.sched_spec.migration_period_s, self._start, flow, pieces,
                       gen)
            return
        self._count(flow, pieces)
        q = self._launch(flow, pieces, plan, t)
        sim._admit(o, q, t)

    def _count(self, flow: Flow, pieces: Iterable[Piece]) -> None:
        """Chains found for ``pieces`` of ``flow``: a re-plan for each that had one before
        (and the job counted once among the jobs re-planned)."""
        n = sum(1 for p in pieces if p.chains)
        if n and not flow.replans:
            self.stats.jobs_replanned += 1
        flow.replans += n
        self.stats.replans += n

    def replan_at_origin(self, job: Job, i: int, t: float) -> None:
        """The engine's lapse of an onboard pipeline job owned by ``i`` (not reached: a
        pipeline job's ledger owner is the ground, its lapses come through
        :meth:`lapsed`); kept for the engine's rule, it does what :meth:`lapsed` does."""
        self.lapsed(i, t)

    # ------------------------------------------------------------------ stages and hops
    def stage_finished(self, i: int, q: Queued, res: OutResult, t: float) -> OutResult | None:
        """A stage of one micro-batch finished at ``i``: the job's result if it was the
        last stage of the last micro-batch, else None (the activations are on their way
        to the next member, or the job waits for its other micro-batches)."""
        tk = q.payload
        assert isinstance(tk, StageTicket)
        job, plan, k, piece = tk.job, tk.plan, tk.stage, tk.piece
        sim = self.sim
        flow = self.flows.get(job.jid)
        if job.outcome or flow is None or piece.plan is not plan:  # re-planned meanwhile
            if flow is not None and job.outcome:
                self._end(flow)
            self.stats.stale_stages += 1
            sim.stats.wasted_energy_j += res.energy_j
            return None
        flow.stage_s += res.latency_s
        flow.energy_j += res.energy_j
        if math.isnan(flow.started_at) or res.started_at < flow.started_at:
            flow.started_at = res.started_at
        if math.isnan(flow.accepted_at) or res.accepted_at < flow.accepted_at:
            flow.accepted_at = res.accepted_at
        piece.ran.append(i)
        c = job.cls
        if k + 1 == c.stages:
            piece.done = True
            piece.holder = GROUND
            self._settle(piece)
            if not all(p.done for p in flow.pieces):
                return None
            self._end(flow)
            self.finals[(job.jid, job.epoch)] = (flow.stage_s, flow.hop_s, tuple(piece.ran),
                                                 flow.replans)
            return dataclasses.replace(res, epoch=job.epoch, started_at=flow.started_at,
                                       accepted_at=flow.accepted_at, energy_j=flow.energy_j,
                                       latency_s=flow.stage_s + flow.hop_s)
        dst = plan.members[k + 1 - plan.first]
        link = sim.topology.up(i, dst, sim.budget.position, t, sim.alive)
        why = None
        if link is None:
            why = "is not linked"
        elif sim.safe[dst] or sim.nodes[dst].safe_mode:
            why = "is in safe mode"
        elif sim.throttled[dst]:
            why = "is throttled"
        if link is None or why is not None:
            self._give_back(flow, piece, k + 1, i, t,
                            f"stage {k + 1}'s member {sim.nodes[dst].name} {why}")
            return None
        size = c.activation_bytes_per_item * piece.items
        pair = (i, dst)
        start = max(t, self.link_free.get(pair, t))
        send = 8.0 * size / link.rate_bps
        self.link_free[pair] = start + send
        end = start + send + link.latency_s
        epoch = q.epoch + 1
        self._advance(job, epoch)
        hop = Hop(flow, piece, plan, k, i, dst, epoch, t, size, end - t)
        hid = next(self._hop_ids)
        self.hops[hid] = hop
        sim._event(i, q, "handed_over",
                   t, f"stage {k} done, stage {k + 1} to {sim.nodes[dst].name} "
                   f"({size:.0f} B, {end - t:.3f} s hop)", target=sim.nodes[dst].name)
        sim.q.push(end, self._hop_done, hid, start, link.rate_bps, link.latency_s)
        return None

    def _hop_done(self, t: float, hid: int, start: float, rate: float, latency: float) -> None:
        hop = self.hops.pop(hid)
        job, piece, flow = hop.flow.job, hop.piece, hop.flow
        sim = self.sim
        if job.outcome or piece.plan is not hop.plan:
            return  # re-planned meanwhile
        if not sim.alive[hop.src]:
            return  # the sender died mid-hop: it still holds the micro-batch (lapsed)
        if sim.topology.up(hop.src, hop.dst, sim.budget.position, t, sim.alive) is None:
            self._give_back(flow, piece, hop.stage + 1, hop.src, t,
                            f"link to {sim.nodes[hop.dst].name} lost mid-hop")
            return
        st = self.stats
        st.hops += 1
        st.hop_bytes += hop.bytes
        flow.hop_s += hop.seconds
        self.log.append((job.jid, hop.epoch, hop.src, hop.dst, start, t, hop.bytes, rate,
                         latency))
        q = self._queued(flow, piece, hop.dst, hop.epoch, t, hop.stage + 1, hop.plan)
        sim._event(hop.dst, q, "accepted", t,
                   f"stage {hop.stage + 1} from {sim.nodes[hop.src].name}")
        sim._admit(hop.dst, q, t)

    # ------------------------------------------------------------------ give-backs
    def _give_back(self, flow: Flow, piece: Piece, stage: int, i: int, t: float,
                   why: str) -> None:
        """Member ``i`` (alive) holds ``piece``'s outputs for ``stage`` and cannot pass
        them on: it gives the micro-batch back to the ground (see the module doc)."""
        self.stats.hops_broken += 1
        sim = self.sim
        sim._event(i, _note(flow.job), "queued", t,
                   f"pipeline micro-batch {piece.m} given back after stage {stage - 1}: "
                   f"{why}")
        self._off_chain(flow, piece)
        piece.holder = i
        if flow.job.origin_node == GROUND:
            self._down(t, flow, piece, stage, i, piece.gen)
        else:
            self._resume(t, flow, piece, stage, i, piece.gen)

    def _resume(self, t: float, flow: Flow, piece: Piece, stage: int, i: int,
                gen: int) -> None:
        """An onboard job's micro-batch given back at member ``i``: the stages left are
        placed on a new chain under epoch + 1 whose first member is ``i`` (it holds their
        inputs, as the origin holds stage 0's), or it waits there a migration period."""
        sim = self.sim
        job = flow.job
        if job.outcome or piece.gen != gen or not sim.alive[i]:
            return
        if job.deadline is not None and t > job.deadline:
            sim._fail(job, None, i, _EXPIRED, t)
            self._end(flow)
            return
        plan = self.plan(job, {i}, t, stage, piece.items)
        if plan is None:
            sim.q.push(t + sim.sched_spec.migration_period_s, self._resume, flow, piece,
                       stage, i, gen)
            return
        sim.ledger.bump(job)
        self._advance(job, job.epoch)
        plan.epoch = job.epoch
        self._count(flow, [piece])
        q = self._launch(flow, [piece], plan, t)
        sim._event(i, q, "accepted", t, f"stages {stage}- re-planned here")
        sim._admit(i, q, t)

    def _down(self, t: float, flow: Flow, piece: Piece, stage: int, i: int, gen: int) -> None:
        """Send the give-back down (it keeps the lease meanwhile) once a station sees ``i``,
        or one of its linked neighbours (one ISL hop, then that node's downlink: the rule
        of the simulator's results); else look again a step later."""
        sim = self.sim
        if flow.job.outcome or piece.gen != gen or not sim.alive[i]:
            return  # re-planned, or the holder crashed: its lapse restarts the micro-batch
        bits = 8.0 * flow.job.cls.activation_bytes_per_item * piece.items
        if not sim.stations:
            sim.q.push(t, self._returned, flow, piece, stage, i, gen)
            return
        seen = self._in_view(t)
        if i in seen:
            sim.q.push(t + bits / float(sim.downlink_bps[i]), self._returned, flow, piece,
                       stage, i, gen)
            return
        pos = sim.budget.position
        topo = sim.topology
        view = set(seen)
        for j in topo.neighbours(pos, t)[i].tolist():
            link = topo.up(i, j, pos, t, sim.alive) if j in view else None
            if link is not None:
                self.stats.relayed_returns += 1
                send = link.latency_s + bits / link.rate_bps + bits / float(sim.downlink_bps[j])
                sim.q.push(t + send, self._returned, flow, piece, stage, i, gen)
                return
        sim.q.push(t + sim.step_s, self._down, flow, piece, stage, i, gen)

    def _in_view(self, t: float) -> list[int]:
        """The live nodes a station (up, under a clear sky) sees at ``t``."""
        if self._seen[0] != t:
            sim = self.sim
            seen = sim._contact(sim.budget.position, t).any(axis=1)
            self._seen = (t, np.nonzero(seen)[0].tolist())
        return self._seen[1]

    def _returned(self, t: float, flow: Flow, piece: Piece, stage: int, i: int,
                  gen: int) -> None:
        sim = self.sim
        if flow.job.outcome or piece.gen != gen or not sim.alive[i]:
            return
        self.stats.returns += 1
        piece.base = stage
        piece.holder = GROUND
        job = flow.job
        sim.ledger.bump(job)
        self._advance(job, job.epoch)
        self._ground(t, flow, [piece], piece.gen)

    def _ground(self, t: float, flow: Flow, pieces: list[Piece], gen: int) -> None:
        """The ground places ``pieces`` (all from the same stage, whose inputs it holds) on
        a chain whose first member a station sees, and uplinks them; or tries again a step
        later."""
        sim = self.sim
        job = flow.job
        if job.outcome or any(p.gen != gen for p in pieces):
            return
        if job.deadline is not None and t > job.deadline:
            sim._fail(job, None, GROUND, _EXPIRED, t)
            self._end(flow)
            return
        first = pieces[0].base
        items = sum(p.items for p in pieces)
        heads = (set(self._in_view(t)) if sim.stations
                 else set(np.nonzero(sim.alive)[0].tolist()))
        plan = self.plan(job, heads, t, first, items) if heads else None
        if plan is None:
            sim.q.push(t + sim.step_s, self._ground, flow, pieces, gen)
            return
        h = plan.members[0]
        c = job.cls
        size = (c.input_bytes_per_item if first == 0 else c.activation_bytes_per_item) * items
        send = 8.0 * size / float(sim.uplink_bps[h]) if sim.stations else 0.0
        sim.q.push(t + send, self._uplinked, flow, pieces, gen, plan)

    def _uplinked(self, t: float, flow: Flow, pieces: list[Piece], gen: int,
                  plan: Plan) -> None:
        sim = self.sim
        job = flow.job
        if job.outcome or any(p.gen != gen for p in pieces):
            return
        h = plan.members[0]
        if not sim.alive[h]:
            self._ground(t, flow, pieces, gen)
            return
        plan.epoch = job.epoch
        self._count(flow, pieces)
        q = self._launch(flow, pieces, plan, t)
        sim._event(h, q, "accepted", t, f"stage {plan.first} re-planned from the ground")
        sim._admit(h, q, t)

    # ------------------------------------------------------------------ crashes
    def lapsed(self, i: int, t: float) -> None:
        """Crashed node ``i``'s leases lapsed: every micro-batch it held starts again from
        what survives off it (see the module doc), under a new epoch."""
        sim = self.sim
        for flow in list(self.flows.values()):
            lost = [p for p in flow.pieces if not p.done and p.holder == i]
            job = flow.job
            if not lost or job.outcome:
                continue
            self.stats.lapses += len(lost)
            sim.ledger.bump(job)
            self._advance(job, job.epoch)
            for p in lost:
                self._off_chain(flow, p)
                p.holder = GROUND
                del p.ran[p.base:]  # the stages from its base run again
            gen = next(self._gens)
            for p in lost:
                p.gen = gen  # one token for the groups below
            onboard = [p for p in lost if p.base == 0 and job.origin_node != GROUND]
            ground = [p for p in lost if p not in onboard]
            if job.origin_node == GROUND:
                sim.stats.reruns += 1
            if onboard:
                self._start(t, flow, onboard, gen)
            for base in sorted({p.base for p in ground}):
                group = [p for p in ground if p.base == base]
                self._ground(t, flow, group, gen)

    def _end(self, flow: Flow) -> None:
        """``flow``'s job ended: nothing of it is owed, away or remembered any more (the
        result's figures are in ``finals``)."""
        self.flows.pop(flow.job.jid, None)
        self.captured.pop(flow.job.jid, None)
        for p in flow.pieces:
            self._settle(p)
            self.away.pop((flow.job.jid, p.m), None)

    # ------------------------------------------------------------------ engine hooks
    @staticmethod
    def owns(q: Queued) -> bool:
        """``q`` is a copy of one stage of a pipeline job's micro-batch."""
        return isinstance(q.payload, StageTicket)

    def copy_failed(self, i: int, q: Queued, reason: str, t: float) -> None:
        """Node ``i``'s core failed a stage copy (its deadline passed, admission refused
        it): the whole job fails if the copy is the micro-batch's current one (the ledger
        at the job's own epoch: the micro-batches' copies run at their own); a stale copy
        is dropped."""
        tk = q.payload
        assert isinstance(tk, StageTicket)
        job = tk.job
        if job.outcome or tk.piece.plan is not tk.plan:
            return
        self.sim._fail(job, None, i, reason, t)
        flow = self.flows.get(job.jid)
        if flow is not None:
            self._end(flow)

    @staticmethod
    def movable(sched: Any, only: set[str] | None) -> set[str] | None:
        """The jobs a migration round may consider at a node: ``only`` (None: every queued
        job) less the pipeline stages, which stay where they were placed."""
        staged = {q.job_id for q in sched if isinstance(q.payload, StageTicket)}
        if not staged:
            return only
        return (only if only is not None else {q.job_id for q in sched}) - staged

    def pending(self) -> bool:
        """Pipeline work in flight outside the nodes' queues (hops, jobs waiting)."""
        return bool(self.hops or self.held or self.away)

    def finish(self, t: float) -> None:
        """End of run: fail what is between stages, given back or waiting for a chain."""
        sim = self.sim
        for hop in self.hops.values():
            if not hop.flow.job.outcome:
                sim._fail(hop.flow.job, None, hop.src, _UNFINISHED + " (between stages)", t)
        self.hops.clear()
        for job in self.held.values():
            sim._fail(job, None, GROUND, _UNFINISHED + " (waiting for a chain)", t)
        self.held.clear()
        for flow in list(self.away.values()):
            job = flow.job
            if not job.outcome:
                sim._fail(job, None,
                          GROUND if job.origin_node == GROUND else job.origin_node,
                          _UNFINISHED + " (waiting for a chain)", t)
        self.away.clear()
        for flow in list(self.flows.values()):  # on board (the nodes' queues were failed
            job = flow.job                        # at their own epochs) or on a dead node
            if not job.outcome:
                dead = any(not p.done and p.holder >= 0 and not sim.alive[p.holder]
                           for p in flow.pieces)
                sim._fail(job, None, GROUND, _UNFINISHED + (
                    " (holder crashed, lease not yet lapsed)" if dead else " (on board)"), t)
            self._end(flow)


def _note(job: Job) -> Queued:
    """A stand-in queue entry to name ``job`` in an archived event."""
    return Queued(job_id=job.jid, epoch=job.epoch, priority=job.priority,
                  deadline=job.deadline, value=job.value, work=_NO_WORK, accepted_at=0.0)


def pipeline_metrics(sim: Simulation) -> dict[str, Any]:
    """A cluster study's figures for the pipeline classes of a finished run: jobs, their
    throughput over the run (arrival window plus tail), latency (submission to the last
    stage's finish), the mean seconds of stage runs and of hops (summed over every
    micro-batch) of each job and the hops' share of those, and how often micro-batches
    were given back, re-planned or found no chain."""
    p = sim.pipes
    classes = [c for c in sim.w.classes if c.stages > 1]
    run_s = sim.t_stop - sim.w.t0
    out: dict[str, Any] = {}
    for c in classes:
        jobs = [j for j in sim.ledger.jobs.values() if j.cls.index == c.index]
        done = [j for j in jobs if j.outcome == "done"]
        lat = np.array([j.finished_at - j.submitted_at for j in done])
        parts = [p.finals[(j.jid, j.epoch)] for j in done]
        stage = np.array([x[0] for x in parts])
        hop = np.array([x[1] for x in parts])
        busy = float(np.sum(stage) + np.sum(hop))
        out[c.name] = {
            "stages": c.stages,
            "micro_batches": c.micro_batches,
            "jobs_submitted": len(jobs),
            "jobs_completed": len(done),
            "jobs_per_hour": len(done) * 3600.0 / run_s if run_s > 0 else None,
            "items_per_s": sum(j.items for j in done) / run_s if run_s > 0 else None,
            "latency_mean_s": float(np.mean(lat)) if done else None,
            "latency_p50_s": float(np.percentile(lat, 50)) if done else None,
            "latency_p95_s": float(np.percentile(lat, 95)) if done else None,
            "stage_s_mean": float(np.mean(stage)) if done else None,
            "hop_s_mean": float(np.mean(hop)) if done else None,
            "comm_share": float(np.sum(hop)) / busy if busy > 0 else None,
            "distinct_members": all(len(set(x[2])) == c.stages for x in parts),
            "jobs_replanned": sum(1 for x in parts if x[3] > 0),
            "distinct_members_unreplanned": all(len(set(x[2])) == c.stages
                                                for x in parts if x[3] == 0),
        }
    st = p.stats
    out["totals"] = {
        "plans": st.plans,
        "replans": st.replans,
        "jobs_replanned": st.jobs_replanned,
        "no_chain": st.no_chain,
        "hops": st.hops,
        "hop_bytes": st.hop_bytes,
        "hops_broken": st.hops_broken,
        "returns": st.returns,
        "relayed_returns": st.relayed_returns,
        "lapses": st.lapses,
        "stale_stages": st.stale_stages,
    }
    return out
