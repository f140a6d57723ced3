"""The node service: one satellite's onboard computer as an asyncio service.

It is a driver of the node core (:mod:`flightsw.node.core`), which makes every decision;
the service carries the core's effects out over the bus, runs inference for real, and
advances a one-row physics state. Its concerns live in sibling modules: telecommands
(:mod:`~flightsw.node.commands`), the ground link (:mod:`~flightsw.node.downlink`),
constellation migration (:mod:`~flightsw.node.migration`) and reports
(:mod:`~flightsw.node.telemetry`).

It owns one TaskGroup of named tasks:

* ``physics``   advances orbit, power and thermal state every ``physics_step_s`` of mission
  time, charging the battery for modelled compute (never for host time), and applies limits;
* ``telemetry`` publishes housekeeping every ``telemetry_period_s``;
* ``state``     publishes the compact constellation state (also the lease heartbeat);
* ``jobs``, ``commands``, ``models``, ``handovers``, ``stations``, ``training`` read their
  inboxes;
* ``worker``    asks the core for the next job whenever something changed;
* ``downlink``  sends results inside contact windows;
* ``peers``, ``migration`` (unless the policy is ``local``) run migration rounds;
* ``job:<id>``  the running job, ``handover:<id>`` a job in transfer, ``stage:<id>`` a
  pipeline stage's outputs on their way to the next member, ``train:<id>`` a training job
  (:mod:`~flightsw.node.training`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, Literal, Self

import numpy as np

from flightsw.bus import Bus, Message, Subscription
from flightsw.clock import Clock
from flightsw.constellation import make_policy
from flightsw.exceptions import (
    AuthError,
    FlightSwError,
    InferenceError,
    JobRejected,
    ModelStoreError,
    ProtocolError,
    UnknownModelError,
)
from flightsw.models.cost import ModelCost, analyse
from flightsw.models.executor import Executor, Partial
from flightsw.models.pool import InferencePool
from flightsw.models.store import ModelStore
from flightsw.node.budget import Budget
from flightsw.node.checkpoint import RESUME_S, SUSPEND_S
from flightsw.node.commands import CommandDesk
from flightsw.node.config import NodeConfig
from flightsw.node.core import NodeCore
from flightsw.node.downlink import Downlink
from flightsw.node.effects import (
    Effect,
    Failed,
    JobNote,
    Run,
    Started,
    StatusChanged,
    Stopped,
    Suspended,
)
from flightsw.node.identity import job_warrants, node_sealer
from flightsw.node.jobs import Intake, peek_job_id, read_job
from flightsw.node.lifetime import (
    FAILED_REASON,
    LifetimeSchedule,
    NodeLifetime,
    node_schedule,
)
from flightsw.node.load import ComputeLoad
from flightsw.node.migration import Migration
from flightsw.node.outlook import Outlook
from flightsw.node.pipeline import (
    Following,
    LinkQueue,
    check_sender,
    firsts,
    follow_next,
    is_passed_on,
    pass_on,
    spent,
)
from flightsw.node.scheduler import OnboardScheduler, Queued, Work
from flightsw.node.spec import NodeSpec
from flightsw.node.telemetry import node_state, telemetry
from flightsw.node.training import Trainer
from flightsw.node.upsets import Hits, corrupt_one_bit, draw_hits
from flightsw.orbitdesc import orbit_info
from flightsw.physics.ground import Station
from flightsw.physics.orbit import Orbits
from flightsw.protocol import (
    ErrorEvent,
    GroundStations,
    Handover,
    JobEvent,
    JobResult,
    JobSubmit,
    ModelChunk,
    ModelMissing,
    ModelStored,
    NodeState,
    Status,
    Telemetry,
    dump,
    parse,
    topics,
)
from flightsw.protocol.codec import encode
from flightsw.protocol.messages import Message as Wire
from flightsw.protocol.messages import Progress, arrays_to_tensors, tensors_to_arrays
from flightsw.protocol.sign import Sealer
from flightsw.protocol.training import train_inbox
from flightsw.taskset import cancel_all
from hardware_profiles import HardwareProfile

__all__ = ["Node"]

log = logging.getLogger("flightsw.node")

_RESULT_CACHE = 256


class Node:
    """One satellite node. ``async with Node(...) as node:`` runs it until the block exits."""

    def __init__(
        self,
        config: NodeConfig,
        bus: Bus,
        clock: Clock,
        profile: HardwareProfile,
        orbits: Orbits,
        *,
        sealer: Sealer | None = None,
        will_seq: int | None = None,
        inference: InferencePool | None = None,
        lifetime: LifetimeSchedule | None = None,
    ) -> None:
        self.config = config
        # seals what the node publishes (unsealed without a key); ``will_seq`` is the
        # number of the sealed last will the runner gave the broker, named in the status
        self.sealer = sealer if sealer is not None else node_sealer(config)
        self.will_seq = will_seq
        self.warrants = job_warrants(config)
        self.id = config.node_id
        self.bus = bus
        self.clock = clock
        self.profile = profile
        self.orbits = orbits
        self._orbit_epoch = float(getattr(orbits, "epoch", clock.now()))
        self.store = ModelStore(config.data_dir / "models")
        # a node host passes its pool: sessions and threads shared by its nodes
        self.executor = Executor(self.store, clock=clock, pool=inference)
        self._costs: dict[str, ModelCost] = {}
        self.core = NodeCore(self.id, NodeSpec.of(profile),
                             overload_backlog_s=config.overload_backlog_s,
                             max_queue=config.max_queue)
        if lifetime is not None:  # given: a scenario's drawn events (the node host)
            self.core.lifetime = NodeLifetime(lifetime)
        elif config.lifetime_seed is not None:  # lifetime events drawn as the simulator's
            self.core.lifetime = NodeLifetime(node_schedule(
                profile, clock.now(), config.mission_year, config.lifetime_seed))
        self.budget = Budget.from_profiles(
            [profile],
            orbits,
            clock.now(),
            initial_soc=config.initial_soc,
            initial_temperature_c=config.initial_temperature_c,
            seed=config.seed,
        )
        self.load = ComputeLoad(np.array([profile.compute.idle_w]))
        self._margin_wh = self.budget.margin_wh(0, clock.now())
        self.policy = make_policy(config.policy)
        self.rng = np.random.default_rng(config.seed)
        self.commands = CommandDesk(self)
        self.downlink = Downlink(self)
        self.migration = Migration(self)
        self.trainer = Trainer(self)
        self.upsets_mitigated = 0
        self.silent_corruptions = 0
        self.telemetry_sent = 0
        self._seq = 0
        self.epochs: dict[str, int] = {}  # highest epoch seen per job
        self.following = Following()  # pipeline stages whose next member it follows
        self.links_out = LinkQueue()  # hand-overs queued on each outgoing ISL
        self._results: OrderedDict[str, JobResult] = OrderedDict()
        self._parked: dict[str, list[tuple[Intake, float]]] = {}  # jobs awaiting a model
        self._runs: dict[int, asyncio.Task[None]] = {}  # run token -> its task
        # run token -> (stop at the next item boundary, wake the modelled wait)
        self._suspend: dict[int, tuple[threading.Event, asyncio.Event]] = {}
        self._partials: dict[str, list[Partial]] = {}  # job -> outputs of the items done
        self._wake = asyncio.Event()
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stack = contextlib.AsyncExitStack()

    # -- what tests and the demo read ------------------------------------------------------
    @property
    def sched(self) -> OnboardScheduler:
        return self.core.sched

    @property
    def throttled(self) -> bool:
        return self.core.throttled

    @property
    def mode(self) -> str:
        return self.core.mode

    @property
    def safe_mode(self) -> bool:
        return self.core.safe_mode

    @property
    def results_held(self) -> int:
        return self.downlink.held

    @property
    def stations(self) -> list[Station]:
        return self.downlink.stations

    def in_contact(self, now: float) -> bool:
        return self.downlink.in_contact(now)

    def telemetry(self) -> Telemetry:
        self._seq += 1
        return telemetry(self, self._seq)

    def node_state(self) -> NodeState:
        return node_state(self)

    async def hand_over(self, job_id: str, dst: str, transfer_s: float = 0.0) -> bool:
        return await self.migration.hand_over(job_id, dst, transfer_s)

    def margin_wh(self, now: float) -> float:
        """Energy the node may spend now and keep its floor through the next eclipse (the
        forecast of the last physics step, less what ran since: as the simulator)."""
        return self._margin_wh - self.load.unbooked_wh(0)

    # -- lifecycle -----------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        await self._stack.__aenter__()
        tg = asyncio.TaskGroup()
        await self._stack.enter_async_context(tg)
        self._tg = tg
        inboxes: dict[str, tuple[str, Callable[[Message], Awaitable[None]]]] = {
            "jobs": (topics.job(self.id), self._on_job),
            "commands": (topics.command(self.id), self.commands.on_message),
            "models": (topics.model(self.id), self._on_model),
            "handovers": (topics.handover_inbox(self.id), self._on_handover),
            "training": (train_inbox(self.id), self.trainer.on_message),
            "stations": (topics.GROUND_STATIONS, self._on_stations),
        }
        for name, (topic, handler) in inboxes.items():
            sub = await self._stack.enter_async_context(self.bus.subscribe(topic, qos=1))
            self.spawn(self._inbox(sub, handler), name)
        await self._publish_status()
        # the order of the periodic tasks is the order of their turns at equal mission times:
        # physics, then reports, then the migration round (as the simulator's step)
        self.spawn(self._physics_loop(), "physics")
        self.spawn(self._telemetry_loop(), "telemetry")
        self.spawn(self._state_loop(), "state")
        self.spawn(self._worker(), "worker")
        self.spawn(self.downlink.serve(), "downlink")
        if self.policy.name != "local":
            peers = await self._stack.enter_async_context(
                self.bus.subscribe(f"{topics.PREFIX}/+/state", qos=0)
            )
            self.spawn(self.migration.listen(peers), "peers")
            self.spawn(self.migration.rounds(), "migration")
        log.info("node %s online (profile %s)", self.id, self.profile.name)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(Exception):
            offline = Status(node=self.id, state="offline", t=self.clock.now(),
                             profile=self.profile.name)
            await self.send(topics.status(self.id), offline, qos=1, retain=True)
        alive = await cancel_all(self._tasks, self.clock)
        if alive:
            log.error("node %s: tasks still running after repeated cancellation: %s",
                      self.id, ", ".join(alive))
        try:
            await self._stack.__aexit__(None, None, None)
        finally:
            self.executor.close()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """A named task of this node's TaskGroup, remembered so exit cancels it."""
        assert self._tg is not None
        task = self._tg.create_task(coro, name=f"{self.id}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def wake(self) -> None:
        self._wake.set()

    async def _inbox(self, sub: Subscription, handler: Callable[[Message], Awaitable[None]]
                     ) -> None:
        async for msg in sub:
            try:
                await handler(msg)
            except FlightSwError as exc:  # a bad message never stops the node
                await self.error("internal", str(exc), topic=msg.topic)
            except Exception as exc:
                log.exception("node %s: handler failed on %s", self.id, msg.topic)
                await self.error("internal", f"{type(exc).__name__}: {exc}", topic=msg.topic)

    # -- publishing ----------------------------------------------------------------------
    def seal(self, topic: str, msg: Wire) -> bytes:
        """The bytes of ``msg`` as published on ``topic``: sealed with the node's key."""
        return encode(self.sealer.seal(topic, msg.model_dump(mode="python")))

    async def send(self, topic: str, msg: Wire, *, qos: int = 1, retain: bool = False) -> None:
        """Publish ``msg`` sealed (everything a node says to the ground goes this way)."""
        await self.bus.publish(topic, self.seal(topic, msg), qos=qos, retain=retain)

    async def error(
        self,
        code: str,
        message: str,
        *,
        field: str | None = None,
        job_id: str | None = None,
        topic: str | None = None,
    ) -> None:
        ev = ErrorEvent(node=self.id, t=self.clock.now(), code=code, message=message,
                        field=field, job_id=job_id, topic=topic)
        log.warning("node %s: %s: %s", self.id, code, message)
        await self.send(topics.event(self.id), ev)

    async def event(self, q: Queued, state: Any, detail: str | None = None,
                    target: str | None = None) -> None:
        ev = JobEvent(job_id=q.job_id, epoch=q.epoch, node=self.id, state=state,
                      t=self.clock.now(), detail=detail, target=target)
        await self.send(topics.event(self.id), ev)

    def _send_result(self, result: JobResult) -> None:
        self._results[result.job_id] = result
        while len(self._results) > _RESULT_CACHE:
            self._results.popitem(last=False)
        self.downlink.send(topics.result(self.id), result)

    def _failed(self, job_id: str, epoch: int, reason: str, q: Queued | None = None,
                **extra: Any) -> JobResult:
        if q is not None:
            extra.update(submitted_at=_intake(q).job.submitted_at, deadline=q.deadline,
                         value=q.value, accepted_at=q.accepted_at)
        return JobResult(job_id=job_id, epoch=epoch, node=self.id, status="failed",
                         reason=reason, finished_at=self.clock.now(), **extra)

    async def _publish_status(self) -> None:
        state: Literal["safe", "online"] = "safe" if self.core.safe_mode else "online"
        status = Status(node=self.id, state=state, t=self.clock.now(), profile=self.profile.name,
                        orbit=orbit_info(self.config.orbit, self._orbit_epoch),
                        will_seq=self.will_seq)
        await self.send(topics.status(self.id), status, qos=1, retain=True)

    async def carry(self, effects: list[Effect]) -> None:
        """Carry out what the core decided."""
        for e in effects:
            if isinstance(e, Started):
                self._start(e.run)
            elif isinstance(e, Stopped):
                self.load.close(0, self.clock.now(), complete=False)
                task = self._runs.pop(e.run.token, None)
                if task is not None:
                    task.cancel()
            elif isinstance(e, Suspended):
                extra_w = float(self.load.extra_w[0])
                self.load.close(0, self.clock.now(), complete=False)
                self.load.pending_j[0] += SUSPEND_S * extra_w  # writing the checkpoint
                self._runs.pop(e.run.token, None)
                flag = self._suspend.pop(e.run.token, None)
                if flag is not None:  # its task keeps the items done and ends
                    flag[0].set()
                    flag[1].set()
            elif isinstance(e, JobNote):
                await self.event(e.q, e.state, e.detail, e.target)
            elif isinstance(e, Failed):
                self._send_result(self._failed(e.q.job_id, e.q.epoch, e.reason, e.q))
            elif isinstance(e, StatusChanged):
                await self._publish_status()

    # -- jobs ----------------------------------------------------------------------------
    def cost(self, model_hash: str) -> ModelCost:
        c = self._costs.get(model_hash)
        if c is None:
            c = analyse(self.store.path(model_hash), model_hash=model_hash)
            self._costs[model_hash] = c
        return c

    def _work(self, model_hash: str, items: int) -> Work:
        c = self.cost(model_hash)
        return self.core.spec.work(c.flops_per_item, c.bytes_per_item, c.weight_bytes, items)

    async def _on_job(self, msg: Message) -> None:
        payload = msg.payload
        try:
            intake = read_job(payload, self.config.max_payload_bytes)
        except (ProtocolError, JobRejected) as exc:
            jid, ep = (
                peek_job_id(payload) if len(payload) <= self.config.max_payload_bytes else (None, 0)
            )
            text = str(exc)
            # the codes are set where the error is raised; a schema error is an invalid job
            code = exc.code if exc.code in ("oversize", "undecodable") else "invalid_job"
            field = exc.field if code == "invalid_job" else None
            await self._refuse(jid, ep, code, text, field, topic=msg.topic)
            return
        if self.warrants is not None:
            try:
                self.warrants.check(intake.job)
            except AuthError as exc:
                await self._refuse(intake.job.job_id, intake.job.epoch, exc.code, str(exc),
                                   exc.field, topic=msg.topic)
                return
        try:
            check_sender(intake.job, self.id, None)  # a pipeline's stage 0 only
        except JobRejected as exc:
            await self._refuse(intake.job.job_id, intake.job.epoch, exc.code, exc.reason,
                               exc.field, topic=msg.topic)
            return
        await self._admit(intake)

    async def _admit(self, intake: Intake) -> None:
        job = intake.job
        if self.core.lifetime is not None and self.core.lifetime.failed:
            # taken by no one: its lease lapses and the ground runs it elsewhere
            await self.error("node_failed", f"{FAILED_REASON}: job not taken",
                             job_id=job.job_id)
            return
        known = self.epochs.get(job.job_id)
        if known is not None and job.epoch <= known:
            cached = self._results.get(job.job_id)
            if cached is not None and cached.epoch == job.epoch:
                # at-least-once delivery: resend the result, harmless for the receiver
                self.downlink.send(topics.result(self.id), cached)
            return
        self.epochs[job.job_id] = job.epoch
        if not self.store.has(job.model) and self.config.model_wait_s > 0:
            # fetch: ask for the model and hold the job until it arrives or time runs out
            first = job.model not in self._parked
            self._parked.setdefault(job.model, []).append(
                (intake, self.clock.now() + self.config.model_wait_s)
            )
            if first:
                log.info("node %s: model %s missing for %s; asking for it", self.id,
                         job.model[:12], job.job_id)
                missing = ModelMissing(node=self.id, t=self.clock.now(), model=job.model,
                                       job_id=job.job_id)
                await self.send(topics.event(self.id), missing)
            return
        try:
            if not self.store.has(job.model):
                raise UnknownModelError(
                    f"model: unknown model hash {job.model} (upload it to this node first)"
                )
            self.executor.validate_inputs(job.model, intake.arrays)
            work = self._work(job.model, intake.items)
            resumed = self._resume_from(job, intake.items)
        except JobRejected as exc:
            await self._refuse(job.job_id, job.epoch, exc.code, exc.reason, exc.field)
            return
        except UnknownModelError as exc:
            await self._refuse(job.job_id, job.epoch, "unknown_model", str(exc), "model")
            return
        except (ModelStoreError, InferenceError) as exc:
            await self._refuse(job.job_id, job.epoch, "invalid_job", str(exc), "model")
            return
        now = self.clock.now()
        q = Queued(job_id=job.job_id, epoch=job.epoch, priority=job.priority,
                   deadline=job.deadline, value=job.value, work=work, accepted_at=now,
                   payload=intake, items=intake.items)
        if resumed is not None and job.progress is not None:
            # only the items left run here, after the checkpoint is restored
            q.done = resumed.done
            q.work = work.share((intake.items - resumed.done) / intake.items)
            q.overhead_s = RESUME_S
            q.suspensions = job.progress.suspensions
            if self.config.execute:
                self._partials[job.job_id] = [resumed]
        shed = self.core.accept(q, now)
        follow_next(self, job)  # a pipeline stage: the next member's heartbeats
        await self.event(q, "accepted")
        await self.carry(shed)
        self.wake()

    async def _refuse(self, job_id: str | None, epoch: int, code: str, reason: str,
                      field: str | None, *, topic: str | None = None, **extra: Any) -> None:
        """A job that cannot run here: an error event naming the field, and (when its id
        could be read) a failed result with the same reason."""
        await self.error(code, reason, field=field, job_id=job_id, topic=topic)
        if job_id is not None:
            self.core.jobs_failed += 1
            self._send_result(self._failed(job_id, epoch, f"{code}: {reason}", **extra))

    # -- worker --------------------------------------------------------------------------
    async def _worker(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._dispatch()

    def outlook(self, now: float) -> Outlook:
        """This node's eclipse timeline and battery net of energy not yet booked."""
        ol = self.budget.outlook(0, now)
        return ol._replace(battery_wh=ol.battery_wh - self.load.unbooked_wh(0))

    async def _dispatch(self) -> None:
        now = self.clock.now()
        if self.core.lifetime is not None:  # a window may have opened since the last step
            await self._lifetime(now)
        ol = self.outlook(now) if len(self.core.sched) else None
        effects = self.core.dispatch(now, self.budget.temperature_c_of(0), self.margin_wh(now),
                                     ol)
        await self.carry(effects)

    def _start(self, run: Run) -> None:
        d = run.d
        self.load.begin(0, run.start, d.latency_s, d.mode.watts)
        self._suspend[run.token] = (threading.Event(), asyncio.Event())
        self._runs[run.token] = self.spawn(self._run(run), f"job:{run.q.job_id}")

    def take_progress(self, job_id: str, done: int, suspensions: int) -> Progress | None:
        """The outputs of the ``done`` items a suspended job finished here (the core's
        checkpoint), as it leaves for another node; None when none were kept (it never ran
        here, or ran without real inference). Real inference may have run ahead of the
        modelled run: the items past the checkpoint are not sent, the next node runs them."""
        parts = [p for p in self._partials.pop(job_id, []) if p.done]
        done = min(done, sum(p.done for p in parts))
        if done <= 0:
            return None
        outputs = {n: np.concatenate([p.outputs[n] for p in parts], axis=0)[:done]
                   for n in parts[0].outputs}
        return Progress(done=done, outputs=arrays_to_tensors(outputs), suspensions=suspensions)

    def _resume_from(self, job: JobSubmit, items: int) -> Partial | None:
        """The items an earlier holder did (``job.progress``), checked against the batch;
        ``JobRejected`` names what does not fit."""
        pg = job.progress
        if pg is None:
            return None
        if pg.done >= items:
            raise JobRejected(f"progress.done: {pg.done} items done of a batch of {items} "
                              "(a finished job is not handed over)", field="progress")
        try:
            outputs = tensors_to_arrays(pg.outputs, "progress.outputs")
        except ProtocolError as exc:
            raise JobRejected(str(exc), field="progress") from exc
        names = self.cost(job.model).outputs
        if sorted(outputs) != sorted(names):
            raise JobRejected(f"progress.outputs: {sorted(outputs)} are not the model's "
                              f"outputs {sorted(names)}", field="progress")
        for name, arr in outputs.items():
            if arr.ndim == 0 or arr.shape[0] != pg.done:
                raise JobRejected(f"progress.outputs.{name}: first axis "
                                  f"{arr.shape[0] if arr.ndim else 0}, not the {pg.done} "
                                  "items done", field="progress")
        return Partial(outputs, 0.0, 0, pg.done, True)

    def _left_s(self, run: Run) -> float:
        """The modelled wait of a run starting now: its latency, after the checkpoint of a
        suspension still being written (a duration, not a difference of mission times)."""
        return run.d.latency_s + max(0.0, run.start - self.clock.now())

    async def _modelled_wait(self, run: Run, woken: asyncio.Event) -> None:
        """Until the run's modelled time is over, or ``woken`` (a suspension) comes first."""
        wake = asyncio.ensure_future(woken.wait())
        sleep = asyncio.ensure_future(self.clock.sleep(self._left_s(run)))
        try:
            await asyncio.wait({sleep, wake}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (sleep, wake):
                t.cancel()

    async def _execute(self, run: Run, intake: Intake) -> Partial | None:
        """Run the job's items not done yet for real while the modelled run lasts; on a
        suspension, stop at the next item boundary and keep the outputs so far (``None``)."""
        q = run.q
        stop, woken = self._suspend[run.token]
        kept = self._partials.get(q.job_id, [])
        start = sum(p.done for p in kept)
        chunk = max(1, math.ceil(intake.items / 16))
        exec_task = asyncio.ensure_future(self.executor.run_items(
            intake.job.model, intake.arrays, start=start, chunk=chunk, stop=stop))
        await self._modelled_wait(run, woken)
        if stop.is_set():  # suspended: keep the items done, end here
            part = await exec_task
            self._partials[q.job_id] = [*kept, part]
            return None
        part = await exec_task
        self._partials.pop(q.job_id, None)
        parts = [p for p in (*kept, part) if p.done]
        outputs = {n: np.concatenate([p.outputs[n] for p in parts], axis=0)
                   for n in parts[0].outputs} if parts else {}
        return Partial(outputs, sum(p.host_wall_s for p in parts), 0,
                       sum(p.done for p in parts), False)

    async def _run(self, run: Run) -> None:
        q, d = run.q, run.d
        intake = _intake(q)
        job = intake.job
        await self.event(q, "running", f"mode {d.mode.name}")
        upsets_before = self.budget.upsets_of(0)
        hits = Hits(0, 0, 0, 0)
        stop = self._suspend[run.token][0]
        try:
            if self.config.execute:
                res = await self._execute(run, intake)
                if res is None:
                    return  # suspended: the core has queued it again
                produced = res.outputs
                hits = self._radiation(job.model, intake.items, upsets_before)
                if hits.silent:
                    produced = corrupt_one_bit(produced, self.rng)
                outputs = arrays_to_tensors(produced)
                host = res.host_wall_s
            else:
                await self._modelled_wait(run, self._suspend[run.token][1])
                if stop.is_set():
                    return
                outputs, host = {}, 0.0
        except asyncio.CancelledError:
            stop.set()  # the run is stopped: no more items
            self._suspend.pop(run.token, None)
            raise
        except (InferenceError, JobRejected, FlightSwError) as exc:
            self._suspend.pop(run.token, None)
            if self.core.abort(run.token) is not None:
                self._runs.pop(run.token, None)
                self.load.close(0, self.clock.now(), complete=True)
                self._send_result(self._failed(q.job_id, q.epoch, f"inference: {exc}", q,
                                               started_at=run.start))
            self.wake()
            return
        if self.core.finish(run.token) is None:
            return  # stopped meanwhile (its task was cancelled too late to notice)
        self._runs.pop(run.token, None)
        self._suspend.pop(run.token, None)
        self.load.close(0, self.clock.now(), complete=True)
        if is_passed_on(job):  # a pipeline stage before the last: on to the next member
            if outputs:
                self.spawn(pass_on(self, q, job, outputs, d.latency_s, d.energy_j + q.spent_j),
                           f"stage:{q.job_id}")
            else:
                self._send_result(self._failed(q.job_id, q.epoch, "pipeline: no outputs to "
                                               "pass on (this node does not execute)", q))
            self.wake()
            return
        # a pipeline's last stage reports the whole pipeline: from stage 0's start, with the
        # modelled time and energy of every stage
        before_s, before_j = spent(job)
        accepted, started = firsts(job, q.accepted_at,
                                   run.start if q.first_start is None else q.first_start)
        self._send_result(
            JobResult(
                job_id=q.job_id,
                epoch=q.epoch,
                node=self.id,
                status="done",
                outputs=outputs,
                items=intake.items,
                host_wall_s=host,
                modelled_latency_s=d.latency_s + before_s,
                modelled_energy_j=d.energy_j + q.spent_j + before_j,
                power_mode=d.mode.name,
                submitted_at=job.submitted_at,
                accepted_at=accepted,
                started_at=started,
                suspensions=q.suspensions,
                finished_at=self.clock.now(),
                deadline=q.deadline,
                value=q.value,
                migrations=job.migrations,
                upsets_hit=hits.weights + hits.activations,
                upsets_mitigated=hits.mitigated,
                corrupted=hits.silent > 0,
            )
        )
        self.wake()

    def _radiation(self, model: str, items: int, upsets_before: int) -> Hits:
        """Upsets in this job's memory while it ran, and what the mitigations made of them."""
        c = self.cost(model)
        rad = self.profile.radiation
        hits = draw_hits(
            self.rng,
            self.budget.upsets_of(0) - upsets_before,
            8.0 * c.weight_bytes,
            8.0 * c.bytes_per_item * items,
            rad.memory_bits,
            rad.mitigation,
        )
        self.upsets_mitigated += hits.mitigated
        self.silent_corruptions += hits.silent
        return hits

    # -- physics -------------------------------------------------------------------------
    async def _physics_loop(self) -> None:
        step = self.config.physics_step_s
        last = self.clock.now()
        while True:
            await self.clock.sleep(step)
            now = self.clock.now()
            dt = now - last
            b = self.budget
            lt = self.core.lifetime
            if lt is not None:  # a manoeuvre's thruster, booked as the simulator books it
                e = lt.propulsion_j(last, now)
                lt.propulsion_drawn_j += e
                self.load.pending_j[0] += e
            b.step(now, dt, self.load.power(now, dt))
            self._margin_wh = b.margin_wh(0, now)
            last = now
            core = self.core
            changed, effects = core.limits(now, b.temperature_c_of(0), b.soc_of(0))
            await self.carry(effects)
            if core.run is not None:  # the energy guard (the simulator's twin: Simulation._guard)
                guarded = core.guard(now, self.margin_wh(now), self.outlook(now))
                if guarded:
                    changed = True
                    await self.carry(guarded)
            if lt is not None and await self._lifetime(now):
                changed = True
            await self._expire_parked(now)
            if changed or (core.waiting() and core.due(now, self.margin_wh(now))):
                await self._dispatch()

    async def _lifetime(self, now: float) -> bool:
        """Apply the lifetime events due (the core decides); whether compute may change."""
        lt = self.core.lifetime
        assert lt is not None
        before = (lt.failed, lt.window)
        await self.carry(self.core.lifetime_step(now))
        if lt.failed and not before[0]:
            self._parked.clear()
            await self.error("accelerator_lost", f"{FAILED_REASON}: compute halted for good; "
                             "the jobs held here lapse and run elsewhere")
        return (lt.failed, lt.window) != before

    async def _expire_parked(self, now: float) -> None:
        for model, parked in list(self._parked.items()):
            keep = [(i, until) for i, until in parked if until > now]
            for intake, until in parked:
                if until <= now:
                    job = intake.job
                    reason = (
                        f"model: unknown model hash {model} (not received within "
                        f"{self.config.model_wait_s:.0f} s)"
                    )
                    await self._refuse(job.job_id, job.epoch, "unknown_model", reason, "model",
                                       submitted_at=job.submitted_at)
            if keep:
                self._parked[model] = keep
            else:
                del self._parked[model]

    async def _telemetry_loop(self) -> None:
        while True:
            await self.bus.publish(topics.telemetry(self.id), dump(self.telemetry()), qos=0)
            self.telemetry_sent += 1
            await self.clock.sleep(self.config.telemetry_period_s)

    async def _state_loop(self) -> None:
        while True:
            await self.send(topics.state(self.id), self.node_state(), qos=0)
            await self.clock.sleep(self.config.state_period_s)

    # -- ground stations, models, handovers ------------------------------------------------
    async def _on_stations(self, msg: Message) -> None:
        if not msg.payload:  # the announcement was cleared: no stations, always in contact
            self.downlink.announce([], self.downlink.min_elevation_deg)
            return
        try:
            ann = parse(GroundStations, msg.payload)
        except ProtocolError as exc:
            await self.error("invalid_stations", f"ground stations: {exc}", field=exc.field,
                             topic=msg.topic)
            return
        self.downlink.announce([s.to_station() for s in ann.stations], ann.min_elevation_deg)

    async def _on_model(self, msg: Message) -> None:
        try:
            chunk = parse(ModelChunk, msg.payload, max_bytes=self.config.max_payload_bytes)
        except ProtocolError as exc:
            await self.error("invalid_model_chunk", str(exc), topic=msg.topic)
            return
        try:
            done = self.store.receive_chunk(chunk.model, chunk.index, chunk.total, chunk.data)
        except ModelStoreError as exc:
            await self.error("model_store", str(exc), field="data", topic=msg.topic)
            return
        if done is None:
            return
        log.info("node %s: model %s stored", self.id, done[:12])
        stored = ModelStored(node=self.id, t=self.clock.now(), model=done)
        await self.send(topics.event(self.id), stored)
        # publish state now so the ground sees the model without waiting a period
        await self.send(topics.state(self.id), self.node_state(), qos=0)
        for intake, _ in self._parked.pop(done, []):
            self.epochs.pop(intake.job.job_id, None)
            await self._admit(intake)

    async def _on_handover(self, msg: Message) -> None:
        try:
            h = parse(Handover, msg.payload, max_bytes=self.config.max_payload_bytes)
        except ProtocolError as exc:
            await self.error("invalid_handover", str(exc), topic=msg.topic)
            return
        sender = topics.node_from_topic(msg.topic)
        if h.dst != self.id or h.src != sender:
            # answered, not dropped: the sender (or whoever forged it) sees why
            which = "dst" if h.dst != self.id else "src"
            await self.error("invalid_handover",
                             f"{which}: handover from {h.src} to {h.dst} arrived on "
                             f"{msg.topic} (sender {sender}, receiver {self.id})",
                             field=which, job_id=h.job.job_id, topic=msg.topic)
            return
        try:
            intake = read_job(dump(h.job), self.config.max_payload_bytes)
            if self.warrants is not None:
                self.warrants.check(h.job)  # a job the ground issued, as it issued it
            check_sender(h.job, self.id, h.src)  # a pipeline stage from the member before
        except (ProtocolError, JobRejected) as exc:
            await self.error("invalid_handover", str(exc), field=exc.field,
                             job_id=h.job.job_id, topic=msg.topic)
            return
        self.core.migrations_in += 1
        await self._admit(intake)


def _intake(q: Queued) -> Intake:
    assert isinstance(q.payload, Intake)
    return q.payload
