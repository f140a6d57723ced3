"""Pipeline jobs in the simulator: a job class with ``stages = K`` runs across K satellites.

A pipeline job is split into K stages (equal shares of the class's work, or its
``stage_fractions``). Each time it is planned it gets a chain of K distinct live nodes,
each linked to the next over the ISL graph, chosen by the ground station's rule
(:func:`flightsw.constellation.chain.choose_group`, the one function both use) on
candidates built from the simulator's state: backlog (queued, running and on its way),
stage models held, position and terminal, temperature against the throttle temperature,
state of charge, energy margin less what is booked, safe mode. Two nodes are linked when
the second is in the first's neighbour list and the link is up now
(:class:`~flightsw.sim.links.Topology`). With ``predict`` (the default) each candidate also
carries its positions at four times over twice the job's expected duration (its stages at
the fastest mode, its hops at the ISL rate), so the rule puts chains with fewer links
predicted to break first; without, links up now only. Stage 0's
node is, for a ground job, a satellite the uplinking station sees (the job is uplinked to
it), for an onboard job the node that captured the inputs.

Each stage is a job on its member's shared node core (queue, power modes, admission,
limits: the same decisions as any job). A finished stage that is not the last hands its
activations (``activation_bytes_per_item`` x items) to the next member over the ISL:
serialisation at the link's rate, queued behind earlier hops on the same ordered pair of
nodes, plus the link's latency (range / c + processing); the link must be up at both ends
of the hop. The job then carries epoch + 1 and the ground's ledger follows the holder, as
for a migration. The last stage's result is the job's, counted once by the ledger's
epoch rule; its energy and modelled seconds are the sums over the stages and hops.

A member lost mid-job re-plans the whole job from stage 0 with a new epoch (as the ground
station does when a member's lease lapses): a crashed holder when its lease lapses (the
engine's rule), a hop whose link or target is gone at once. A ground job goes back to the
ground queue; an onboard job starts again at the node that captured it, if that node has not
crashed since (else it fails: its inputs are gone). When no chain exists the job waits and
is tried again every ``step_s`` (ground) or ``migration_period_s`` (onboard). Pipeline
stages are never moved by migration rounds.

Not modelled: sending the stage models to members (members are taken to receive them with
the plan), micro-batch streaming within a job (each stage runs the job's whole batch).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import deque
from collections.abc import Container
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from flightsw.constellation.chain import Candidate, Km3, choose_group, track_times
from flightsw.node.scheduler import Queued, Work
from flightsw.sim.ledger import GROUND, Job, Ticket
from flightsw.sim.node import OutResult
from flightsw.sim.world import ClassSpec

if TYPE_CHECKING:
    from flightsw.sim.engine import Simulation

__all__ = ["Pipelines", "Plan", "StageTicket", "pipeline_metrics", "stage_key"]

_UNFINISHED = "unfinished at end of run"
_EXPIRED = "deadline expired before start"  # the core's reason, for a job no chain took
_NO_WORK = Work(0.0, 0.0)


def stage_key(c: ClassSpec, stage: int) -> str:
    """The model key of stage ``stage`` of class ``c`` (what a member holds once sent)."""
    return f"{c.model_key}#stage{stage}"


@dataclass(slots=True, eq=False)
class Plan:
    """One chain a pipeline job runs on, and what its stages and hops took so far."""

    members: tuple[int, ...]
    epoch: int  # stage 0's epoch; stage k runs at epoch + k
    accepted_at: float = float("nan")
    started_at: float = float("nan")
    stage_s: float = 0.0
    hop_s: float = 0.0
    energy_j: float = 0.0


@dataclass(slots=True)
class StageTicket(Ticket):
    """A member's copy of one stage of a pipeline job."""

    stage: int = 0
    plan: Plan = field(default_factory=lambda: Plan((), 0))


@dataclass(frozen=True, slots=True)
class Hop:
    """Activations in flight from member ``src`` (stage ``stage``) to ``dst``."""

    job: Job
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
    replans: int = 0  # chains found for a job again at a later epoch (a member was lost)
    no_chain: int = 0  # plans that found no chain (the job waited)
    hops: int = 0
    hop_bytes: float = 0.0
    hops_broken: int = 0  # link down or target lost at either end of a hop
    stale_stages: int = 0  # stages that finished after their job was re-planned


class Pipelines:
    """The pipeline jobs of one :class:`~flightsw.sim.engine.Simulation` (see the module
    docstring); the engine calls it from a few hooks."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.active = any(c.stages > 1 for c in sim.w.classes)
        #: give the chain rule the members' tracks over twice the job's expected duration,
        #: so chains whose links are predicted to stay up win; off: links up now only
        self.predict = True
        self.stats = PipeStats()
        self.hops: dict[int, Hop] = {}
        self._hop_ids = itertools.count()
        self.link_free: dict[tuple[int, int], float] = {}  # ordered pair -> busy until
        self.planned: dict[str, Plan] = {}  # ground jobs: the chain chosen at uplink
        self.held: dict[str, Job] = {}  # ground jobs waiting for a chain
        self.waiting: dict[str, Job] = {}  # onboard jobs waiting for a chain
        self.epochs: dict[str, int] = {}  # job -> the epoch its last chain was found at
        self.captured: dict[str, int] = {}  # onboard job -> its origin's crash count then
        # (job id, epoch) of the last stage -> (stage seconds, hop seconds, members)
        self.finals: dict[tuple[str, int], tuple[float, float, tuple[int, ...]]] = {}
        #: every hop that completed: (job, epoch, src, dst, start, end, bytes, rate, latency)
        self.log: deque[tuple[str, int, int, int, float, float, float, float, float]] = deque()

    # ------------------------------------------------------------------ planning
    def plan(self, job: Job, heads: Container[int], t: float) -> Plan | None:
        """A chain for ``job`` whose stage 0 is one of ``heads`` (see the module doc)."""
        sim = self.sim
        c = job.cls
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

        # safe mode and throttling are the chain rule's to judge (``usable``)
        linkable = [i for i in range(sim.n) if alive[i] and topo.capable[i]]
        starts = [i for i in linkable if i in heads]
        # only nodes within K - 1 hops of a head can be in a chain: search among those
        reach = set(starts)
        edge = list(starts)
        for _ in range(c.stages - 1):
            nxt = [j for i in edge for j in out(i) if j not in reach]
            reach.update(nxt)
            edge = nxt
        ok = sorted(i for i in linkable if i in reach)
        cands = self._candidates(job, ok, heads, t)
        index = sim.index
        keys = [stage_key(c, k) for k in range(c.stages)]
        bounds = [round(c.activation_bytes_per_item * job.items)] * (c.stages - 1)
        self.stats.plans += 1

        def now(a: Candidate, b: Candidate) -> bool:
            return index[b.node] in out(index[a.node])

        chain = choose_group(keys, cands, bounds, now)
        if chain is None:
            self.stats.no_chain += 1
            return None
        return Plan(tuple(index[n] for n in chain), job.epoch)

    def _candidates(self, job: Job, nodes: list[int], heads: Container[int],
                    t: float) -> list[Candidate]:
        """``nodes`` as the chain rule sees them now: backlog (queued, running and on its
        way), stage models held, in contact (a head), position, terminal, headroom
        (temperature against throttle, state of charge, energy margin less what is booked,
        safe mode) and, if ``predict``, positions at :func:`track_times` over twice the
        job's expected duration (its stages at the fastest mode of ``nodes[0]``'s profile,
        its hops at that profile's ISL rate)."""
        sim = self.sim
        if not nodes:
            return []
        idx = np.asarray(nodes, dtype=np.intp)
        tracks: list[tuple[Km3, ...]] = [() for _ in nodes]
        times = track_times(t, 2.0 * self._expected_s(job, nodes[0])) if self.predict else []
        if times:
            at = sim.w.orbits.positions_at(np.repeat(np.asarray(times), len(idx)),
                                           np.tile(idx, len(times)))
            rows = at.reshape(len(times), len(idx), 3).tolist()
            tracks = [tuple((r[k][0], r[k][1], r[k][2]) for r in rows)
                      for k in range(len(nodes))]
        b = sim.budget
        topo = sim.topology
        pos = b.position[idx].tolist()
        soc = (b.battery_wh[idx] / b.capacity_wh[idx]).tolist()
        margin = (sim.margins[idx] - sim.load.pending_j[idx] / 3600.0).tolist()
        temp = sim.temp_c[idx].tolist()
        throttle = sim.throttle_c[idx].tolist()
        rate = topo.rate_bps[idx].tolist()
        reach = topo.range_km[idx].tolist()
        out = []
        for k, i in enumerate(nodes):
            node = sim.nodes[i]
            p = pos[k]
            out.append(Candidate(
                node.name, node.backlog_s(t) + sim.incoming_s[i], node.models_frozen(),
                i in heads, (p[0], p[1], p[2]), rate[k], reach[k], soc=soc[k],
                margin_wh=margin[k], temperature_c=temp[k], throttle_c=throttle[k],
                safe_mode=node.safe_mode, track_km=tracks[k]))
        return out

    def _expected_s(self, job: Job, i: int) -> float:
        """``job``'s stages at the fastest mode of node ``i``'s profile plus its hops at
        that profile's ISL rate."""
        c = job.cls
        spec = self.sim.nodes[i].spec
        links = spec.profile.links
        est = sum(spec.seconds(spec.work(c.flops_per_item * f, c.bytes_per_item * f,
                                         c.weight_bytes * f, job.items))
                  for f in c.stage_fractions)
        if links.isl_rate_bps > 0:
            est += (c.stages - 1) * 8.0 * c.activation_bytes_per_item * job.items \
                / links.isl_rate_bps
        return est

    def _queued(self, i: int, job: Job, epoch: int, t: float, stage: int,
                plan: Plan) -> Queued:
        c = job.cls
        f = c.stage_fractions[stage]
        node = self.sim.nodes[i]
        node.add_model(stage_key(c, stage))
        work = node.spec.work(c.flops_per_item * f, c.bytes_per_item * f,
                              c.weight_bytes * f, job.items)
        return Queued(job_id=job.jid, epoch=epoch, priority=job.priority,
                      deadline=job.deadline, value=job.value, work=work, accepted_at=t,
                      payload=StageTicket(job, 0, stage, plan), items=job.items)

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
        self._count(job)
        self.planned[job.jid] = plan
        return sats.index(plan.members[0])

    def _release(self, t: float, job: Job) -> None:
        if self.held.pop(job.jid, None) is not None and not job.outcome:
            self.sim._ground_push(job)

    def first_stage(self, i: int, job: Job, epoch: int, t: float) -> Queued:
        """Stage 0 of a ground job just uplinked to node ``i``."""
        plan = self.planned.pop(job.jid, None)
        if plan is None or plan.members[0] != i:  # not planned at uplink: plan from i now
            plan = self.plan(job, {i}, t)
        # head() plans every uplink and targets the chain's first member; a one-member
        # stand-in would end a K-stage job after its first stage
        assert plan is not None, f"pipeline job {job.jid} uplinked to {i} without a chain"
        plan.epoch = epoch
        return self._queued(i, job, epoch, t, 0, plan)

    # ------------------------------------------------------------------ onboard jobs
    def arrive(self, job: Job, i: int, t: float) -> None:
        """An onboard pipeline job captured at node ``i`` (already in the ledger)."""
        self.captured[job.jid] = self.sim.nodes[i].crashes
        self._start(job, i, t)

    def _start(self, job: Job, i: int, t: float) -> None:
        plan = self.plan(job, {i}, t)
        if plan is None:
            self.waiting[job.jid] = job
            self.sim.q.push(t + self.sim.sched_spec.migration_period_s, self._retry, job,
                            job.epoch)
            return
        self._count(job)
        self.sim._admit(i, self._queued(i, job, job.epoch, t, 0, plan), t)

    def _count(self, job: Job) -> None:
        """A chain was found for ``job`` at its current epoch: a re-plan if an earlier
        epoch had one."""
        last = self.epochs.get(job.jid)
        if last is not None and last != job.epoch:
            self.stats.replans += 1
        self.epochs[job.jid] = job.epoch

    def _retry(self, t: float, job: Job, epoch: int) -> None:
        if self.waiting.pop(job.jid, None) is None or job.outcome or job.epoch != epoch:
            return
        o = job.origin_node
        if not self.sim.alive[o] or self.sim.nodes[o].crashes != self.captured[job.jid]:
            return  # its origin crashed: the lease lapse fails it
        if job.deadline is not None and t > job.deadline:
            self.sim._fail(job, None, o, _EXPIRED, t)
            return
        self._start(job, o, t)

    def replan_at_origin(self, job: Job, i: int, t: float) -> None:
        """An onboard pipeline job lost a member (``i``): start again from stage 0 at its
        origin, which keeps the captured inputs, unless the origin crashed since."""
        sim = self.sim
        o = job.origin_node
        if not sim.alive[o] or sim.nodes[o].crashes != self.captured.get(job.jid):
            sim._fail(job, None, i, f"node crash: {sim.nodes[o].name} lost the captured "
                      "inputs of a pipeline job", t)
            return
        sim.ledger.bump(job)
        sim.ledger.set_owner(job, o)
        self._start(job, o, t)

    # ------------------------------------------------------------------ stages and hops
    def stage_finished(self, i: int, q: Queued, res: OutResult, t: float) -> OutResult | None:
        """Stage of ``q`` finished at ``i``: the job's result if it was the last stage,
        else None (the activations are on their way to the next member)."""
        tk = q.payload
        assert isinstance(tk, StageTicket)
        job, plan, k = tk.job, tk.plan, tk.stage
        sim = self.sim
        if job.outcome or q.epoch != job.epoch:  # re-planned meanwhile: a stale copy
            self.stats.stale_stages += 1
            sim.stats.wasted_energy_j += res.energy_j
            return None
        plan.stage_s += res.latency_s
        plan.energy_j += res.energy_j
        if k == 0:
            plan.accepted_at, plan.started_at = res.accepted_at, res.started_at
        if k + 1 == len(plan.members):
            self.finals[(job.jid, q.epoch)] = (plan.stage_s, plan.hop_s, plan.members)
            return dataclasses.replace(res, started_at=plan.started_at,
                                       accepted_at=plan.accepted_at, energy_j=plan.energy_j,
                                       latency_s=plan.stage_s + plan.hop_s)
        dst = plan.members[k + 1]
        link = sim.topology.up(i, dst, sim.budget.position, t, sim.alive)
        if link is None:
            self._broken(job, i, t, f"stage {k + 1}'s member {sim.nodes[dst].name} "
                         "is not linked")
            return None
        size = job.cls.activation_bytes_per_item * job.items
        pair = (i, dst)
        start = max(t, self.link_free.get(pair, t))
        send = 8.0 * size / link.rate_bps
        self.link_free[pair] = start + send
        end = start + send + link.latency_s
        epoch = q.epoch + 1
        sim.ledger.set_owner(job, i, epoch)  # still this member's until the next takes it
        hop = Hop(job, plan, k, i, dst, epoch, t, size, end - t)
        hid = next(self._hop_ids)
        self.hops[hid] = hop
        sim._event(i, q, "handed_over",
                   t, f"stage {k} done, stage {k + 1} to {sim.nodes[dst].name} "
                   f"({size:.0f} B, {end - t:.3f} s hop)", target=sim.nodes[dst].name)
        sim.q.push(end, self._hop_done, hid, start, link.rate_bps, link.latency_s)
        return None

    def _hop_done(self, t: float, hid: int, start: float, rate: float, latency: float) -> None:
        hop = self.hops.pop(hid)
        job = hop.job
        sim = self.sim
        if job.outcome or job.epoch != hop.epoch:
            return  # re-planned meanwhile
        if not sim.alive[hop.src]:
            return  # the sender died mid-hop: its lease lapses, and the job is re-planned
        if sim.topology.up(hop.src, hop.dst, sim.budget.position, t, sim.alive) is None:
            self._broken(job, hop.src, t, f"link to {sim.nodes[hop.dst].name} lost mid-hop")
            return
        st = self.stats
        st.hops += 1
        st.hop_bytes += hop.bytes
        hop.plan.hop_s += hop.seconds
        self.log.append((job.jid, hop.epoch, hop.src, hop.dst, start, t, hop.bytes, rate,
                         latency))
        sim.ledger.set_owner(job, hop.dst, hop.epoch)
        q = self._queued(hop.dst, job, hop.epoch, t, hop.stage + 1, hop.plan)
        sim._event(hop.dst, q, "accepted", t,
                   f"stage {hop.stage + 1} from {sim.nodes[hop.src].name}")
        sim._admit(hop.dst, q, t)

    def _broken(self, job: Job, i: int, t: float, why: str) -> None:
        """The chain broke at member ``i`` (alive): re-plan from stage 0 now."""
        self.stats.hops_broken += 1
        sim = self.sim
        sim._event(i, _note(job), "queued", t, f"pipeline re-planned: {why}")
        sim._lapse_job(job, i, t)

    # ------------------------------------------------------------------ engine hooks
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
        return bool(self.hops or self.held or self.waiting)

    def finish(self, t: float) -> None:
        """End of run: fail what is between stages or waiting for a chain."""
        sim = self.sim
        for hop in self.hops.values():
            sim._fail(hop.job, hop.epoch, hop.src, _UNFINISHED + " (between stages)", t)
        self.hops.clear()
        for job in [*self.held.values(), *self.waiting.values()]:
            sim._fail(job, None, GROUND if job.origin_node == GROUND else job.origin_node,
                      _UNFINISHED + " (waiting for a chain)", t)
        self.held.clear()
        self.waiting.clear()


def _note(job: Job) -> Queued:
    """A stand-in queue entry to name ``job`` in an archived event."""
    return Queued(job_id=job.jid, epoch=job.epoch, priority=job.priority,
                  deadline=job.deadline, value=job.value, work=_NO_WORK, accepted_at=0.0)


def pipeline_metrics(sim: Simulation) -> dict[str, Any]:
    """A cluster study's figures for the pipeline classes of a finished run: jobs, their
    throughput over the run (arrival window plus tail), latency (submission to the last
    stage's finish), the mean seconds of stage runs and of hops in the chain that finished
    each job and the hops' share of those, and how often a chain was re-planned or not
    found."""
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
        }
    st = p.stats
    out["totals"] = {
        "plans": st.plans,
        "replans": st.replans,
        "no_chain": st.no_chain,
        "hops": st.hops,
        "hop_bytes": st.hop_bytes,
        "hops_broken": st.hops_broken,
        "stale_stages": st.stale_stages,
    }
    return out

