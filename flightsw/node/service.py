"""The node service: one satellite's onboard computer as an asyncio service.

It owns one TaskGroup of named tasks:

* ``physics``   advances orbit, power and thermal state every ``physics_step_s`` of
  mission time, charging the battery for modelled compute (never for host time);
* ``telemetry`` publishes housekeeping every ``telemetry_period_s``;
* ``state``     publishes the compact constellation state (also the lease heartbeat);
* ``jobs``, ``commands``, ``models``, ``handovers`` read their inboxes;
* ``worker``    runs the onboard scheduler: admission, power mode, execution.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self

import numpy as np

from flightsw.bus import Bus, Message
from flightsw.clock import Clock
from flightsw.constellation import Candidate, Peer, make_policy, transfer_time_s
from flightsw.constellation.policies import run_time_s
from flightsw.exceptions import (
    FlightSwError,
    InferenceError,
    JobRejected,
    ModelStoreError,
    ProtocolError,
    UnknownModelError,
)
from flightsw.models.cost import ModelCost, analyse
from flightsw.models.executor import Executor
from flightsw.models.store import ModelStore
from flightsw.node.budget import Budget
from flightsw.node.config import NodeConfig, orbit_info
from flightsw.node.jobs import Intake, peek_job_id, read_job
from flightsw.node.scheduler import Admission, Decision, ModeSpec, OnboardScheduler, Queued, Work
from flightsw.node.upsets import Hits, corrupt_one_bit, draw_hits, work_factor
from flightsw.physics.ground import Station, in_contact
from flightsw.physics.isl import line_of_sight
from flightsw.physics.orbit import Orbits
from flightsw.protocol import (
    Ack,
    Command,
    ErrorEvent,
    Handover,
    JobEvent,
    JobResult,
    JobSubmit,
    ModelChunk,
    NodeState,
    Status,
    Telemetry,
    decode,
    dump,
    parse,
    topics,
)
from flightsw.protocol.auth import CommandVerifier
from flightsw.protocol.messages import arrays_to_tensors
from hardware_profiles import HardwareProfile

__all__ = ["Node"]

log = logging.getLogger("flightsw.node")

_RESULT_CACHE = 256
_THROTTLE_HYSTERESIS_K = 5.0


@dataclass(slots=True)
class _Running:
    decision: Decision
    task: asyncio.Task[None]
    started: float


class Node:
    """One satellite node. ``async with Node(...) as node:`` runs it until the block exits."""

    def __init__(
        self,
        config: NodeConfig,
        bus: Bus,
        clock: Clock,
        profile: HardwareProfile,
        orbits: Orbits,
    ) -> None:
        self.config = config
        self.id = config.node_id
        self.bus = bus
        self.clock = clock
        self.profile = profile
        self.orbits = orbits
        self._orbit_epoch = float(getattr(orbits, "epoch", clock.now()))
        self.store = ModelStore(config.data_dir / "models")
        self.executor = Executor(self.store, clock=clock)
        self._costs: dict[str, ModelCost] = {}
        comp = profile.compute
        self.modes = [
            ModeSpec(m.name, m.watts, profile.effective_ops_per_s(m.name)) for m in comp.power_modes
        ]
        self.sched = OnboardScheduler(self.modes, comp.memory_bandwidth_bps)
        self.budget = Budget.from_profiles(
            [profile],
            orbits,
            clock.now(),
            initial_soc=config.initial_soc,
            initial_temperature_c=config.initial_temperature_c,
            seed=config.seed,
        )
        self.verifier = CommandVerifier(config.command_key)
        self.policy = make_policy(config.policy)
        self.rng = np.random.default_rng(config.seed)
        self.peers: dict[str, NodeState] = {}
        self._migrating: set[str] = set()
        # state
        self.paused = False
        self.safe_manual = False
        self.safe_auto: str | None = None
        self.forced_mode: str | None = None
        self.throttled = False
        self.mode = comp.default_mode
        self.running: _Running | None = None
        self.jobs_done = 0
        self.jobs_failed = 0
        self.energy_used_j = 0.0
        self.migrations_in = 0
        self.migrations_out = 0
        self.upsets_mitigated = 0
        self.silent_corruptions = 0
        self._seq = 0
        self._busy: list[tuple[float, float, float]] = []  # (start, end, watts)
        self._results: OrderedDict[str, JobResult] = OrderedDict()
        self._epochs: dict[str, int] = {}  # highest epoch seen per job
        self._parked: dict[str, list[tuple[Intake, float]]] = {}  # jobs awaiting a model
        self._downlink: asyncio.Queue[bytes] = asyncio.Queue()  # results, store and forward
        self.stations: list[Station] = []  # announced by the ground; none = always in contact
        self.min_elevation_deg = 10.0
        self.results_held = 0
        self._wake = asyncio.Event()
        self._tg: asyncio.TaskGroup | None = None
        self._stack = contextlib.AsyncExitStack()
        self.telemetry_sent = 0

    # -- lifecycle -----------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        await self._stack.__aenter__()
        subs = {
            "jobs": topics.job(self.id),
            "commands": topics.command(self.id),
            "models": topics.model(self.id),
            "handovers": topics.handover_inbox(self.id),
            "stations": topics.GROUND_STATIONS,
        }
        handlers = {
            "jobs": self._on_job,
            "commands": self._on_command,
            "models": self._on_model,
            "handovers": self._on_handover,
            "stations": self._on_stations,
        }
        tg = asyncio.TaskGroup()
        await self._stack.enter_async_context(tg)
        self._tg = tg
        for name, topic in subs.items():
            sub = await self._stack.enter_async_context(self.bus.subscribe(topic, qos=1))
            tg.create_task(self._inbox(sub, handlers[name]), name=f"{self.id}:{name}")
        if self.policy.name != "local":
            peers = await self._stack.enter_async_context(
                self.bus.subscribe(f"{topics.PREFIX}/+/state", qos=0)
            )
            tg.create_task(self._peer_states(peers), name=f"{self.id}:peers")
            tg.create_task(self._migration_loop(), name=f"{self.id}:migration")
        await self._publish_status()
        tg.create_task(self._physics_loop(), name=f"{self.id}:physics")
        tg.create_task(self._telemetry_loop(), name=f"{self.id}:telemetry")
        tg.create_task(self._state_loop(), name=f"{self.id}:state")
        tg.create_task(self._worker(), name=f"{self.id}:worker")
        tg.create_task(self._downlink_loop(), name=f"{self.id}:downlink")
        log.info("node %s online (profile %s)", self.id, self.profile.name)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(Exception):
            await self.bus.publish(
                topics.status(self.id),
                dump(
                    Status(
                        node=self.id, state="offline", t=self.clock.now(), profile=self.profile.name
                    )
                ),
                qos=1,
                retain=True,
            )
        if self._tg is not None:
            for task in list(asyncio.all_tasks()):
                if task.get_name().startswith(f"{self.id}:"):
                    task.cancel()
        try:
            await self._stack.__aexit__(None, None, None)
        finally:
            self.executor.close()

    # -- helpers -------------------------------------------------------------------------
    @property
    def safe_mode(self) -> bool:
        return self.safe_manual or self.safe_auto is not None

    async def _inbox(self, sub: Any, handler: Any) -> None:
        async for msg in sub:
            try:
                await handler(msg)
            except FlightSwError as exc:  # a bad message never stops the node
                await self._error("internal", str(exc), topic=msg.topic)
            except Exception as exc:
                log.exception("node %s: handler failed on %s", self.id, msg.topic)
                await self._error("internal", f"{type(exc).__name__}: {exc}", topic=msg.topic)

    async def _error(
        self,
        code: str,
        message: str,
        *,
        field: str | None = None,
        job_id: str | None = None,
        topic: str | None = None,
    ) -> None:
        ev = ErrorEvent(
            node=self.id,
            t=self.clock.now(),
            code=code,
            message=message,
            field=field,
            job_id=job_id,
            topic=topic,
        )
        log.warning("node %s: %s: %s", self.id, code, message)
        await self.bus.publish(topics.event(self.id), dump(ev), qos=1)

    async def _event(
        self,
        job_id: str,
        epoch: int,
        state: Any,
        detail: str | None = None,
        target: str | None = None,
    ) -> None:
        ev = JobEvent(
            job_id=job_id,
            epoch=epoch,
            node=self.id,
            state=state,
            t=self.clock.now(),
            detail=detail,
            target=target,
        )
        await self.bus.publish(topics.event(self.id), dump(ev), qos=1)

    async def _publish_result(self, result: JobResult) -> None:
        self._results[result.job_id] = result
        while len(self._results) > _RESULT_CACHE:
            self._results.popitem(last=False)
        if result.status == "done":
            self.jobs_done += 1
        else:
            self.jobs_failed += 1
        self._downlink.put_nowait(dump(result))

    async def _fail(self, job_id: str, epoch: int, reason: str, **extra: Any) -> None:
        await self._publish_result(
            JobResult(
                job_id=job_id,
                epoch=epoch,
                node=self.id,
                status="failed",
                reason=reason,
                finished_at=self.clock.now(),
                **extra,
            )
        )

    async def _publish_status(self) -> None:
        state: Literal["safe", "online"] = "safe" if self.safe_mode else "online"
        await self.bus.publish(
            topics.status(self.id),
            dump(
                Status(
                    node=self.id,
                    state=state,
                    t=self.clock.now(),
                    profile=self.profile.name,
                    orbit=orbit_info(self.config.orbit, self._orbit_epoch),
                )
            ),
            qos=1,
            retain=True,
        )

    def cost(self, model_hash: str) -> ModelCost:
        c = self._costs.get(model_hash)
        if c is None:
            c = analyse(self.store.path(model_hash), model_hash=model_hash)
            self._costs[model_hash] = c
        return c

    def _work(self, model_hash: str, items: int) -> Work:
        c = self.cost(model_hash)
        k = work_factor(self.profile.radiation.mitigation)
        return Work(
            flops=k * c.flops_per_item * items,
            bytes=k * (c.weight_bytes + c.bytes_per_item * items),
        )

    # -- jobs ----------------------------------------------------------------------------
    async def _on_job(self, msg: Message) -> None:
        payload = msg.payload
        try:
            intake = read_job(payload, self.config.max_payload_bytes)
        except (ProtocolError, JobRejected) as exc:
            jid, ep = (
                peek_job_id(payload) if len(payload) <= self.config.max_payload_bytes else (None, 0)
            )
            text = str(exc)
            code = (
                "oversize"
                if "exceeds the limit" in text
                else ("undecodable" if "undecodable" in text else "invalid_job")
            )
            field = text.split(":", 1)[0] if code == "invalid_job" else None
            await self._error(code, text, field=field, job_id=jid, topic=msg.topic)
            if jid is not None:
                await self._fail(jid, ep, f"{code}: {text}")
            return
        await self._admit(intake, origin_event="accepted")

    async def _admit(self, intake: Intake, origin_event: str) -> None:
        job = intake.job
        known = self._epochs.get(job.job_id)
        if known is not None and job.epoch <= known:
            cached = self._results.get(job.job_id)
            if cached is not None and cached.epoch == job.epoch:
                # at-least-once delivery: resend the result, harmless for the receiver
                self._downlink.put_nowait(dump(cached))
            return
        self._epochs[job.job_id] = job.epoch
        if not self.store.has(job.model) and self.config.model_wait_s > 0:
            # fetch: ask for the model and hold the job until it arrives or time runs out
            first = job.model not in self._parked
            self._parked.setdefault(job.model, []).append(
                (intake, self.clock.now() + self.config.model_wait_s)
            )
            if first:
                await self._error(
                    "model_missing",
                    f"model: {job.model} not on this node; fetching it",
                    field="model",
                    job_id=job.job_id,
                )
            return
        try:
            if not self.store.has(job.model):
                raise UnknownModelError(
                    f"model: unknown model hash {job.model} (upload it to this node first)"
                )
            self.executor.validate_inputs(job.model, intake.arrays)
            work = self._work(job.model, intake.items)
        except (UnknownModelError, JobRejected, ModelStoreError, InferenceError) as exc:
            reason = exc.reason if isinstance(exc, JobRejected) else str(exc)
            field = reason.split(":", 1)[0] if ":" in reason else None
            code = "unknown_model" if isinstance(exc, UnknownModelError) else "invalid_job"
            await self._error(code, reason, field=field, job_id=job.job_id)
            await self._fail(job.job_id, job.epoch, f"{code}: {reason}")
            return
        q = Queued(
            job_id=job.job_id,
            epoch=job.epoch,
            priority=job.priority,
            deadline=job.deadline,
            value=job.value,
            work=work,
            accepted_at=self.clock.now(),
            payload=intake,
        )
        self.sched.push(q)
        await self._event(job.job_id, job.epoch, origin_event)
        for victim in self.sched.shed(self.config.overload_backlog_s, self.config.max_queue):
            await self._event(victim.job_id, victim.epoch, "shed", "overload")
            await self._fail(
                victim.job_id,
                victim.epoch,
                f"shed: overload (queued work above {self.config.overload_backlog_s:.0f} s); "
                "lowest value per second of work goes first",
                submitted_at=_intake(victim).job.submitted_at,
                deadline=victim.deadline,
                value=victim.value,
            )
        self._wake.set()

    # -- worker --------------------------------------------------------------------------
    def admission(self) -> Admission:
        th = self.profile.thermal
        temp = self.budget.temperature_c_of(0)
        margin = self.budget.margin_wh(0, self.clock.now())
        cap = max(m.watts for m in self.modes)
        if self.throttled:
            cap = self.sched.modes[0].watts
        reason = None
        allowed = True
        if self.paused:
            allowed, reason = False, "compute paused by telecommand"
        elif self.safe_mode:
            allowed, reason = False, f"safe mode ({self.safe_auto or 'commanded'})"
        elif temp >= th.max_c:
            allowed, reason = False, f"thermal: {temp:.1f} C at or above max {th.max_c:.1f} C"
        return Admission(
            margin_wh=margin,
            temperature_c=temp,
            max_c=th.max_c,
            heat_capacity_j_per_k=th.heat_capacity_j_per_k,
            mode_cap_w=cap,
            forced_mode=self.forced_mode,
            compute_allowed=allowed,
            reason=reason,
        )

    async def _worker(self) -> None:
        deferred_reason: dict[str, str] = {}
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self.running is not None:
                continue
            now = self.clock.now()
            for q in self.sched.expired(now):
                await self._event(q.job_id, q.epoch, "shed", "deadline expired before start")
                await self._fail(
                    q.job_id,
                    q.epoch,
                    "deadline expired before start",
                    submitted_at=_intake(q).job.submitted_at,
                    deadline=q.deadline,
                    value=q.value,
                )
            got = self.sched.next(now, self.admission())
            if isinstance(got, list):
                for q in got:
                    if q.deferred and deferred_reason.get(q.job_id) != q.deferred:
                        deferred_reason[q.job_id] = q.deferred
                        await self._event(q.job_id, q.epoch, "deferred", q.deferred)
                continue
            deferred_reason.pop(got.job.job_id, None)
            self._start(got)

    def _start(self, d: Decision) -> None:
        assert self._tg is not None
        now = self.clock.now()
        self.mode = d.mode.name
        self._busy.append((now, now + d.latency_s, d.mode.watts))
        task = self._tg.create_task(self._run(d, now), name=f"{self.id}:job:{d.job.job_id}")
        self.running = _Running(decision=d, task=task, started=now)

    async def _run(self, d: Decision, started: float) -> None:
        q = d.job
        intake = _intake(q)
        job = intake.job
        await self._event(q.job_id, q.epoch, "running", f"mode {d.mode.name}")
        exec_task: asyncio.Future[Any] | None = None
        upsets_before = self.budget.upsets_of(0)
        hits = Hits(0, 0, 0, 0)
        try:
            if self.config.execute:
                exec_task = asyncio.ensure_future(self.executor.run(job.model, intake.arrays))
                await self.clock.sleep(d.latency_s)
                res = await exec_task
                produced = res.outputs
                hits = self._radiation(job.model, intake.items, upsets_before)
                if hits.silent:
                    produced = corrupt_one_bit(produced, self.rng)
                outputs = arrays_to_tensors(produced)
                host = res.host_wall_s
            else:
                await self.clock.sleep(d.latency_s)
                outputs, host = {}, 0.0
        except asyncio.CancelledError:
            if exec_task is not None:
                exec_task.cancel()  # asks onnxruntime to terminate the run
            self._truncate_busy(self.clock.now())
            raise
        except (InferenceError, JobRejected, FlightSwError) as exc:
            self.running = None
            self.energy_used_j += d.energy_j
            await self._fail(
                q.job_id,
                q.epoch,
                f"inference: {exc}",
                submitted_at=job.submitted_at,
                accepted_at=q.accepted_at,
                started_at=started,
                deadline=q.deadline,
                value=q.value,
            )
            self._wake.set()
            return
        self.running = None
        self.energy_used_j += d.energy_j
        await self._publish_result(
            JobResult(
                job_id=q.job_id,
                epoch=q.epoch,
                node=self.id,
                status="done",
                outputs=outputs,
                items=intake.items,
                host_wall_s=host,
                modelled_latency_s=d.latency_s,
                modelled_energy_j=d.energy_j,
                power_mode=d.mode.name,
                submitted_at=job.submitted_at,
                accepted_at=q.accepted_at,
                started_at=started,
                finished_at=self.clock.now(),
                deadline=q.deadline,
                value=q.value,
                migrations=job.migrations,
                upsets_hit=hits.weights + hits.activations,
                upsets_mitigated=hits.mitigated,
                corrupted=hits.silent > 0,
            )
        )
        self._wake.set()

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

    def _truncate_busy(self, now: float) -> None:
        if self._busy:
            s, e, w = self._busy[-1]
            if e > now:
                self._busy[-1] = (s, now, w)

    async def _stop_running(self, requeue: bool, reason: str) -> _Running | None:
        r = self.running
        if r is None:
            return None
        r.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await r.task
        self.running = None
        q = r.decision.job
        spent = (self.clock.now() - r.started) * r.decision.mode.watts
        self.energy_used_j += min(spent, r.decision.energy_j)
        if requeue:
            self.sched.push(q)
            await self._event(q.job_id, q.epoch, "queued", reason)
        return r

    # -- physics -------------------------------------------------------------------------
    def compute_power_w(self, t0: float, t1: float) -> float:
        """Average compute watts over [t0, t1] from modelled busy intervals."""
        idle = self.profile.compute.idle_w
        dt = t1 - t0
        if dt <= 0:
            return idle
        energy = 0.0
        busy = 0.0
        keep: list[tuple[float, float, float]] = []
        for s, e, w in self._busy:
            ov = min(e, t1) - max(s, t0)
            if ov > 0:
                energy += ov * w
                busy += ov
            if e > t1:
                keep.append((s, e, w))
        self._busy = keep
        return (energy + (dt - busy) * idle) / dt

    async def _physics_loop(self) -> None:
        step = self.config.physics_step_s
        last = self.clock.now()
        while True:
            await self.clock.sleep(step)
            now = self.clock.now()
            p = self.compute_power_w(last, now)
            self.budget.step(now, now - last, np.array([p]))
            last = now
            await self._check_limits()
            await self._expire_parked(now)
            self._wake.set()

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
                    await self._error("unknown_model", reason, field="model", job_id=job.job_id)
                    await self._fail(
                        job.job_id,
                        job.epoch,
                        f"unknown_model: {reason}",
                        submitted_at=job.submitted_at,
                    )
            if keep:
                self._parked[model] = keep
            else:
                del self._parked[model]

    async def _check_limits(self) -> None:
        th = self.profile.thermal
        temp = self.budget.temperature_c_of(0)
        was_safe = self.safe_mode
        if not self.throttled and temp > th.throttle_c:
            self.throttled = True
            low = self.sched.modes[0].name
            log.warning(
                "node %s: %.1f C above throttle %.1f C: mode capped to %s",
                self.id,
                temp,
                th.throttle_c,
                low,
            )
            self.mode = low
        elif self.throttled and temp < th.throttle_c - _THROTTLE_HYSTERESIS_K:
            self.throttled = False
        soc = self.budget.soc_of(0)
        floor = self.profile.bus.dod_floor
        if temp >= th.max_c:
            self.safe_auto = f"over-temperature {temp:.1f} C"
        elif soc < floor:
            self.safe_auto = f"battery {soc:.0%} below floor {floor:.0%}"
        elif self.safe_auto is not None and soc > floor + 0.05 and temp < th.throttle_c:
            self.safe_auto = None
        if self.safe_mode and self.running is not None:
            await self._stop_running(True, "safe mode: compute stopped")
        elif self.throttled and self.running is not None:
            d = self.running.decision
            if d.mode.watts > self.sched.modes[0].watts and self.forced_mode is None:
                await self._stop_running(True, "thermal throttle: re-planned at lower mode")
        if self.safe_mode != was_safe:
            await self._publish_status()

    def telemetry(self) -> Telemetry:
        b = self.budget
        now = self.clock.now()
        lat, lon, alt = b.geodetic_of(0)
        self._seq += 1
        return Telemetry(
            node=self.id,
            seq=self._seq,
            t=now,
            profile=self.profile.name,
            lat_deg=lat,
            lon_deg=lon,
            alt_km=alt,
            sunlit=b.illumination_of(0),
            beta_deg=b.beta_deg_of(0, now),
            solar_w=b.solar_w_of(0),
            load_w=b.load_w_of(0),
            battery_wh=b.battery_wh_of(0),
            soc=b.soc_of(0),
            temperature_c=b.temperature_c_of(0),
            power_mode=self.mode,
            safe_mode=self.safe_mode,
            paused=self.paused,
            queue_depth=len(self.sched),
            jobs_running=1 if self.running else 0,
            jobs_done=self.jobs_done,
            jobs_failed=self.jobs_failed,
            energy_used_j=self.energy_used_j,
            upsets=b.upsets_of(0),
            migrations_in=self.migrations_in,
            migrations_out=self.migrations_out,
            in_contact=self.in_contact(now),
            upsets_mitigated=self.upsets_mitigated,
            silent_corruptions=self.silent_corruptions,
        )

    async def _telemetry_loop(self) -> None:
        while True:
            await self.bus.publish(topics.telemetry(self.id), dump(self.telemetry()), qos=0)
            self.telemetry_sent += 1
            await self.clock.sleep(self.config.telemetry_period_s)

    def node_state(self) -> NodeState:
        b = self.budget
        now = self.clock.now()
        nxt = b.next_eclipse(0, now)
        leases = {q.job_id: q.epoch for q in self.sched}
        if self.running is not None:
            leases[self.running.decision.job.job_id] = self.running.decision.job.epoch
        fast = self.sched.fastest()
        return NodeState(
            node=self.id,
            t=now,
            soc=b.soc_of(0),
            battery_wh=b.battery_wh_of(0),
            floor_wh=self.profile.dod_floor_wh,
            temperature_c=b.temperature_c_of(0),
            throttle_c=self.profile.thermal.throttle_c,
            queue_depth=len(self.sched),
            queued_work_s=self.sched.backlog_s() + self._running_left(now),
            sunlit=b.illumination_of(0),
            next_eclipse_s=None if nxt is None else max(0.0, nxt[0] - now),
            eclipse_s=0.0 if nxt is None else nxt[1] - nxt[0],
            effective_ops_per_s=fast.ops_per_s,
            power_w=fast.watts,
            position_km=[float(x) for x in b.position_of(0)],
            models=self.store.list(),
            leases=leases,
            safe_mode=self.safe_mode,
            margin_wh=b.margin_wh(0, now),
            heat_capacity_j_per_k=self.profile.thermal.heat_capacity_j_per_k,
            isl_rate_bps=self.profile.links.isl_rate_bps,
            isl_max_range_km=self.profile.links.isl_max_range_km,
            uplink_rate_bps=self.profile.links.uplink_rate_bps,
            alt_km=float(np.linalg.norm(b.position_of(0))) - 6378.137,
            running_s=self._running_left(now),
            work_by_priority=self._work_by_priority(),
        )

    def _running_left(self, now: float) -> float:
        r = self.running
        if r is None:
            return 0.0
        return max(0.0, r.started + r.decision.latency_s - now)

    def _work_by_priority(self) -> list[float]:
        fast = self.sched.fastest()
        out = [0.0] * 10
        for q in self.sched:
            out[q.priority] += q.work.latency_s(fast, self.sched.bandwidth_bps)
        return out

    async def _state_loop(self) -> None:
        while True:
            await self.bus.publish(topics.state(self.id), dump(self.node_state()), qos=0)
            await self.clock.sleep(self.config.state_period_s)

    # -- ground link: store and forward ----------------------------------------------------
    async def _on_stations(self, msg: Message) -> None:
        try:
            obj = decode(msg.payload) if msg.payload else {"stations": []}
            self.stations = [
                Station(
                    str(s["name"]),
                    float(s["lat_deg"]),
                    float(s["lon_deg"]),
                    float(s.get("alt_m", 0.0)),
                )
                for s in obj["stations"]
            ]
            self.min_elevation_deg = float(obj.get("min_elevation_deg", 10.0))
        except (ProtocolError, KeyError, TypeError, ValueError, FlightSwError) as exc:
            await self._error("invalid_stations", f"ground stations: {exc}", topic=msg.topic)

    def in_contact(self, now: float) -> bool:
        """Above some ground station's elevation mask (always, if no station is known)."""
        if not self.stations:
            return True
        r = self.budget.position_of(0)
        return bool(in_contact(r, now, self.stations, self.min_elevation_deg).any())

    def downlink_delay_s(self, size: int, now: float) -> float:
        """Processing + propagation + serialisation at the downlink rate (0 if no stations)."""
        if not self.stations:
            return 0.0
        links = self.profile.links
        r = self.budget.position_of(0)
        rng_km = min(float(np.linalg.norm(r - s.ecef_km)) for s in self.stations)
        return (
            links.processing_latency_s
            + rng_km / 299_792.458
            + 8.0 * size / max(links.downlink_rate_bps, 1.0)
        )

    async def _downlink_loop(self) -> None:
        """Results leave in order, only inside a contact window, at the downlink rate."""
        while True:
            payload = await self._downlink.get()
            held = False
            while not self.in_contact(self.clock.now()):
                if not held:
                    held = True
                    self.results_held += 1
                await self.clock.sleep(self.config.physics_step_s)
            if held:
                self.results_held -= 1
            delay = self.downlink_delay_s(len(payload), self.clock.now())
            if delay > 0:
                await self.clock.sleep(delay)
            await self.bus.publish(topics.result(self.id), payload, qos=1)

    # -- models --------------------------------------------------------------------------
    async def _on_model(self, msg: Message) -> None:
        try:
            chunk = parse(ModelChunk, msg.payload, max_bytes=self.config.max_payload_bytes)
        except ProtocolError as exc:
            await self._error("invalid_model_chunk", str(exc), topic=msg.topic)
            return
        try:
            done = self.store.receive_chunk(chunk.model, chunk.index, chunk.total, chunk.data)
        except ModelStoreError as exc:
            await self._error("model_store", str(exc), field="data", topic=msg.topic)
            return
        if done is not None:
            log.info("node %s: model %s stored", self.id, done[:12])
            await self.bus.publish(
                topics.event(self.id),
                dump(
                    ErrorEvent(
                        node=self.id,
                        t=self.clock.now(),
                        code="model_stored",
                        message=f"model {done} stored",
                        field=None,
                    )
                ),
                qos=1,
            )
            # publish state now so the ground sees the model without waiting a period
            await self.bus.publish(topics.state(self.id), dump(self.node_state()), qos=0)
            for intake, _ in self._parked.pop(done, []):
                self._epochs.pop(intake.job.job_id, None)
                await self._admit(intake, origin_event="accepted")

    # -- handovers (constellation migration) ----------------------------------------------
    async def _on_handover(self, msg: Message) -> None:
        try:
            h = parse(Handover, msg.payload, max_bytes=self.config.max_payload_bytes)
        except ProtocolError as exc:
            await self._error("invalid_handover", str(exc), topic=msg.topic)
            return
        if h.dst != self.id:
            return
        try:
            intake = read_job(dump(h.job), self.config.max_payload_bytes)
        except (ProtocolError, JobRejected) as exc:
            await self._error("invalid_handover", str(exc), job_id=h.job.job_id)
            return
        self.migrations_in += 1
        await self._admit(intake, origin_event="accepted")

    # -- telecommands --------------------------------------------------------------------
    async def _on_command(self, msg: Message) -> None:
        try:
            cmd = parse(Command, msg.payload, max_bytes=64 * 1024)
        except ProtocolError as exc:
            await self._error("invalid_command", str(exc), topic=msg.topic)
            return
        problem = self.verifier.check(cmd)
        if problem is not None:
            log.warning("node %s: rejected telecommand %s: %s", self.id, cmd.cmd_id, problem)
            await self._ack(cmd, False, problem)
            return
        ok, reason, data = await self._execute_command(cmd)
        await self._ack(cmd, ok, reason, data)

    async def _ack(
        self, cmd: Command, ok: bool, reason: str | None, data: dict[str, Any] | None = None
    ) -> None:
        ack = Ack(
            cmd_id=cmd.cmd_id,
            node=self.id,
            name=cmd.name,
            ok=ok,
            t=self.clock.now(),
            reason=reason,
            data=data or {},
        )
        await self.bus.publish(topics.ack(self.id), dump(ack), qos=1)

    async def _execute_command(self, cmd: Command) -> tuple[bool, str | None, dict[str, Any]]:
        name = cmd.name
        if name == "ping":
            return True, None, {"t": self.clock.now(), "queue_depth": len(self.sched)}
        if name == "pause":
            self.paused = True
            if self.running is not None:
                await self._stop_running(True, "paused by telecommand")
            return True, None, {}
        if name == "resume":
            self.paused = False
            self._wake.set()
            return True, None, {}
        if name == "enter_safe":
            self.safe_manual = True
            if self.running is not None:
                await self._stop_running(True, "safe mode: compute stopped")
            await self._publish_status()
            return True, None, {}
        if name == "leave_safe":
            if self.safe_auto is not None:
                self.safe_manual = False
                return False, f"cannot leave safe mode: {self.safe_auto}", {}
            self.safe_manual = False
            await self._publish_status()
            self._wake.set()
            return True, None, {}
        if name == "set_power_mode":
            mode = cmd.args.get("mode")
            valid = [m.name for m in self.modes]
            if mode in (None, "auto"):
                self.forced_mode = None
                return True, None, {"mode": "auto"}
            if mode not in valid:
                return False, f"args.mode: {mode!r} is not one of {valid} or 'auto'", {}
            self.forced_mode = str(mode)
            self.mode = str(mode)
            return True, None, {"mode": mode}
        if name == "cancel_job":
            jid = cmd.args.get("job_id")
            if not isinstance(jid, str):
                return False, "args.job_id: missing", {}
            if self.running is not None and self.running.decision.job.job_id == jid:
                r = await self._stop_running(False, "cancelled")
                assert r is not None
                q = r.decision.job
            else:
                got = self.sched.remove(jid)
                if got is None:
                    return False, f"args.job_id: {jid} is not queued or running here", {}
                q = got
            await self._event(q.job_id, q.epoch, "cancelled", "by telecommand")
            await self._fail(
                q.job_id,
                q.epoch,
                "cancelled by telecommand",
                submitted_at=_intake(q).job.submitted_at,
                deadline=q.deadline,
                value=q.value,
            )
            self._wake.set()
            return True, None, {}
        return False, f"name: unknown command {name!r}", {}

    # -- constellation migration -----------------------------------------------------------
    async def _peer_states(self, sub: Any) -> None:
        async for msg in sub:
            node = topics.node_from_topic(msg.topic)
            if node is None or node == self.id:
                continue
            try:
                self.peers[node] = parse(NodeState, msg.payload)
            except ProtocolError as exc:
                log.debug("node %s: bad state from %s: %s", self.id, node, exc)

    def _as_peer(self, st: NodeState, rate: float, latency: float) -> Peer:
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

    def linked_peers(self, now: float) -> list[Peer]:
        """Peers seen recently with an inter-satellite link up (line of sight and range)."""
        links = self.profile.links
        if links.isl_rate_bps <= 0:
            return []
        here = self.budget.position_of(0)
        fresh = 3 * self.config.state_period_s
        out = []
        for st in self.peers.values():
            if now - st.t > fresh or st.safe_mode:
                continue
            there = np.asarray(st.position_km, dtype=np.float64)
            rng_km = float(np.linalg.norm(there - here))
            max_km = min(links.isl_max_range_km, st.isl_max_range_km or links.isl_max_range_km)
            if rng_km > max_km or not bool(line_of_sight(here, there)):
                continue
            rate = min(links.isl_rate_bps, st.isl_rate_bps or links.isl_rate_bps)
            latency = rng_km / 299_792.458 + links.processing_latency_s
            out.append(self._as_peer(st, rate, latency))
        return out

    def _candidate(self, q: Queued, ahead_s: float | None = None) -> Candidate:
        intake = _intake(q)
        size = sum(int(a.nbytes) for a in intake.arrays.values())
        return Candidate(
            job_id=q.job_id,
            flops=q.work.flops,
            input_bytes=size,
            model=intake.job.model,
            model_bytes=self.store.size(intake.job.model),
            deadline=q.deadline,
            value=q.value,
            priority=q.priority,
            migrations=intake.job.migrations,
            ahead_s=ahead_s,
        )

    async def _migration_loop(self) -> None:
        while True:
            await self.clock.sleep(self.config.state_period_s)
            if self.safe_mode or self.paused or len(self.sched) == 0:
                continue
            now = self.clock.now()
            peers = self.linked_peers(now)
            if not peers:
                continue
            here = self._as_peer(self.node_state(), 0.0, 0.0)
            moved = 0
            fast = self.sched.fastest()
            ahead = self._running_left(now)
            for q in list(self.sched):
                if moved >= self.policy.rules.max_per_round:
                    break
                cand = self._candidate(q, ahead)
                dst = None
                if self.policy.should_consider(cand, here, now):
                    dst = self.policy.choose(cand, here, peers, now, self.rng)
                if dst is None:
                    ahead += q.work.latency_s(fast, self.sched.bandwidth_bps)  # stays ahead
                    continue
                peer = next(p for p in peers if p.node == dst)
                if await self.hand_over(q.job_id, dst, transfer_time_s(cand, peer)):
                    moved += 1
                    # later decisions of this round see the move (no herding on one peer)
                    peers = [
                        p._replace(
                            queued_work_s=p.queued_work_s + run_time_s(cand, p),
                            queue_depth=p.queue_depth + 1,
                        )
                        if p.node == dst
                        else p
                        for p in peers
                    ]
                    here = here._replace(
                        queued_work_s=max(0.0, here.queued_work_s - run_time_s(cand, here)),
                        queue_depth=max(0, here.queue_depth - 1),
                    )

    async def hand_over(self, job_id: str, dst: str, transfer_s: float = 0.0) -> bool:
        """Give a queued job to ``dst`` with epoch + 1; False if it is no longer queued.

        The job leaves the queue at once; the handover message is published after the
        modelled transfer time over the link (inputs, plus the model if ``dst`` lacks it).
        """
        q = self.sched.remove(job_id)
        if q is None:
            return False
        job: JobSubmit = _intake(q).job
        moved = job.model_copy(update={"epoch": job.epoch + 1, "migrations": job.migrations + 1})
        self._epochs[job_id] = moved.epoch
        self.migrations_out += 1
        await self._event(
            job_id, q.epoch, "handed_over", f"to {dst} ({transfer_s:.3f} s transfer)", target=dst
        )
        if transfer_s > 0:
            await self.clock.sleep(transfer_s)
        await self.bus.publish(
            topics.handover(self.id, dst),
            dump(Handover(src=self.id, dst=dst, t=self.clock.now(), job=moved)),
            qos=1,
        )
        return True


def _intake(q: Queued) -> Intake:
    assert isinstance(q.payload, Intake)
    return q.payload
