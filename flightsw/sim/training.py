"""Data-parallel training jobs in the simulator: a class with ``train_steps = N`` runs N steps
on ``members = K`` satellites.

A training job is a run of N steps. Each time it is planned it gets K distinct live nodes
that form a chain over the ISL graph (each member linked to the next over a link that is up
now, :class:`~flightsw.sim.links.Topology`), chosen by the shared chain rule
(:func:`flightsw.constellation.chain.choose_group`) on candidates built from the
simulator's state (backlog, temperature against the throttle temperature, state of
charge, energy margin, safe mode, and positions over the checkpoint interval's expected
duration, so chains whose links are predicted to last win). Every member may head the
chain: the run is coordinated by the ground and its data shards are taken as held on
board (no uplink is modelled).

Each step runs one step job per member on its shared node core: the class's work for the
job's ``items`` samples (queue, power modes, admission, the wait for sunlight, thermal
throttling and re-execution for radiation are the core's, so they set each member's step
time). A step copy carries no deadline unless the class sets ``step_deadline_s`` (its
launch plus that): alone on its core, the core then runs it at the least-energy mode that
meets it (without one, at the least-energy mode: DVFS), and a copy that expires before it
starts is a member lost. A member's time is from the step's launch to its finish. The
step waits for the slowest member (the barrier), then all-reduces ``gradient_bytes`` over
the chain:

* ``ring``: 2 (K - 1) transfers of ``gradient_bytes / K`` each at the slowest ring link's
  rate, each paying the longest latency of a ring edge. The ring is the chain closed by
  the direct link from the last member to the first when that is up (its rate and
  latency counted with the chain's); else (or if that gives the shorter all-reduce) the
  ring folded onto the chain: members 0, 2, 4, ... out on one direction of the full-duplex
  links and the odd ones back on the other, each ring edge spanning at most two links (cut
  through: their latencies summed). Either way no directed link carries two transfers at
  once;
* ``tree``: 2 ceil(log2 K) transfers of the full ``gradient_bytes`` (reduce up, broadcast
  down, recursive doubling): at level l member k pairs with member k + 2^l along the chain,
  over the span of links between them (disjoint spans at each level), paying the longest
  span's summed latency.

The chain's links must be up when the all-reduce starts and when it ends; if one is down
the run waits, looking again every ``step_s``, and re-plans when it has been down longer
than the scheduler's ``lease_s``: K members chosen afresh by the chain rule, from the
current step (no member was lost, so each holds the parameters as of that step; the step's
compute is done again, nothing is counted as redone). After ``checkpoint_every`` steps a
checkpoint is taken (instantly; it is held by every member). The run is checked every
``step_s``: a member crashed, in safe mode, or whose step copy its core dropped is lost,
and the run re-plans from the last checkpoint on ``min(K, survivors + spares left)``
members (chosen afresh by the chain rule; each member beyond the survivors uses a spare),
the steps since the checkpoint counted as redone; with no survivor the checkpoint is gone
and the run starts again at step 0. Copies of the old plan's steps are cancelled on the
members still alive (the ``cancel_job`` telecommand). When no chain exists the run waits
and is planned again every ``step_s``; with no member left at all it fails. The job's
result (its energy the sum over every step copy that counted) is recorded once, from the
first member, when the last step's all-reduce ends.

Not modelled: sending the checkpoint (or, after a link timeout, the current parameters) to
new members, the checkpoint's write time, the data shards' uplink, compute overlapping the
all-reduce.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from flightsw.constellation.chain import Candidate, choose_group
from flightsw.node.scheduler import Queued, Work
from flightsw.sim.candidates import candidates, links_now
from flightsw.sim.ledger import GROUND, Job, Ticket
from flightsw.sim.links import Link
from flightsw.sim.node import OutResult

if TYPE_CHECKING:
    from flightsw.sim.engine import Simulation

__all__ = ["Run", "StepRecord", "TrainTicket", "Trainings", "allreduce_s", "training_metrics"]

_UNFINISHED = "unfinished at end of run"
_NO_WORK = Work(0.0, 0.0)


def allreduce_s(kind: str, gradient_bytes: float, rates_bps: Sequence[float],
                latencies_s: Sequence[float], closing_latency_s: float | None = None,
                closing_rate_bps: float | None = None) -> float:
    """Modelled seconds of one all-reduce of ``gradient_bytes`` over a chain whose link
    ``k`` (member k to k + 1) has rate ``rates_bps[k]`` and latency ``latencies_s[k]`` (see
    the module doc). ``closing_latency_s`` and ``closing_rate_bps``: the ring's direct
    closing link (both None: it is down; the ring is folded onto the chain); the ring
    closed by it counts its rate with the chain's and is taken when it is the faster of
    the two rings. One member: 0."""
    k = len(rates_bps) + 1
    if len(latencies_s) != k - 1:
        raise ValueError("latencies_s: one per link of the chain")
    if (closing_latency_s is None) != (closing_rate_bps is None):
        raise ValueError("closing_latency_s and closing_rate_bps: give both or neither")
    if k == 1:
        return 0.0
    rate = min(rates_bps)
    bits = 8.0 * gradient_bytes
    if kind == "ring":
        order = [*range(0, k, 2), *range(k - 1 - k % 2, 0, -2)]  # folded onto the chain
        lat = max(sum(latencies_s[min(a, b):max(a, b)])
                  for a, b in zip(order, order[1:] + order[:1], strict=True))
        best = 2 * (k - 1) * (bits / k / rate + lat)
        if closing_latency_s is not None and closing_rate_bps is not None:
            closed = 2 * (k - 1) * (bits / k / min(rate, closing_rate_bps)
                                    + max(*latencies_s, closing_latency_s))
            best = min(best, closed)
        return best
    if kind == "tree":
        levels = math.ceil(math.log2(k))
        total = 0.0
        for lv in range(levels):
            span = 2 ** lv
            worst = max(sum(latencies_s[a:a + span]) for a in range(0, k - span, 2 * span))
            total += 2 * (bits / rate + worst)
        return total
    raise ValueError(f"kind: {kind!r} is not 'ring' or 'tree'")


@dataclass(slots=True, eq=False)
class Run:
    """One training job's run: its current plan and progress."""

    job: Job
    spares_left: int
    members: tuple[int, ...] = ()
    crashes: tuple[int, ...] = ()  # each member's crash count when planned
    plan_no: int = 0
    step: int = 0  # steps kept (the one running is this, 0-based)
    ckpt: int = 0  # steps the last checkpoint holds
    kept_items: list[int] = field(default_factory=list)  # samples of each kept step
    step_start: float = math.nan
    done_at: dict[int, float] = field(default_factory=dict)  # member -> step finish
    barrier_at: float = math.nan
    link_down_since: float | None = None
    reducing: bool = False  # the all-reduce of the step is under way
    reduce_s: float = 0.0  # the modelled seconds of the last all-reduce started
    first_start: float = math.nan
    energy_j: float = 0.0


@dataclass(slots=True, kw_only=True)
class TrainTicket(Ticket):
    """A member's copy of one step of a training run."""

    run: Run
    plan_no: int
    step: int


class StepRecord(NamedTuple):
    """One step that completed: its run, plan, members, and when its phases ended."""

    job: str
    plan_no: int
    step: int
    members: tuple[int, ...]
    start: float
    member_s: tuple[float, ...]  # each member's launch-to-finish seconds
    barrier: float
    allreduce_s: float  # the last all-reduce's modelled seconds
    end: float


@dataclass(slots=True)
class ClassStats:
    steps: int = 0  # steps that completed (redone ones included)
    redone: int = 0
    replans: int = 0
    no_group: int = 0  # plans that found no chain (the run waited)
    members_lost: int = 0
    link_timeouts: int = 0
    stale_copies: int = 0  # step copies that finished after their plan was dropped
    step_s: list[float] = field(default_factory=list)
    allreduce_s: list[float] = field(default_factory=list)  # incl. waiting for links
    straggle_s: list[float] = field(default_factory=list)  # slowest - mean member time
    members: list[int] = field(default_factory=list)
    run_s: float = 0.0  # seconds of runs (first launch to done, or to the end of run)
    kept_items: int = 0  # samples of the steps kept by runs


class Trainings:
    """The training runs of one :class:`~flightsw.sim.engine.Simulation` (see the module
    docstring); the engine calls it from a few hooks. ``log`` holds the last
    ``log_steps`` steps that completed (over every run), for inspection and tests."""

    log_steps: int = 1000

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.active = any(c.train_steps > 0 for c in sim.w.classes)
        self.runs: dict[str, Run] = {}
        self.stats: dict[int, ClassStats] = {
            c.index: ClassStats() for c in sim.w.classes if c.train_steps > 0}
        self.log: deque[StepRecord] = deque(maxlen=self.log_steps)  # the last steps done

    # ------------------------------------------------------------------ arrival, plans
    def arrive(self, job: Job, t: float) -> None:
        """A training job was submitted (the ground coordinates it: it owns it)."""
        sim = self.sim
        sim.ledger.submit(job, GROUND)
        run = Run(job, job.cls.spares)
        self.runs[job.jid] = run
        self._plan(t, run, job.cls.members)

    def _plan(self, t: float, run: Run, size: int) -> None:
        if self.runs.get(run.job.jid) is not run or run.job.outcome:
            return
        sim = self.sim
        st = self.stats[run.job.cls.index]
        members = self._choose(run.job, size, t)
        if members is None:
            st.no_group += 1
            sim.q.push(t + sim.step_s, self._plan, run, size)
            return
        run.members = members
        run.crashes = tuple(sim.nodes[i].crashes for i in members)
        run.plan_no += 1
        if math.isnan(run.first_start):
            run.first_start = t
        self._launch(run, t)
        sim.q.push(t + sim.step_s, self._watch, run, run.plan_no)

    def _choose(self, job: Job, size: int, t: float) -> tuple[int, ...] | None:
        """``size`` members forming a chain of links up now, by the chain rule."""
        sim = self.sim
        topo = sim.topology
        alive = sim.alive
        ok = [i for i in range(sim.n) if alive[i] and topo.capable[i]]
        if len(ok) < size:
            return None
        if size == 1:
            cands = self._candidates(job, ok, t, predict=False)
            got = choose_group([job.cls.model_key], cands)
            return None if got is None else (sim.index[got[0]],)
        out = links_now(sim, t)

        cands = self._candidates(job, ok, t, predict=True)
        index = sim.index
        c = job.cls
        share = c.gradient_bytes / size if c.allreduce == "ring" else c.gradient_bytes
        got = choose_group([c.model_key] * size, cands, [round(share)] * (size - 1),
                           lambda a, b: index[b.node] in out(index[a.node]))
        return None if got is None else tuple(index[n] for n in got)

    def _candidates(self, job: Job, nodes: list[int], t: float, *,
                    predict: bool) -> list[Candidate]:
        """``nodes`` as the chain rule sees them now (backlog, model held, position,
        terminal, headroom, safe mode) and, with ``predict``, at :func:`track_times` over
        the expected duration of the steps to the next checkpoint."""
        span = None
        if predict and nodes:
            c = job.cls
            spec = self.sim.nodes[nodes[0]].spec
            one = spec.seconds(spec.work(c.flops_per_item, c.bytes_per_item, c.weight_bytes,
                                         job.items))
            rate = spec.profile.links.isl_rate_bps
            ar = 2.0 * 8.0 * c.gradient_bytes / rate if rate > 0 else 0.0
            span = (c.checkpoint_every or c.train_steps) * (one + ar)
        return candidates(self.sim, nodes, t, span)

    # ------------------------------------------------------------------ steps
    @staticmethod
    def _qid(run: Run) -> str:
        return f"{run.job.jid}:p{run.plan_no}:s{run.step}"

    def _launch(self, run: Run, t: float) -> None:
        """Step ``run.step``: one step job on every member's core."""
        sim = self.sim
        job = run.job
        c = job.cls
        run.step_start = t
        run.done_at = {}
        run.barrier_at = math.nan
        run.link_down_since = None
        run.reducing = False
        qid = self._qid(run)
        for i in run.members:
            node = sim.nodes[i]
            node.add_model(c.model_key)
            work = node.spec.work(c.flops_per_item, c.bytes_per_item, c.weight_bytes,
                                  job.items)
            dl = None if c.step_deadline_s is None else t + c.step_deadline_s
            q = Queued(job_id=qid, epoch=job.epoch, priority=job.priority, deadline=dl,
                       value=job.value, work=work, accepted_at=t,
                       payload=TrainTicket(job=job, run=run, plan_no=run.plan_no,
                                               step=run.step),
                       items=job.items)
            sim._admit(i, q, t)

    def _current(self, tk: TrainTicket) -> bool:
        run = tk.run
        return (not run.job.outcome and self.runs.get(run.job.jid) is run
                and tk.plan_no == run.plan_no and tk.step == run.step)

    def step_finished(self, i: int, q: Queued, res: OutResult, t: float) -> None:
        """Member ``i`` finished its copy of a step."""
        tk = q.payload
        assert isinstance(tk, TrainTicket)
        run = tk.run
        sim = self.sim
        if not self._current(tk) or i in run.done_at:
            self.stats[run.job.cls.index].stale_copies += 1
            sim.stats.wasted_energy_j += res.energy_j
            return
        run.done_at[i] = t
        run.energy_j += res.energy_j
        if len(run.done_at) == len(run.members):
            run.barrier_at = t
            run.reducing = True
            self._reduce(t, run, run.plan_no, run.step)

    def _chain_links(self, run: Run, t: float) -> list[Link] | None:
        sim = self.sim
        links = []
        m = run.members
        for a, b in itertools.pairwise(m):
            lk = sim.topology.up(a, b, sim.budget.position, t, sim.alive)
            if lk is None:
                return None
            links.append(lk)
        return links

    def _links_wait(self, t: float, run: Run, why: str) -> bool:
        """A chain link is down: wait and look again, or re-plan after ``lease_s``; True
        if the run re-planned."""
        sim = self.sim
        if run.link_down_since is None:
            run.link_down_since = t
        if t - run.link_down_since > sim.sched_spec.lease_s:
            self.stats[run.job.cls.index].link_timeouts += 1
            self._replan(run, [], t, why)
            return True
        sim.q.push(t + sim.step_s, self._reduce, run, run.plan_no, run.step)
        return False

    def _reduce(self, t: float, run: Run, plan_no: int, step: int) -> None:
        """The barrier is passed: all-reduce over the chain when its links are up."""
        if run.job.outcome or self.runs.get(run.job.jid) is not run or (
                run.plan_no, run.step) != (plan_no, step):
            return
        links = self._chain_links(run, t)
        if links is None:
            self._links_wait(t, run, "a chain link is down at the all-reduce")
            return
        c = run.job.cls
        m = run.members
        close: Link | None = None
        if c.allreduce == "ring" and len(m) > 2:
            close = self.sim.topology.up(m[-1], m[0], self.sim.budget.position, t,
                                         self.sim.alive)
        dur = allreduce_s(c.allreduce, c.gradient_bytes, [lk.rate_bps for lk in links],
                          [lk.latency_s for lk in links],
                          None if close is None else close.latency_s,
                          None if close is None else close.rate_bps)
        run.reduce_s = dur
        self.sim.q.push(t + dur, self._reduced, run, plan_no, step)

    def _reduced(self, t: float, run: Run, plan_no: int, step: int) -> None:
        if run.job.outcome or self.runs.get(run.job.jid) is not run or (
                run.plan_no, run.step) != (plan_no, step):
            return
        if len(run.members) > 1 and self._chain_links(run, t) is None:
            self._links_wait(t, run, "a chain link broke during the all-reduce")
            return
        st = self.stats[run.job.cls.index]
        times = [run.done_at[i] - run.step_start for i in run.members]
        st.steps += 1
        st.step_s.append(t - run.step_start)
        st.allreduce_s.append(t - run.barrier_at)
        st.straggle_s.append(max(times) - sum(times) / len(times))
        st.members.append(len(run.members))
        self.log.append(StepRecord(run.job.jid, run.plan_no, run.step, run.members,
                                   run.step_start, tuple(times), run.barrier_at,
                                   run.reduce_s, t))
        run.kept_items.append(len(run.members) * run.job.items)
        run.step += 1
        run.reducing = False
        c = run.job.cls
        if c.checkpoint_every and run.step % c.checkpoint_every == 0:
            run.ckpt = run.step
        if run.step >= c.train_steps:
            self._complete(run, t)
            return
        self._launch(run, t)

    def _complete(self, run: Run, t: float) -> None:
        sim = self.sim
        job = run.job
        del self.runs[job.jid]
        st = self.stats[job.cls.index]
        st.run_s += t - run.first_start
        st.kept_items += sum(run.kept_items)
        i = run.members[0]
        res = OutResult(job=job, epoch=job.epoch, node=i, finished_at=t,
                        started_at=run.first_start, accepted_at=job.submitted_at,
                        energy_j=run.energy_j, latency_s=t - run.first_start,
                        mode=sim.nodes[i].mode, migrations=0)
        if sim.stations:
            sim.nodes[i].outbox.append(res)
            sim.has_outbox[i] = True
        else:
            sim._deliver(i, res, t)

    # ------------------------------------------------------------------ losses
    def _watch(self, t: float, run: Run, plan_no: int) -> None:
        """Every ``step_s`` while a plan is current: are its members still there?"""
        if run.job.outcome or self.runs.get(run.job.jid) is not run or run.plan_no != plan_no:
            return
        sim = self.sim
        qid = self._qid(run)
        lost = []
        for k, i in enumerate(run.members):
            node = sim.nodes[i]
            if not sim.alive[i] or node.crashes != run.crashes[k] or node.safe_mode:
                lost.append(i)
            elif not run.reducing and i not in run.done_at and qid not in node.sched and (
                    node.run is None or node.run.q.job_id != qid):
                lost.append(i)  # its core dropped the copy
        if lost:
            names = ", ".join(sim.nodes[i].name for i in lost)
            self._replan(run, lost, t, f"member(s) lost: {names}")
            return
        sim.q.push(t + sim.step_s, self._watch, run, plan_no)

    def copy_failed(self, i: int, q: Queued, reason: str, t: float) -> None:
        """Member ``i``'s core failed its copy of a step (shed, cancelled)."""
        tk = q.payload
        assert isinstance(tk, TrainTicket)
        if self._current(tk) and i in tk.run.members and i not in tk.run.done_at:
            self._replan(tk.run, [i], t, f"{self.sim.nodes[i].name}: {reason}")

    def _replan(self, run: Run, lost: list[int], t: float, why: str) -> None:
        """Plan the run afresh (module doc): with ``lost`` members, from the last
        checkpoint on ``min(K, survivors + spares left)`` members; with none lost (a link
        timed out), from the current step, whose parameters every member holds."""
        sim = self.sim
        job = run.job
        st = self.stats[job.cls.index]
        st.replans += 1
        st.members_lost += len(lost)
        survivors = [i for i in run.members if i not in lost]
        qid = self._qid(run)
        if lost:
            if not survivors:
                run.ckpt = 0  # every copy of the checkpoint is gone
            st.redone += run.step - run.ckpt
            del run.kept_items[run.ckpt:]
            run.step = run.ckpt
        run.plan_no += 1  # the old plan's events and copies are stale from now
        sim.ledger.bump(job)
        for i in run.members:  # cancel the old plan's copies where they still are
            node = sim.nodes[i]
            if sim.alive[i] and (qid in node.sched or (
                    node.run is not None and node.run.q.job_id == qid)):
                ok, _, _, eff = node.command("cancel_job", {"job_id": qid}, t)
                if ok:
                    sim._carry(i, eff, t)
                    sim._dispatch(i, t)
                    sim._mark(i, freed=True)
        size = min(job.cls.members, len(survivors) + run.spares_left)
        if size < 1:
            del self.runs[job.jid]
            st.run_s += t - run.first_start
            sim._fail(job, None, GROUND, f"training: every member lost ({why})", t)
            return
        run.spares_left -= max(0, size - len(survivors))
        if sim.archive is not None:
            sim._event(lost[0] if lost else run.members[0], _note(job), "queued", t,
                       f"training re-planned from step {run.step}: {why}")
        self._plan(t, run, size)

    # ------------------------------------------------------------------ engine hooks
    @staticmethod
    def owns(q: Queued) -> bool:
        return isinstance(q.payload, TrainTicket)

    @staticmethod
    def movable(sched: Any, only: set[str] | None) -> set[str] | None:
        """``only`` (None: every queued job) less the step copies, which stay put."""
        steps = {q.job_id for q in sched if isinstance(q.payload, TrainTicket)}
        if not steps:
            return only
        return (only if only is not None else {q.job_id for q in sched}) - steps

    def pending(self) -> bool:
        return bool(self.runs)

    def finish(self, t: float) -> None:
        """End of run: fail the runs still going."""
        sim = self.sim
        for run in list(self.runs.values()):
            st = self.stats[run.job.cls.index]
            if not math.isnan(run.first_start):
                st.run_s += t - run.first_start
            st.kept_items += sum(run.kept_items)
            sim._fail(run.job, None, GROUND,
                      f"{_UNFINISHED} (training: {run.step} of {run.job.cls.train_steps} "
                      "steps kept)", t)
        self.runs.clear()


def _note(job: Job) -> Queued:
    """A stand-in queue entry to name ``job`` in an archived event."""
    return Queued(job_id=job.jid, epoch=job.epoch, priority=job.priority,
                  deadline=job.deadline, value=job.value, work=_NO_WORK, accepted_at=0.0)


def _pct(xs: list[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(xs), q)) if xs else None


def training_metrics(sim: Simulation) -> dict[str, Any]:
    """A training study's figures per training class of a finished run (see
    ``docs/scenarios.md``)."""
    out: dict[str, Any] = {}
    tr: Trainings = sim.trains
    for c in sim.w.classes:
        if c.train_steps <= 0:
            continue
        st = tr.stats[c.index]
        jobs = [j for j in sim.ledger.jobs.values() if j.cls.index == c.index]
        total = sum(st.step_s)
        out[c.name] = {
            "members": c.members,
            "allreduce": c.allreduce,
            "runs_submitted": len(jobs),
            "runs_completed": sum(1 for j in jobs if j.outcome == "done"),
            "steps_done": st.steps,
            "redone_steps": st.redone,
            "replans": st.replans,
            "no_group": st.no_group,
            "members_lost": st.members_lost,
            "link_timeouts": st.link_timeouts,
            "stale_copies": st.stale_copies,
            "step_s_mean": float(np.mean(st.step_s)) if st.step_s else None,
            "step_s_p95": _pct(st.step_s, 95),
            "allreduce_s_mean": float(np.mean(st.allreduce_s)) if st.allreduce_s else None,
            "comm_share": sum(st.allreduce_s) / total if total > 0 else None,
            "straggler_share": sum(st.straggle_s) / total if total > 0 else None,
            "members_mean": float(np.mean(st.members)) if st.members else None,
            "items_per_s": st.kept_items / st.run_s if st.run_s > 0 else None,
        }
    return out
