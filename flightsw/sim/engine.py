"""The simulation engine: a discrete-event kernel over vectorised physics.

Physics (orbits, power, thermal, radiation) is one :class:`~flightsw.node.budget.Budget`
holding every node as an array row, advanced by one vectorised step per ``step_s``. Per-node
Python logic runs only on events: a job arrives, an uplink or a handover completes, a job
finishes, a node crashes or restarts, a lease is checked. Between steps, events are taken
from a heap in time order (ties in scheduling order), each at its exact time. At each step
boundary the engine also: checks thermal throttle and safe mode (vectorised, Python only for
the nodes that changed), retries deferred work where the energy forecast now allows it,
uplinks queued ground jobs to satellites in contact, delivers finished results (direct, or
relayed over one ISL hop to a satellite in contact), and, every ``migration_period_s``,
runs a migration round in which the policy may hand queued jobs to linked neighbours.

Protocol rules (those of the emulated node and ground station): a job carries an epoch; a
handover moves a queued job to a linked node with epoch + 1 after its transfer time (inputs,
plus the model if the target lacks it) over a link that must be up at both ends of the
transfer; a crashed node loses its queue and running job, and when its lease lapses the
ground re-runs its ground jobs with epoch + 1 (onboard-captured inputs are lost with it); a
result is recorded by the ground exactly once, and results from a stale epoch are ignored.

Every run ends with the audit of :meth:`Simulation.finish`: jobs still in flight at the end of
the mission are failed ("unfinished at end of run"), finished results are drained to the
ground, and every job the ledger holds must then have exactly one outcome.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from flightsw.clock import VirtualClock
from flightsw.constellation import Candidate, MigrationRules, Peer, make_policy, transfer_time_s
from flightsw.constellation.policies import run_time_s
from flightsw.exceptions import FlightSwError
from flightsw.models.executor import Executor
from flightsw.models.store import ModelStore
from flightsw.node.budget import Budget
from flightsw.node.checkpoint import SUSPEND_S
from flightsw.node.effects import (
    Effect,
    Failed,
    JobNote,
    Started,
    StatusChanged,
    Stopped,
    Suspended,
)
from flightsw.node.lifetime import NodeLifetime, schedule_of
from flightsw.node.limits import limit_flags
from flightsw.node.load import ComputeLoad
from flightsw.node.rounds import LazyPeers, plan_moves, with_queue
from flightsw.node.scheduler import Queued, Work
from flightsw.node.spec import NodeSpec
from flightsw.physics import frames, sun
from flightsw.protocol import JobEvent, JobResult, Status, Telemetry
from flightsw.protocol.antennas import Antennas
from flightsw.protocol.jobrules import (
    EXPIRED_AT_GROUND,
    UplinkOption,
    choose_uplink,
    expired_at_ground,
)
from flightsw.sim.archive import SimArchive
from flightsw.sim.kernel import EventQueue
from flightsw.sim.ledger import GROUND, Job, Ledger, Ticket
from flightsw.sim.links import Link, Topology
from flightsw.sim.node import OutResult, SimNode, ticket
from flightsw.sim.pipeline import Pipelines
from flightsw.sim.training import Trainings
from flightsw.sim.weather import Sky
from flightsw.sim.workload import Arrivals, generate_arrivals
from flightsw.sim.world import World

__all__ = ["RunStats", "Simulation"]

F = npt.NDArray[np.float64]
_KELVIN = 273.15
_DRAIN_STEP_S = 30.0
_DRAIN_MAX_S = 86_400.0
_UNFINISHED = "unfinished at end of run"
_EXPIRED = "deadline expired before start"  # the core's reason
_NO_DEADLINE_TAIL_S = 3600.0  # run-on after the last arrival when a class has no deadline
_TOPOLOGY_REFRESH_S = 300.0  # neighbour lists are rebuilt this often (links re-checked at use)
_RELAY_PERIOD_S = 60.0  # results held on board look for a one-hop relay this often
_DRAIN_TOPOLOGY_REFRESH_S = 600.0  # after the run only relays of finished results use them


@dataclass(slots=True)
class RunStats:
    """Counters of one run (the metrics module turns them into metrics.json)."""

    arrivals_dropped: int = 0  # onboard arrivals at a crashed node (never submitted)
    compute_energy_j: float = 0.0  # all modelled compute energy spent on jobs
    wasted_energy_j: float = 0.0  # of which on runs that were stopped or discarded
    handovers: int = 0
    handovers_aborted: int = 0
    migration_bytes: float = 0.0
    uplinks: int = 0
    uplink_retries: int = 0
    uplink_bytes: float = 0.0
    relayed_results: int = 0
    reruns: int = 0
    stopped_runs: int = 0
    events: int = 0
    drain_s: float = 0.0
    executed: int = 0
    host_inference_s: float = 0.0


@dataclass(slots=True)
class _RoundState:
    soc: list[float]
    margin: list[float]
    temp: list[float]
    sunlit: list[float]
    next_eclipse: list[float | None]
    eclipse: list[float]
    incoming: list[float]


@dataclass(slots=True)
class _Transfer:
    src: int
    dst: int
    q: Queued
    epoch: int
    size: float
    run_s: float


def _with_link(v: Peer, lk: Link) -> Peer:
    """``v`` seen over link ``lk`` (positional construction: much cheaper than replace)."""
    return Peer(v.node, v.soc, v.margin_wh, v.temperature_c, v.throttle_c, v.queued_work_s,
                v.queue_depth, v.sunlit, v.next_eclipse_s, v.eclipse_s, v.ops_per_s, v.watts,
                v.heat_capacity_j_per_k, v.models, v.safe_mode, lk.rate_bps, lk.latency_s,
                v.running_s, v.work_by_priority)


class Simulation:
    """One deterministic run of a :class:`World` (see the module docstring)."""

    def __init__(
        self,
        world: World,
        *,
        archive_dir: Path | None = None,
        execute: bool = False,
        models_dir: Path | None = None,
        terminals: int | None = None,
    ) -> None:
        self.w = world
        sc = world.scenario
        self.seed = sc.seed
        self.step_s = sc.step_s
        spec = world.scheduler
        self.sched_spec = spec
        self.rules = MigrationRules(
            max_migrations=spec.max_migrations,
            min_gain_s=spec.min_gain_s,
            min_gain_frac=spec.min_gain_frac,
            consider_wait_s=spec.consider_wait_s,
            max_per_round=spec.max_per_round,
        )
        self.policy = make_policy(spec.policy, self.rules)
        self.rng_policy = np.random.default_rng([self.seed, 2])
        self.clock = VirtualClock(world.t0)  # host time is measured only through a Clock
        n = world.n
        self.n = n
        self.budget = Budget.from_profiles(
            world.profiles, world.orbits, world.t0, seed=int(np.random.SeedSequence(
                [self.seed, 3]).generate_state(1)[0])
        )
        specs: dict[str, NodeSpec] = {}
        self.nodes: list[SimNode] = []
        for i, (name, prof) in enumerate(zip(world.names, world.profiles, strict=True)):
            ns = specs.get(prof.name)
            if ns is None:
                ns = specs[prof.name] = NodeSpec.of(prof)
            self.nodes.append(SimNode(i, name, ns, overload_backlog_s=spec.overload_backlog_s,
                                      max_queue=spec.max_queue))
        gate = getattr(self.policy, "gate", None)  # a policy's own run rule (Equinox)
        if gate is not None:
            for nd in self.nodes:
                nd.value_gate = gate
        # what each node publishes that never changes: name, throttle, fastest mode, heat
        self._static = [
            (nd.name, nd.spec.profile.thermal.throttle_c, nd.spec.useful_ops_per_s,
             nd.spec.fastest.watts, nd.spec.profile.thermal.heat_capacity_j_per_k)
            for nd in self.nodes
        ]
        self.index = {name: i for i, name in enumerate(world.names)}
        for c in world.classes:  # deterministic preload: evenly spread fraction of nodes
            for i in range(n):
                if math.floor((i + 1) * c.preloaded) > math.floor(i * c.preloaded):
                    self.nodes[i].add_model(c.model_key)
        profs = world.profiles
        self.idle_w = np.array([p.compute.idle_w for p in profs])
        self.throttle_c = np.array([p.thermal.throttle_c for p in profs])
        self.max_c = np.array([p.thermal.max_c for p in profs])
        self.floor_soc = np.array([p.bus.dod_floor for p in profs])
        self.uplink_bps = np.array([p.links.uplink_rate_bps for p in profs])
        self.downlink_bps = np.array([p.links.downlink_rate_bps for p in profs])
        self._uplink_rates: list[float] = self.uplink_bps.tolist()  # read per uplink option
        self.alive = np.ones(n, dtype=bool)
        self.safe = np.zeros(n, dtype=bool)  # automatic safe mode (mirrors each core)
        self.throttled = np.zeros(n, dtype=bool)
        self.load = ComputeLoad(self.idle_w)
        self.need_wh = np.full(n, np.inf)  # energy a deferred queue waits for
        self.has_outbox = np.zeros(n, dtype=bool)
        # seconds of work (fastest mode) being handed over to each node, in total and by
        # job priority (plain floats: read per peer view, where numpy scalars cost more)
        self.incoming_s = [0.0] * n
        self.incoming_prio = [[0.0] * 10 for _ in range(n)]
        self.waiting: set[int] = set()  # idle nodes with deferred work
        # migration rounds: a node runs the policy when its queue, or a neighbour's, changed
        self.full = np.ones(n, dtype=bool)  # reconsider the whole queue
        self.fresh: list[set[str]] = [set() for _ in range(n)]  # jobs new since last round
        self._fresh_nodes: set[int] = set()
        self.last_round = np.full(n, -np.inf)
        self.retry_at = np.full(n, -np.inf)  # a deferred queue is looked at again then
        self.topology = Topology(
            np.array([p.links.isl_max_range_km for p in profs]),
            np.array([p.links.isl_rate_bps for p in profs]),
            np.array([p.links.processing_latency_s for p in profs]),
            world.faults,
            terminals=terminals or sc.constellation.isl_terminals,
            refresh_s=max(spec.migration_period_s, _TOPOLOGY_REFRESH_S),
        )
        self.q = EventQueue()
        self.ledger = Ledger()
        self.stats = RunStats()
        self.transfers: dict[int, _Transfer] = {}
        self._transfer_ids = itertools.count()
        self.uplinks: dict[str, tuple[Job, int, int]] = {}  # jid -> (job, node, station)
        self.ground_queue: list[tuple[tuple[float, float, int], Job]] = []
        self._gq_seq = itertools.count()
        # each station's antennas, each serving one satellite at a time (the ground's rule)
        self.antennas = Antennas([s.antennas for s in world.stations], world.t0)
        self.stations = [s.station for s in world.stations]
        # optical stations: their own rates, and usable only under a clear sky
        self._optical = [s.optical for s in world.stations]
        self._st_up_bps = [None if o is None else o.uplink_rate_bps for o in self._optical]
        self._st_down_bps = np.array([0.0 if o is None else o.downlink_rate_bps
                                      for o in self._optical])
        self._any_optical = any(o is not None for o in self._optical)
        self.sky = Sky(self._optical, world.t0, self.seed)
        self._contact_ns: npt.NDArray[np.bool_] = np.zeros((n, len(world.stations)), bool)
        self.masks = [s.min_elevation_deg for s in world.stations]
        self._st_ecef = np.array([s.ecef_km for s in self.stations]).reshape(-1, 3)
        self._st_up = np.array([s.up for s in self.stations]).reshape(-1, 3)
        self._st_sin_mask = np.sin(np.radians(np.asarray(self.masks, dtype=np.float64)))
        self._st_ecef_list: list[list[float]] = self._st_ecef.tolist()
        self._st_up_list: list[list[float]] = self._st_up.tolist()
        self._st_sin_mask_list: list[float] = self._st_sin_mask.tolist()
        self.lost_leases: dict[int, list[tuple[Job, int]]] = {}
        self.arrivals: Arrivals = generate_arrivals(world, np.random.default_rng([self.seed, 1]))
        self._next_arrival = 0
        self._job_seq = 0
        self.now = world.t0
        self.tick_start = world.t0
        self.margins = self.budget.margins_wh(world.t0)
        self.temp_c = self.budget.temperature_k - _KELVIN
        self.contact_any: npt.NDArray[np.bool_] = np.zeros(n, dtype=bool)
        self.archive = SimArchive(archive_dir) if archive_dir is not None else None
        self.execute = execute
        self._executor: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        if execute:
            self._setup_executor(models_dir)
        self.wall_s = 0.0
        # host seconds spent per phase of the main loop (measured, not reproducible)
        self.phase_s = dict.fromkeys(("events", "physics", "ground", "migration", "telemetry",
                                      "finish"), 0.0)
        self.finished = False
        # after the last arrival, work already admitted may run on for the longest deadline
        deadlines = [c.deadline_s for c in world.classes if c.deadline_s is not None]
        self.tail_max_s = max(deadlines, default=0.0) if len(deadlines) == len(
            world.classes) else max([*deadlines, _NO_DEADLINE_TAIL_S])
        self.t_stop = world.t_end
        self.min_soc = float(np.min(self.budget.battery_wh / self.budget.capacity_wh))
        self.preemptions = 0  # runs suspended (pre-emption or the energy guard)
        self._soc_s = 0.0  # time integral of the fleet's mean state of charge (live nodes)
        self._soc_dt = 0.0
        self._eta_d = np.array([p.bus.discharge_efficiency for p in profs])
        self.max_temp_c = float(np.max(self.temp_c))
        self.manoeuvring: set[int] = set()  # nodes whose manoeuvre may draw propulsion now
        self.pipes = Pipelines(self)  # jobs of classes with stages > 1 (flightsw.sim.pipeline)
        self.trains = Trainings(self)  # classes with train_steps > 0 (flightsw.sim.training)

    # ================================================================ small helpers
    def _status(self, i: int, state: str, t: float) -> None:
        if self.archive is None:
            return
        self.archive.status(
            Status(node=self.nodes[i].name, state=state, t=t,  # type: ignore[arg-type]
                   profile=self.nodes[i].spec.profile.name)
        )

    def _event(self, i: int, q: Queued, state: str, t: float, detail: str | None = None,
               target: str | None = None) -> None:
        if self.archive is None:
            return
        self.archive.event(
            JobEvent(job_id=q.job_id, epoch=q.epoch, node=self.nodes[i].name,
                     state=state, t=t, detail=detail, target=target)  # type: ignore[arg-type]
        )

    def _result_msg(self, job: Job, epoch: int, node: int, t: float) -> JobResult:
        name = self.nodes[node].name if node >= 0 else "ground"
        return JobResult(
            job_id=job.jid,
            epoch=epoch,
            node=name,
            status="done" if job.outcome == "done" else "failed",
            reason=job.reason or None,
            items=job.items,
            modelled_latency_s=job.latency_s,
            modelled_energy_j=job.energy_j,
            power_mode=job.mode or None,
            submitted_at=job.submitted_at,
            accepted_at=None if math.isnan(job.accepted_at) else job.accepted_at,
            started_at=None if math.isnan(job.started_at) else job.started_at,
            finished_at=job.finished_at,
            deadline=job.deadline,
            value=job.value,
            migrations=job.migrations,
        )

    def _fail(self, job: Job, epoch: int | None, node: int, reason: str, t: float) -> None:
        """Record a failure with the ground (nodes count their own in their cores)."""
        if self.ledger.fail(job, epoch, node, reason, t) and self.archive is not None:
            self.archive.result(t, self._result_msg(job, job.epoch, node, t))

    def _queued(self, i: int, job: Job, epoch: int, t: float, migrations: int = 0) -> Queued:
        if job.cls.stages > 1:  # a pipeline job uplinked: its stage 0
            return self.pipes.first_stage(i, job, epoch, t)
        return Queued(
            job_id=job.jid,
            epoch=epoch,
            priority=job.priority,
            deadline=job.deadline,
            value=job.value,
            work=self._work(i, job),
            accepted_at=t,
            payload=Ticket(job, migrations),
            items=job.items,
        )

    def _work(self, i: int, job: Job) -> Work:
        """``job``'s work on node ``i`` (the core's rule: mitigation included)."""
        c = job.cls
        return self.nodes[i].spec.work(c.flops_per_item, c.bytes_per_item, c.weight_bytes,
                                       job.items)

    def _new_job(self, k: int, t: float) -> Job:
        a = self.arrivals
        c = self.w.classes[int(a.cls[k])]
        items = int(a.items[k])
        self._job_seq += 1
        return Job(
            jid=f"j{self._job_seq:07d}",
            cls=c,
            items=items,
            flops=c.flops_per_item * items,
            mem_bytes=c.weight_bytes + c.bytes_per_item * items,
            input_bytes=c.input_bytes_per_item * items,
            output_bytes=c.output_bytes_per_item * items,
            submitted_at=t,
            deadline=None if c.deadline_s is None else t + c.deadline_s,
            origin_node=int(a.node[k]),
        )

    def _mark(self, i: int, *, freed: bool = False, job: str | None = None) -> None:
        """Node i's queue or running job changed. A ``job`` newly queued there is considered
        at the next migration round; when i ``freed`` capacity (finished, stopped or handed
        off work) and now has room (no more than the shared trigger's wait queued), the nodes
        that link to it and have more than that wait queued reconsider their whole queues
        (they may now want to move work there). Every node also reconsiders its whole queue
        every ``reconsider_s``."""
        if job is not None:
            self.fresh[i].add(job)
            self._fresh_nodes.add(i)
        wait = self.rules.consider_wait_s
        if freed and self.nodes[i].backlog_s(self.now) <= wait and self.alive[i]:
            for j in self.topology.reverse[i]:
                if not self.full[j] and self.nodes[j].backlog_s(self.now) > wait:
                    self.full[j] = True

    # ================================================================ onboard logic
    def _carry(self, i: int, effects: list[Effect], t: float) -> None:
        """Carry out what node i's core decided."""
        for e in effects:
            if type(e) is Started:
                run = e.run
                self.load.begin(i, run.start, run.d.latency_s, run.d.mode.watts)
                self.q.push(run.end, self._finish, i, run.token)
            elif type(e) is Suspended:
                load = self.load
                extra_w = float(load.extra_w[i])
                load.close(i, t, complete=False)
                load.pending_j[i] += SUSPEND_S * extra_w  # writing the checkpoint
                self.stats.compute_energy_j += e.spent_j
                self.preemptions += 1
                self.full[i] = True
            elif type(e) is Failed:
                if self.trains.owns(e.q):  # a training step's copy: the run decides
                    self.trains.copy_failed(i, e.q, e.reason, t)
                    continue
                if self.pipes.owns(e.q):  # a pipeline stage's copy: its job, if current
                    self.pipes.copy_failed(i, e.q, e.reason, t)
                    continue
                self._fail(ticket(e.q).job, e.q.epoch, i, e.reason, t)
            elif type(e) is JobNote:
                self._event(i, e.q, e.state, t, e.detail, e.target)
                if e.state in ("queued", "suspended"):
                    self._mark(i, job=e.q.job_id)
            elif type(e) is Stopped:
                self.load.close(i, t, complete=False)
                self.stats.compute_energy_j += e.spent_j
                self.stats.wasted_energy_j += e.spent_j
                self.stats.stopped_runs += 1
                self.full[i] = True
            elif type(e) is StatusChanged:
                self._status(i, e.state, t)

    def _admit(self, i: int, q: Queued, t: float) -> None:
        node = self.nodes[i]
        shed = node.accept(q, t)
        if shed:
            self._carry(i, shed, t)
        self._mark(i, job=q.job_id)
        self._dispatch(i, t)

    def _dispatch(self, i: int, t: float) -> None:
        """Start the next job on an idle node if the budget allows, else note the wait."""
        node = self.nodes[i]
        if node.run is not None or not self.alive[i]:
            return
        unbooked = self.load.pending_j[i] / 3600.0
        ol = None
        if len(node.sched):
            ol = self.budget.outlook(i, t)
            ol = ol._replace(battery_wh=ol.battery_wh - unbooked)
        got = node.dispatch(t, float(self.temp_c[i]), float(self.margins[i] - unbooked), ol)
        if got:
            self._carry(i, got, t)
        if node.run is None and len(node.sched):
            self.waiting.add(i)
            self.need_wh[i] = node.need_wh
            self.retry_at[i] = node.retry_at
        else:
            self.waiting.discard(i)
            self.need_wh[i] = np.inf

    def _finish(self, t: float, i: int, token: int) -> None:
        node = self.nodes[i]
        run = node.finish(token) if self.alive[i] else None
        if run is None:
            return  # the run was stopped (crash, safe mode, throttle): stale event
        self.load.close(i, t, complete=True)
        self.stats.compute_energy_j += run.d.energy_j
        q = run.q
        tk = ticket(q)
        first = run.start if q.first_start is None else q.first_start
        res = OutResult(
            job=tk.job, epoch=q.epoch, node=i, finished_at=t, started_at=first,
            accepted_at=q.accepted_at, energy_j=run.d.energy_j + q.spent_j,
            latency_s=run.d.latency_s, mode=run.d.mode.name, migrations=tk.migrations,
        )
        # a pipeline stage: on to the next member (None), or the whole job's result
        out = self.pipes.stage_finished(i, q, res, t) if tk.job.cls.stages > 1 else res
        if tk.job.cls.train_steps > 0:  # a training step's copy: its run takes it
            self.trains.step_finished(i, q, res, t)
            out = None
        if out is not None:
            if self.execute and tk.job.cls.model_path is not None:
                self._run_model(tk.job)
            if self.stations:
                node.outbox.append(out)
                self.has_outbox[i] = True
            else:  # no ground segment modelled: a result counts when it is finished
                self._deliver(i, out, t)
        self._dispatch(i, t)
        self._mark(i, freed=True)

    def _stop(self, i: int, t: float, reason: str, *, requeue: bool) -> None:
        got = self.nodes[i].stop(t, reason, requeue=requeue)
        if got:
            self._carry(i, got, t)

    # ================================================================ arrivals, uplink
    def _arrive(self, t: float, k: int) -> None:
        job = self._new_job(k, t)
        if job.cls.train_steps > 0:  # a training run, coordinated by the ground
            self.trains.arrive(job, t)
            return
        if job.origin_node == GROUND:
            self.ledger.submit(job, GROUND)
            self._ground_push(job)
            return
        i = job.origin_node
        if not self.alive[i]:
            self.stats.arrivals_dropped += 1  # a crashed node captures nothing
            self._job_seq -= 1
            return
        self.ledger.submit(job, i)
        if job.cls.stages > 1:  # a pipeline job: planned on a chain from here
            self.pipes.arrive(job, i, t)
            return
        self._admit(i, self._queued(i, job, 0, t), t)

    def _ground_push(self, job: Job) -> None:
        dl = job.deadline if job.deadline is not None else math.inf
        heapq.heappush(self.ground_queue,
                       ((-float(job.priority), dl, next(self._gq_seq)), job))

    def _uplink_round(self, t: float, contact: npt.NDArray[np.bool_]) -> None:
        """Each station with an antenna free before the next round uplinks queued ground
        jobs, each to the satellite in view that could start it soonest (the ground's rule,
        :func:`~flightsw.protocol.jobrules.choose_uplink`: uplink time, plus the model if the
        satellite lacks it, plus its backlog and the work already sent to it) among those an
        antenna can start on before the next round (:mod:`flightsw.protocol.antennas`: one
        satellite per antenna; with one antenna, one job after the other)."""
        horizon = t + self.step_s
        rates = self._uplink_rates
        ant = self.antennas
        for s in range(len(self.stations)):
            if not self.ground_queue:
                return
            if ant.next_free(s) >= horizon or self._station_out(s, t):
                continue
            sats = np.nonzero(contact[:, s])[0].tolist()
            if not sats:
                continue
            st_rate = self._st_up_bps[s]  # an optical station's own rate, else the node's
            many = ant.count(s) > 1
            extra = dict.fromkeys(sats, 0.0)  # work uplinked to each this round
            # each satellite's backlog and name, once per round (only ``extra`` changes)
            base = [(self.nodes[i].name, rates[i] if st_rate is None else st_rate,
                     self.nodes[i].backlog_s(t) + self.incoming_s[i], self.nodes[i].models)
                    for i in sats]
            while self.ground_queue and ant.next_free(s) < horizon:
                # the satellites an antenna can start on before the next round: all but
                # those an antenna serves past it
                blocked = ant.blocked(s, horizon) if many else None
                open_k = ([k for k, i in enumerate(sats) if i not in blocked]
                          if blocked else range(len(sats)))
                if not open_k:
                    break
                _, job = heapq.heappop(self.ground_queue)
                if job.outcome:
                    continue
                if expired_at_ground(job.deadline, t):
                    self._fail(job, None, GROUND, EXPIRED_AT_GROUND, t)
                    continue
                model = job.model
                options = [
                    UplinkOption(base[k][0], base[k][1], base[k][2] + extra[sats[k]],
                                 model in base[k][3])
                    for k in open_k
                ]
                c = choose_uplink(options, job.input_bytes, job.model_bytes)
                assert c is not None
                if job.cls.stages > 1:  # a pipeline job: to the head of a chain, or it waits
                    c = self.pipes.head(job, [sats[k] for k in open_k], t)
                    if c is None:
                        continue
                i = sats[open_k[c]]
                a, start = ant.start(s, i, t)
                size = job.input_bytes + (0.0 if options[c].has_model else job.model_bytes)
                rate = float(self.uplink_bps[i]) if st_rate is None else st_rate
                end = start + 8.0 * size / rate
                extra[i] += self.nodes[i].spec.seconds(self._work(i, job))
                ant.book(s, a, i, end)
                self.uplinks[job.jid] = (job, i, s)
                self.q.push(end, self._uplink_done, job, job.epoch, i, s, size, start)

    def _contact(self, pos: F, t: float) -> npt.NDArray[np.bool_]:
        """(N, S): node n is alive and above station s's mask, and s is up (every station
        at once: one rotation to Earth-fixed, one broadcast for the elevations)."""
        r = frames.eci_to_ecef(pos, t)
        rho = r[:, None, :] - self._st_ecef[None, :, :]
        sin_el = np.einsum("nsk,sk->ns", rho, self._st_up) / np.linalg.norm(rho, axis=2)
        out = (sin_el > self._st_sin_mask[None, :]) & self.alive[:, None]
        for s in range(len(self.stations)):
            if self._station_out(s, t):
                out[:, s] = False
        out = np.asarray(out, dtype=bool)
        self._contact_ns = out  # the delivery round reads optical stations' rates from it
        return out

    def _in_view(self, i: int, s: int, t: float) -> bool:
        """Node i is above station s's mask at ``t`` (the test of :meth:`_contact` for one
        pair, in plain floats: an uplink's end is checked one pair at a time)."""
        r: list[float] = self.w.orbits.positions_at(np.array([t]), np.array([i]))[0].tolist()
        x, y, z = r
        g = float(frames.gmst_rad(t))
        c, sn = math.cos(g), math.sin(g)
        ex, ey, ez = self._st_ecef_list[s]
        ux, uy, uz = self._st_up_list[s]
        rx, ry, rz = c * x + sn * y - ex, -sn * x + c * y - ey, z - ez
        sin_el = (rx * ux + ry * uy + rz * uz) / math.sqrt(rx * rx + ry * ry + rz * rz)
        return sin_el > self._st_sin_mask_list[s]

    def _station_out(self, s: int, t: float) -> bool:
        """Station ``s`` cannot be used at ``t``: an outage, or clouds over an optical
        station (:mod:`flightsw.sim.weather`)."""
        if self._optical[s] is not None and not self.sky.clear(s, t):
            return True
        return any(
            f.kind == "ground_outage" and f.station == s and f.start <= t < (f.end or math.inf)
            for f in self.w.faults
        )

    def _uplink_done(self, t: float, job: Job, epoch: int, i: int, s: int, size: float,
                     start: float) -> None:
        self.uplinks.pop(job.jid, None)
        if job.outcome or epoch != job.epoch:
            return
        ok = bool(self.alive[i]) and not self._station_out(s, t)
        if ok:
            ok = self._in_view(i, s, t)
        if not ok:  # the pass ended, the node died or the station went down: try again
            self.stats.uplink_retries += 1
            self._ground_push(job)
            return
        self.stats.uplinks += 1
        self.stats.uplink_bytes += size
        node = self.nodes[i]
        node.add_model(job.model)
        self.ledger.set_owner(job, i, epoch)
        q = self._queued(i, job, epoch, t)
        self._event(i, q, "accepted", t,
                    f"uplinked from {self.stations[s].name} since {start:.3f} ({size:.0f} B)")
        self._admit(i, q, t)

    # ================================================================ results
    def _deliver(self, i: int, res: OutResult, t: float) -> None:
        job = res.job
        got = self.ledger.record_result(
            job, res.epoch, res.node, finished_at=res.finished_at, delivered_at=t,
            started_at=res.started_at, accepted_at=res.accepted_at, energy_j=res.energy_j,
            mode=res.mode, migrations=res.migrations,
        )
        if got == "recorded":
            job.latency_s = res.latency_s
            if self.archive is not None:
                self.archive.result(t, self._result_msg(job, res.epoch, res.node, t))
        else:
            self.stats.wasted_energy_j += res.energy_j

    def _down_rates(self) -> npt.NDArray[np.float64]:
        """Each node's downlink rate now: its own radio rate, or the fastest optical
        station it is in view of (under a clear sky), if that is faster. Downlinks are
        not limited by antennas."""
        if not self._any_optical:
            return np.asarray(self.downlink_bps, dtype=np.float64)
        best = np.max(np.where(self._contact_ns, self._st_down_bps[None, :], 0.0), axis=1)
        return np.asarray(np.maximum(self.downlink_bps, best), dtype=np.float64)

    def _delivery_round(self, t: float, pos: F, relay: bool) -> None:
        down = self._down_rates()
        direct = np.nonzero(self.has_outbox & self.alive & self.contact_any)[0]
        for i in direct.tolist():
            node = self.nodes[i]
            clock = t
            for res in node.outbox:
                clock += 8.0 * res.job.output_bytes / float(down[i])
                self._deliver(i, res, clock)
            node.outbox.clear()
            self.has_outbox[i] = False
        if not relay or not np.any(self.contact_any):
            return
        cand = self.has_outbox & self.alive & ~self.contact_any
        if not np.any(cand):
            return
        nbr = self.topology.neighbours(pos, t)
        near = np.any((nbr >= 0) & self.contact_any[np.maximum(nbr, 0)], axis=1)
        for i in np.nonzero(cand & near)[0].tolist():
            for j in nbr[i].tolist():
                if j < 0 or not self.contact_any[j]:
                    continue
                link = self.topology.up(i, j, pos, t, self.alive)
                if link is None:
                    continue
                node = self.nodes[i]
                clock = t
                for res in node.outbox:
                    bits = 8.0 * res.job.output_bytes
                    clock += link.latency_s + bits / link.rate_bps
                    clock += bits / float(down[j])
                    self._deliver(i, res, clock)
                    self.stats.relayed_results += 1
                node.outbox.clear()
                self.has_outbox[i] = False
                break

    # ================================================================ migration
    def _round_state(self, t: float) -> _RoundState:
        """Every node's published figures as plain lists (cheap to index per peer)."""
        b = self.budget
        fc = b.forecast(t)
        start = fc.eclipse_start
        has = ~np.isnan(start)
        nxt = np.where(has, np.maximum(0.0, start - t), np.nan)
        dur = np.where(has, fc.eclipse_end - start, 0.0)
        return _RoundState(
            soc=(b.battery_wh / b.capacity_wh).tolist(),
            margin=(self.margins - self.load.pending_j / 3600.0).tolist(),
            temp=self.temp_c.tolist(),
            sunlit=b.illum.tolist(),
            next_eclipse=[None if math.isnan(x) else x for x in nxt.tolist()],
            eclipse=dur.tolist(),
            incoming=self.incoming_s,
        )

    def _peer(self, j: int, t: float, rs: _RoundState) -> Peer:
        """What node ``j`` publishes now (link fields empty)."""
        node = self.nodes[j]
        name, throttle_c, ops_per_s, watts, heat_capacity = self._static[j]
        running = node.running_s(t)  # backlog_s(t) is running_s(t) + queued_s()
        return Peer(
            name, rs.soc[j], rs.margin[j], rs.temp[j], throttle_c,
            running + node.queued_s() + rs.incoming[j], len(node.sched), rs.sunlit[j],
            rs.next_eclipse[j], rs.eclipse[j], ops_per_s, watts, heat_capacity,
            node.models_frozen(), node.safe_mode or not self.alive[j], 0.0, 0.0,
            running, self._work_by_priority(j),
        )

    def _work_by_priority(self, j: int) -> tuple[float, ...]:
        own = self.nodes[j].work_by_priority()
        if self.incoming_s[j] <= 0.0:
            return own
        return tuple(map(operator.add, own, self.incoming_prio[j]))

    @staticmethod
    def _candidate(q: Queued, ahead_s: float) -> Candidate:
        tk = ticket(q)
        job = tk.job
        flops = job.flops if not q.done else job.flops * (q.items - q.done) / q.items
        return Candidate(job.jid, flops, int(job.input_bytes), job.model,
                         int(job.model_bytes), job.deadline, job.value, job.priority,
                         tk.migrations, ahead_s)

    def _migration_round(self, t: float, pos: F) -> None:
        if self.policy.name == "local":  # never considers a move: skip the bookkeeping
            return
        views: dict[int, Peer] = {}
        self.full |= t - self.last_round >= self.sched_spec.reconsider_s - 1e-9
        due = self.full.copy()
        for i in self._fresh_nodes:
            due[i] = True
        self._fresh_nodes = set()
        rows = []
        for i in np.nonzero(due & self.alive & self.topology.capable)[0].tolist():
            node = self.nodes[i]
            if len(node.sched) and not node.safe_mode:
                rows.append(i)
            else:  # nothing to consider now: forget what was new
                self.fresh[i] = set()
                self.full[i] = False
                self.last_round[i] = t
        if not rows:
            return
        all_links = self.topology.links_for(np.asarray(rows, dtype=np.intp), pos, t, self.alive)
        rs = self._round_state(t)

        def view(lk: Link) -> Peer:
            v = views.get(lk.peer) or views.setdefault(lk.peer, self._peer(lk.peer, t, rs))
            return _with_link(v, lk)

        for i in rows:
            node = self.nodes[i]
            only = None if self.full[i] else self.fresh[i]
            if self.pipes.active:  # pipeline stages stay where they were placed
                only = self.pipes.movable(node.sched, only)
            if self.trains.active:  # so do training steps
                only = self.trains.movable(node.sched, only)
            self.full[i] = False
            self.fresh[i] = set()
            self.last_round[i] = t
            here = views.get(i) or views.setdefault(i, self._peer(i, t, rs))
            up = all_links[i]
            moves, here = plan_moves(node, here, LazyPeers(up, view), self.policy, t,
                                     self.rng_policy, self._candidate, only=only)
            if not moves:
                continue
            views[i] = here
            for mv in moves:
                j = self.index[mv.peer.node]  # node names are unique
                self._hand_over(i, j, mv.q, mv.cand, mv.peer, t)
                there = mv.there
                views[j] = with_queue(views[j], there.queued_work_s, there.queue_depth,
                                       there.models, there.work_by_priority)

    def _hand_over(self, i: int, j: int, q: Queued, cand: Candidate, peer: Peer,
                   t: float) -> None:
        node = self.nodes[i]
        removed = node.hand_over(q.job_id)
        assert removed is q
        self._mark(i, freed=True)
        job = ticket(q).job
        epoch = q.epoch + 1
        self.ledger.set_owner(job, i, epoch)  # still ours until the target accepts it
        size = cand.input_bytes + (0 if cand.model in peer.models else cand.model_bytes)
        dt = transfer_time_s(cand, peer)
        run_s = run_time_s(cand, peer)
        self.incoming_s[j] += run_s
        self.incoming_prio[j][cand.priority] += run_s
        tid = next(self._transfer_ids)
        self.transfers[tid] = _Transfer(i, j, q, epoch, float(size), run_s)
        self._event(i, q, "handed_over", t, f"to {self.nodes[j].name} ({dt:.3f} s transfer)",
                    target=self.nodes[j].name)
        self.q.push(t + dt, self._transfer_done, tid)

    def _transfer_done(self, t: float, tid: int) -> None:
        tr = self.transfers.pop(tid)
        self.incoming_s[tr.dst] = max(0.0, self.incoming_s[tr.dst] - tr.run_s)
        q, job = tr.q, ticket(tr.q).job
        prio = self.incoming_prio[tr.dst]
        prio[q.priority] = max(0.0, prio[q.priority] - tr.run_s)
        q.epoch = tr.epoch
        if job.outcome:
            return
        pos = self.budget.position
        src_ok = bool(self.alive[tr.src])
        link = self.topology.up(tr.src, tr.dst, pos, t, self.alive) if src_ok else None
        if link is not None:
            self.stats.handovers += 1
            self.stats.migration_bytes += tr.size
            tk = ticket(q)
            tk.migrations += 1
            dst = self.nodes[tr.dst]
            dst.add_model(job.model)
            dst.migrations_in += 1
            self.ledger.set_owner(job, tr.dst, tr.epoch)
            # the target's rule (its mitigation), for the items a checkpoint left
            q.work = self._work(tr.dst, job).share((q.items - q.done) / q.items)
            self._event(tr.dst, q, "accepted", t, f"from {self.nodes[tr.src].name}")
            self._admit(tr.dst, q, t)
            return
        self.stats.handovers_aborted += 1
        if src_ok:  # the target died or the link dropped: the source keeps the job
            self.ledger.set_owner(job, tr.src, tr.epoch)
            self._event(tr.src, q, "queued", t, "handover failed: link down or target lost")
            self._admit(tr.src, q, t)
        elif self.nodes[tr.src].lease_checked >= self.nodes[tr.src].crashes:
            self._lapse_job(job, tr.src, t)  # lease already handled: re-run it now

    # ================================================================ faults
    def _crash(self, t: float, i: int) -> None:
        if not self.alive[i]:
            return
        node = self.nodes[i]
        if node.run is not None:
            self._stop(i, t, "crash", requeue=False)
        self.alive[i] = False
        self.waiting.discard(i)
        self.need_wh[i] = np.inf
        node.crash()
        self.safe[i] = False
        self.throttled[i] = False
        node.crashes += 1
        self.lost_leases[i] = [(job, job.epoch) for job in self.ledger.jobs_of(i)]
        self._status(i, "offline", t)
        self.q.push(t + self.sched_spec.lease_s, self._lease_check, i, node.crashes)

    def _lease_check(self, t: float, i: int, crash: int) -> None:
        node = self.nodes[i]
        if node.lease_checked >= crash:
            return
        node.lease_checked = crash
        for job, epoch in self.lost_leases.pop(i, []):
            if not job.outcome and job.owner == i and job.epoch == epoch:
                self._lapse_job(job, i, t)
        self.pipes.lapsed(i, t)  # pipeline micro-batches it held (their own holders)

    def _lapse_job(self, job: Job, i: int, t: float) -> None:
        """The owner's lease lapsed: re-run a ground job with epoch + 1, or fail a job
        whose inputs were captured on board (they are gone with the node)."""
        if job.outcome:
            return
        if job.origin_node == GROUND:
            self.ledger.bump(job)
            self.ledger.set_owner(job, GROUND)
            self.stats.reruns += 1
            self._ground_push(job)
        elif job.cls.stages > 1:  # its origin may still hold the inputs: a new chain
            self.pipes.replan_at_origin(job, i, t)
        else:
            self._fail(job, None, i,
                       f"node crash: {self.nodes[i].name} lost the job and its onboard inputs", t)

    def _restart(self, t: float, i: int) -> None:
        lt = self.nodes[i].lifetime
        if self.alive[i] or (lt is not None and lt.failed):
            return  # a node whose accelerator was lost never comes back
        self.alive[i] = True
        self.nodes[i].crash()  # it boots with nothing held
        self._status(i, "online", t)
        self.full[i] = True
        self._mark(i, freed=True)
        # its first heartbeat carries no leases: the ground re-runs what it held at once
        self._lease_check(t, i, self.nodes[i].crashes)

    # ================================================================ physics step
    def _physics(self, t: float, dt: float) -> None:
        if self.manoeuvring:
            self._propulsion(t, dt)
        self.budget.step(t, dt, self.load.power(t, dt, self.alive))
        self.temp_c = self.budget.temperature_k - _KELVIN
        self.margins = self.budget.margins_wh(t)
        live = self.alive
        if np.any(live):
            soc = self.budget.battery_wh[live] / self.budget.capacity_wh[live]
            self.min_soc = min(self.min_soc, float(np.min(soc)))
            self._soc_s += float(np.mean(soc)) * dt
            self._soc_dt += dt
            self.max_temp_c = max(self.max_temp_c, float(np.max(self.temp_c[live])))

    def _limits(self, t: float) -> None:
        """The cores' limits rule for every row at once; the few that change act on it."""
        temp = self.temp_c
        soc = self.budget.battery_wh / self.budget.capacity_wh
        alive = self.alive
        f = limit_flags(temp, soc, self.throttled, self.safe, self.throttle_c, self.max_c,
                        self.floor_soc)
        changed = alive & (f.throttle_on | f.throttle_off | f.safe_on | f.safe_off)
        for i in np.nonzero(changed)[0].tolist():
            node = self.nodes[i]
            got = node.apply_limits(t, float(temp[i]), float(soc[i]), bool(f.throttle_on[i]),
                                    bool(f.throttle_off[i]), bool(f.safe_on[i]),
                                    bool(f.safe_off[i]))
            if got:
                self._carry(i, got, t)
            self.throttled[i] = node.throttled
            self.safe[i] = node.safe_auto is not None
            self.full[i] = True
            self._mark(i, freed=bool(f.safe_off[i] or f.throttle_off[i]))
            self._dispatch(i, t)

    def _guard(self, t: float) -> None:
        """The cores' energy guard for running nodes whose margin no longer covers the rest
        of their run charged at once (the few that fail this cheap test walk the eclipse
        timeline in :meth:`NodeCore.guard`)."""
        load = self.load
        busy = load.busy & self.alive
        if not np.any(busy):
            return
        margin = self.margins - load.pending_j / 3600.0
        rest = np.clip(load.start + load.latency_s - t, 0.0, None)
        watts = load.extra_w + load.idle_w
        need = watts * rest / 3600.0 / self._eta_d
        for i in np.nonzero(busy & ((need > margin) | self.budget.deficit(t)))[0].tolist():
            node = self.nodes[i]
            ol = self.budget.outlook(i, t)
            ol = ol._replace(battery_wh=ol.battery_wh - float(load.pending_j[i]) / 3600.0)
            got = node.guard(t, float(margin[i]), ol)
            if got:
                self._carry(i, got, t)
                self._dispatch(i, t)

    @property
    def mean_soc(self) -> float:
        """State of charge averaged over live nodes and over the run's physics steps (the
        mean battery reserve Equinox reports)."""
        return self._soc_s / self._soc_dt if self._soc_dt > 0 else float("nan")

    @property
    def bus_only_floor_violation_s(self) -> float:
        """Node-seconds below the floor of the bus-only twins (compute off): what no
        scheduler could have saved (:class:`~flightsw.node.budget.Budget`)."""
        return float(np.sum(self.budget.bus_floor_violation_s))

    def _wake(self, t: float) -> None:
        if not self.waiting:
            return
        idx = np.fromiter(sorted(self.waiting), dtype=np.intp)
        room = self.margins[idx] - self.load.pending_j[idx] / 3600.0 >= self.need_wh[idx]
        due = t >= self.retry_at[idx]  # the rule of NodeCore.due, vectorised
        for i in idx[room | due].tolist():
            self._dispatch(i, t)

    # ================================================================ telemetry
    def _telemetry(self, t: float) -> None:
        if self.archive is None:
            return
        b = self.budget
        pos = b.position
        lat, lon, alt = frames.ecef_to_geodetic(frames.eci_to_ecef(pos, t))
        beta = sun.beta_angle_deg(self.w.orbits, t)
        soc = b.battery_wh / b.capacity_wh
        for i in np.nonzero(self.alive)[0].tolist():
            node = self.nodes[i]
            node.tele_seq += 1
            self.archive.telemetry(
                Telemetry(
                    node=node.name,
                    seq=node.tele_seq,
                    t=t,
                    profile=node.spec.profile.name,
                    lat_deg=float(lat[i]),
                    lon_deg=float(lon[i]),
                    alt_km=float(alt[i]),
                    sunlit=float(b.illum[i]),
                    beta_deg=float(beta[i]),
                    solar_w=float(b.solar_w[i]),
                    load_w=float(b.load_w[i]),
                    battery_wh=float(b.battery_wh[i]),
                    soc=float(soc[i]),
                    temperature_c=float(self.temp_c[i]),
                    power_mode=node.mode,
                    safe_mode=node.safe_mode,
                    paused=False,
                    queue_depth=len(node.sched),
                    jobs_running=1 if node.run is not None else 0,
                    jobs_done=node.jobs_done,
                    jobs_failed=node.jobs_failed,
                    energy_used_j=node.energy_used_j,
                    upsets=int(b.upsets[i]),
                    in_contact=bool(self.contact_any[i]),
                    migrations_out=node.migrations_out,
                    migrations_in=node.migrations_in,
                )
            )

    # ================================================================ execution
    def _setup_executor(self, models_dir: Path | None) -> None:
        if models_dir is None:
            raise FlightSwError("execute: a models directory is needed to run models")
        store = ModelStore(models_dir)
        for c in self.w.classes:
            if c.model_path is not None:
                store.put_file(c.model_path)
        self._executor = Executor(store, clock=self.clock)
        self._loop = asyncio.new_event_loop()
        self._exec_rng = np.random.default_rng([self.seed, 4])

    def _run_model(self, job: Job) -> None:
        assert self._loop is not None
        specs = self._executor.input_specs(job.model)
        inputs = {}
        for s in specs:
            shape = tuple(job.items if k == 0 else (d or 1) for k, d in enumerate(s.shape or ()))
            inputs[s.name] = self._exec_rng.standard_normal(shape).astype(s.dtype)
        res = self._loop.run_until_complete(self._executor.run(job.model, inputs))
        self.stats.executed += 1
        self.stats.host_inference_s += res.host_wall_s

    # ================================================================ lifetime events
    def _schedule_lifetime(self) -> None:
        """Hand each node its drawn lifetime events (the core consults them) and wake it at
        each: a failure, a manoeuvre's start and end."""
        draw = self.w.lifetime
        if draw is None:
            return
        for i, node in enumerate(self.nodes):
            sched = schedule_of(draw, i, node.spec.profile)
            if sched is None:
                continue
            lt = node.lifetime = NodeLifetime(sched)
            for t in lt.times():
                self.q.push(t, self._lifetime, i)

    def _lifetime(self, t: float, i: int) -> None:
        node = self.nodes[i]
        lt = node.lifetime
        assert lt is not None
        was_failed = lt.failed
        got = node.lifetime_step(t)
        if got:
            self._carry(i, got, t)
        if lt.failed:
            if not was_failed and self.alive[i]:
                self._crash(t, i)  # for good: its leases lapse, the ground re-runs its jobs
            return
        if lt.window is not None:
            self.manoeuvring.add(i)
        if self.alive[i]:
            self.full[i] = True
            self._mark(i, freed=lt.window is None)
            self._dispatch(i, t)

    def _propulsion(self, t: float, dt: float) -> None:
        """Book the propulsion energy of manoeuvres over the step ending at ``t``."""
        for i in sorted(self.manoeuvring):
            lt = self.nodes[i].lifetime
            assert lt is not None
            if self.alive[i]:
                e = lt.propulsion_j(t - dt, t)
                lt.propulsion_drawn_j += e
                self.load.pending_j[i] += e
            if lt.window is None or lt.failed:
                self.manoeuvring.discard(i)

    # ================================================================ main loop
    def _schedule_faults(self) -> None:
        for f in self.w.faults:
            if f.kind == "crash":
                assert f.node is not None
                self.q.push(f.start, self._crash, f.node)
                if f.end is not None:
                    self.q.push(f.end, self._restart, f.node)

    def _drain_events(self, until: float) -> None:
        q = self.q
        while True:
            ev = q.pop_until(until)
            if ev is None:
                return
            t, handler, args = ev
            self.now = t
            self.stats.events += 1
            handler(t, *args)

    def _push_arrivals(self, until: float) -> None:
        a = self.arrivals
        k = self._next_arrival
        stop = int(np.searchsorted(a.t, until, side="right"))
        for j in range(k, stop):
            self.q.push(float(a.t[j]), self._arrive, j)
        self._next_arrival = stop

    def run(self, progress: Callable[[float], None] | None = None) -> None:
        """Simulate the whole mission, then :meth:`finish`."""
        start_wall = self.clock.perf_counter()
        w = self.w
        for i in range(self.n):
            self._status(i, "online", w.t0)
        self._schedule_faults()
        self._schedule_lifetime()
        steps = max(1, math.ceil(w.mission_s / self.step_s - 1e-9))
        tail_steps = math.ceil(self.tail_max_s / self.step_s - 1e-9)
        mig_every = max(1, round(self.sched_spec.migration_period_s / self.step_s))
        relay_every = max(1, round(_RELAY_PERIOD_S / self.step_s))
        tele_p = w.scenario.telemetry_period_s
        next_tele = w.t0 if tele_p > 0 else math.inf
        clock = self.clock.perf_counter
        ph = self.phase_s
        for k in itertools.count(1):
            if k > steps and (k > steps + tail_steps or not self._work_pending()):
                break
            t = w.t0 + k * self.step_s if k < steps else w.t_end + (k - steps) * self.step_s
            c0 = clock()
            self._push_arrivals(t)
            self._drain_events(t)
            self.now = t
            c1 = clock()
            self._physics(t, t - self.tick_start)
            self.tick_start = t
            self._limits(t)
            self._guard(t)
            self._wake(t)
            c2 = clock()
            pos = self.budget.position
            need_contact = bool(self.ground_queue) or bool(np.any(self.has_outbox))
            if need_contact and self.stations:
                contact = self._contact(pos, t)
                self.contact_any = np.asarray(contact.any(axis=1), dtype=bool)
                if self.ground_queue:
                    self._uplink_round(t, contact)
            else:
                self.contact_any = np.zeros(self.n, dtype=bool)
            mig = k % mig_every == 0
            if np.any(self.has_outbox):
                self._delivery_round(t, pos, relay=k % relay_every == 0)
            c3 = clock()
            if mig:
                self._migration_round(t, pos)
            c4 = clock()
            if t >= next_tele - 1e-9:
                self._telemetry(t)
                next_tele += tele_p
            if progress is not None and k % 360 == 0:
                progress(t)
            ph["events"] += c1 - c0
            ph["physics"] += c2 - c1
            ph["ground"] += c3 - c2
            ph["migration"] += c4 - c3
            ph["telemetry"] += clock() - c4
            self.t_stop = t
        c5 = clock()
        self.finish()
        ph["finish"] += clock() - c5
        self.wall_s = self.clock.perf_counter() - start_wall

    def _work_pending(self) -> bool:
        """Admitted work not yet finished (it still has time to meet its deadline)."""
        return bool(
            self.transfers or self.uplinks or self.ground_queue or self.pipes.pending()
            or self.trains.pending()
            or any(n.run is not None or len(n.sched) for n in self.nodes)
        )

    def finish(self) -> None:
        """End of the run: fail what is still in flight, drain results, audit."""
        if self.finished:
            return
        self.finished = True
        t = self.t_stop
        self._drain_events(t)
        self.trains.finish(t)
        for i, node in enumerate(self.nodes):
            if node.run is not None:
                run = node.run
                self._stop(i, t, _UNFINISHED, requeue=False)
                self._fail(ticket(run.q).job, run.q.epoch, i, _UNFINISHED + " (running)", t)
            for q in list(node.sched):
                node.sched.remove(q.job_id)
                late = q.deadline is not None and q.deadline < t
                self._fail(ticket(q).job, q.epoch, i,
                           _EXPIRED if late else _UNFINISHED + " (queued)", t)
        for tr in list(self.transfers.values()):
            self._fail(ticket(tr.q).job, tr.epoch, tr.src, _UNFINISHED + " (migrating)", t)
        self.transfers.clear()
        for job, _, _ in list(self.uplinks.values()):
            self._fail(job, None, GROUND, _UNFINISHED + " (uplinking)", t)
        self.uplinks.clear()
        while self.ground_queue:
            _, job = heapq.heappop(self.ground_queue)
            self._fail(job, None, GROUND, _UNFINISHED + " (waiting at the ground)", t)
        self.pipes.finish(t)
        for i in np.nonzero(~self.alive)[0].tolist():
            for job in self.ledger.jobs_of(i):
                if self.nodes[i].lease_checked < self.nodes[i].crashes:
                    self._fail(job, None, i, _UNFINISHED + " (owner crashed, lease not yet "
                               "lapsed)", t)
        self._drain_results(t)

    def _drain_results(self, t_end: float) -> None:
        """Deliver results still on board after the mission (no new work runs)."""
        t = t_end
        orbits = self.w.orbits
        self.topology.refresh_s = max(self.topology.refresh_s, _DRAIN_TOPOLOGY_REFRESH_S)
        while np.any(self.has_outbox & self.alive) and t - t_end < _DRAIN_MAX_S and self.stations:
            pos = orbits.positions(t)
            contact = self._contact(pos, t)
            self.contact_any = np.asarray(contact.any(axis=1), dtype=bool)
            self._delivery_round(t, pos, relay=True)
            t += _DRAIN_STEP_S
        self.stats.drain_s = t - t_end
        for i, node in enumerate(self.nodes):
            for res in node.outbox:
                job = res.job
                if not job.outcome and res.epoch == job.epoch:
                    self._fail(job, res.epoch, i,
                               "result not delivered (still on board at the end of the drain)",
                               t)
            node.outbox.clear()
            self.has_outbox[i] = False
        if self.archive is not None:
            self.archive.close()
        if self._loop is not None:
            self._executor.close()
            self._loop.close()
