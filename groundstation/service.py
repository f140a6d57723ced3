"""The ground station service: job table, uplink in contact windows, leases, ingest.

Tasks of its TaskGroup:

* ``ingest``   every message on ``odc/sat/#`` goes to the archive as received (raw bytes);
  results, job events, node states and statuses also update the job and node tables;
* ``requests`` answers ground clients (submit, model upload, queries);
* ``uplink``   sends queued jobs (and their models) to satellites inside contact windows,
  and re-runs jobs whose owner's lease has lapsed (epoch + 1);
* ``flush``    flushes the archive to disk.

The service keeps a reference to every task it starts and cancels exactly those on exit. An
unexpected error while handling one message or request is logged with its traceback (and a
request gets an ``ok=False`` reply naming it); the service goes on serving.

Its rules are the one rulebook it shares with the simulator
(:mod:`flightsw.protocol.jobrules`): a result (done or failed) is recorded iff the job has no
outcome yet and the result's epoch is at least the job's current epoch; later copies count
as duplicates, lower epochs as stale. A lease lapses after ``lease_s`` without renewal (or
when the owner goes offline) and the job is queued again with the next epoch. A queued job
goes to the node in contact that could start it soonest (``choose_uplink``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np

from flightsw.bus import Bus, Message
from flightsw.clock import Clock
from flightsw.exceptions import (
    AuthError,
    ConfigError,
    CostModelError,
    FlightSwError,
    ModelStoreError,
    ProtocolError,
    UnknownModelError,
)
from flightsw.models.cost import ModelCost, analyse
from flightsw.models.store import ModelStore, chunk_model
from flightsw.orbitdesc import orbits_from_info
from flightsw.physics.ground import Station, in_contact
from flightsw.physics.orbit import Orbits
from flightsw.protocol import (
    ErrorEvent,
    GroundStations,
    JobEvent,
    JobResult,
    JobSubmit,
    ModelChunk,
    ModelMissing,
    ModelStored,
    NodeState,
    StationInfo,
    Status,
    dump,
    parse,
    parse_event,
    topics,
)
from flightsw.protocol.antennas import Antennas, check_antennas
from flightsw.protocol.codec import decode
from flightsw.protocol.jobrules import (
    EXPIRED_AT_GROUND,
    UplinkOption,
    choose_uplink,
    expired_at_ground,
    judge_result,
    lapses_when_offline,
    lease_lapsed,
    next_epoch,
)
from flightsw.protocol.messages import StageReturn
from flightsw.protocol.sign import Verifier
from flightsw.protocol.warrant import WarrantSigner
from flightsw.taskset import cancel_all
from groundstation.archive import ArchiveWriter
from groundstation.exceptions import GroundError
from groundstation.jobtable import JobTable
from groundstation.microbatch import join_results
from groundstation.pipeline import Candidate as PipelineCandidate
from groundstation.pipeline import choose_group, usable
from groundstation.protocol import (
    REQUEST_TOPIC,
    TERMINAL,
    job_topic,
    reply_topic,
)
from groundstation.requests import RequestDesk

__all__ = ["GroundStation", "NodeView"]

log = logging.getLogger("groundstation")

CHUNK_BYTES = 256 * 1024
MAX_JOB_BYTES = 16 * 1024 * 1024  # a node's default payload limit (NodeConfig)
MAX_ATTEMPTS = 5  # uplinks of one job whose lease lapsed before it ends failed
TRACK_SAMPLES = 4  # times over a pipeline job's expected duration its links are judged at


@dataclass(slots=True)
class NodeView:
    """What the ground knows of one node."""

    node: str
    status: str = "unknown"
    profile: str | None = None
    orbits: Orbits | None = None
    state: NodeState | None = None
    last_seen: float = 0.0
    models: set[str] = field(default_factory=set)
    models_sending: dict[str, float] = field(default_factory=dict)
    uplink_tail: asyncio.Task[None] | None = None  # last message queued for this node
    uplink_until: float = -math.inf  # when the last message queued for it is through
    # jobs sent to it that its heartbeat does not list yet: job_id -> (sent at, work s)
    sent_work: dict[str, tuple[float, float]] = field(default_factory=dict)
    # later stages of pipeline jobs planned here (it is a member past the first) that
    # its heartbeat does not list yet: job_id -> (counted until, work s)
    planned_work: dict[str, tuple[float, float]] = field(default_factory=dict)

    def backlog_s(self, now: float, horizon_s: float) -> float:
        """Seconds of work ahead of a new job here: what its last heartbeat reported
        (running and queued), plus the work of jobs sent since that it does not list yet
        (those sent more than ``horizon_s`` ago are left out: their lease has lapsed), plus
        the pipeline stages planned here that have not arrived (until their time is up)."""
        reported = self.state.queued_work_s if self.state is not None else 0.0
        sent = sum(w for t, w in self.sent_work.values() if now - t <= horizon_s)
        planned = sum(w for until, w in self.planned_work.values() if now <= until)
        return reported + sent + planned


class GroundStation:
    """``async with GroundStation(bus, clock, archive_dir) as gs:`` serves until exit."""

    def __init__(
        self,
        bus: Bus,
        clock: Clock,
        archive_dir: Path,
        *,
        stations: list[Station] | None = None,
        antennas: int | Sequence[int] = 1,
        min_elevation_deg: float = 10.0,
        lease_s: float = 60.0,
        tick_s: float = 2.0,
        segment_bytes: int = 64 * 1024 * 1024,
        node_keys: dict[str, bytes] | None = None,
        warrants: WarrantSigner | None = None,
        max_job_bytes: int = MAX_JOB_BYTES,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.bus = bus
        self.clock = clock
        self.dir = archive_dir
        self.stations = stations or []
        self.min_elevation_deg = min_elevation_deg
        # each station's antennas, one satellite each (the simulator's rule, shared)
        self.antennas = Antennas(_antenna_counts(antennas, len(self.stations)), clock.now())
        # checked now, so a bad station or mask fails at start, naming the field
        self.announcement = parse(
            GroundStations,
            {
                "stations": [StationInfo.from_station(s) for s in self.stations],
                "min_elevation_deg": min_elevation_deg,
            },
        )
        self.lease_s = lease_s
        self.tick_s = tick_s
        self.max_job_bytes = max_job_bytes
        self.max_attempts = max_attempts
        self.warrants = warrants  # signs every job it accepts (nodes may require it)
        archive_dir.mkdir(parents=True, exist_ok=True)
        self.table = JobTable(archive_dir / "jobs.sqlite")
        # with node keys, a node message counts only sealed by that node's key (and fresh);
        # without, the ground trusts the broker's ACL alone (docs/security.md)
        self.verifier = (
            None if node_keys is None else Verifier(node_keys, self.table.auth_marks())
        )
        self.desk = RequestDesk(self)
        # node messages refused: unsealed, forged, replayed, not the holder, a bad stage return
        self.rejected = 0
        self.store = ModelStore(archive_dir / "models")
        self.archive = ArchiveWriter(archive_dir / "telemetry", segment_bytes=segment_bytes)
        self.nodes: dict[str, NodeView] = {}
        self._flops_per_item: dict[str, float] = {}  # per model, for the work of a job
        self._model_bytes: dict[str, int] = {}
        # pipeline stage models' cost models (None: not analysable)
        self._stage_costs: dict[str, ModelCost | None] = {}
        self.ingested = 0
        self.duplicates = 0
        self.stale = 0
        self._wake = asyncio.Event()
        self._stack = contextlib.AsyncExitStack()
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # every task it started and runs

    # -- lifecycle -----------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        await self._stack.__aenter__()
        tg = asyncio.TaskGroup()
        await self._stack.enter_async_context(tg)
        self._tg = tg
        sat = await self._stack.enter_async_context(self.bus.subscribe("odc/sat/#", qos=1))
        req = await self._stack.enter_async_context(self.bus.subscribe(REQUEST_TOPIC, qos=1))
        self._track(tg.create_task(self._ingest(sat), name="ground:ingest"))
        self._track(tg.create_task(self._requests(req), name="ground:requests"))
        self._track(tg.create_task(self._uplink_loop(), name="ground:uplink"))
        self._track(tg.create_task(self._flush_loop(), name="ground:flush"))
        await self.bus.publish(
            topics.GROUND_STATIONS, dump(self.announcement), qos=1, retain=True
        )
        log.info("ground station up, archive %s, %d station(s)", self.dir, len(self.stations))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        alive = await cancel_all(self._tasks, self.clock)
        if alive:
            log.error("ground: tasks still running after repeated cancellation: %s",
                      ", ".join(alive))
        try:
            await self._stack.__aexit__(None, None, None)
        finally:
            self.archive.close()
            self._save_auth()
            self.table.close()

    def _track(self, task: asyncio.Task[None]) -> asyncio.Task[None]:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``coro`` beside the loops (a publish, a model upload): a failure is logged,
        not fatal to the service; cancelled on exit like the loops."""
        task = self._track(asyncio.get_running_loop().create_task(coro, name=name))
        task.add_done_callback(_log_failure)

    # -- ingest --------------------------------------------------------------------------
    async def _ingest(self, sub: Any) -> None:
        append = self.archive.append
        now = self.clock.now
        flush = self.archive.flush
        while True:
            msg: Message = await sub.get()
            append(now(), msg.topic, msg.payload)
            self.ingested += 1
            if not sub.qsize():
                # idle: hand the buffer to the OS, so a crash of this process loses at
                # most the record being written; bursts are still written in batches
                flush()
            leaf = msg.topic.rsplit("/", 1)[-1]
            if leaf == "telemetry":
                continue
            try:
                self._on_sat_message(msg, leaf)
            except AuthError as exc:
                self.rejected += 1
                log.warning("ground: refused %s: %s", msg.topic, exc)
            except (GroundError, FlightSwError) as exc:
                log.warning("ground: ignored %s: %s", msg.topic, exc)
            except Exception:
                log.exception("ground: error handling a message on %s; going on", msg.topic)

    def _view(self, node: str) -> NodeView:
        v = self.nodes.get(node)
        if v is None:
            v = self.nodes[node] = NodeView(node)
        return v

    def _on_sat_message(self, msg: Message, leaf: str) -> None:
        node = topics.node_from_topic(msg.topic)
        if node is None or leaf not in ("result", "event", "state", "status"):
            return
        if not msg.payload:
            return  # a cleared retained status
        obj = decode(msg.payload)
        if not isinstance(obj, dict):
            raise ProtocolError(f"expected a map, got {type(obj).__name__}")
        if obj.get("node") != node:  # a node speaks for itself only, on its own topics
            raise AuthError(f"node: {obj.get('node')!r} does not match the topic's {node!r}")
        if self.verifier is not None:
            self.verifier.check(node, msg.topic, obj)
        if leaf == "result" and obj.get("kind") == "stage_return":
            self._on_stage_return(node, parse(StageReturn, obj))
        elif leaf == "result":
            self._on_result(node, parse(JobResult, obj))
        elif leaf == "event":
            ev = parse_event(obj)
            if isinstance(ev, JobEvent):
                self._on_job_event(node, ev)
            elif isinstance(ev, ModelStored):
                v = self._view(node)
                v.models.add(ev.model)
                v.models_sending.pop(ev.model, None)
                self._wake.set()
            elif isinstance(ev, ModelMissing):
                v = self._view(node)
                v.models.discard(ev.model)
                if self.store.has(ev.model):
                    self._spawn(
                        self._send_model(v, ev.model, self.clock.now(), force=True),
                        name=f"ground:model:{node}",
                    )
            elif isinstance(ev, ErrorEvent):
                log.info("ground: %s reports %s: %s", node, ev.code, ev.message)
        elif leaf == "state":
            st = parse(NodeState, obj)
            bad = [k for k, x in st.model_dump().items()
                   if isinstance(x, float) and not math.isfinite(x)]
            if bad:  # placement reads these figures: a NaN would poison every choice
                raise ProtocolError(f"{bad[0]}: not a finite number", field=bad[0])
            v = self._view(node)
            v.state = st
            v.last_seen = self.clock.now()
            if not v.models.issuperset(st.models):  # a job waiting for one may go now
                v.models.update(st.models)
                self._wake.set()
            for job_id in st.leases:  # now counted in its queued_work_s
                v.sent_work.pop(job_id, None)
                v.planned_work.pop(job_id, None)  # the stage planned here arrived
            if v.status in ("unknown", "offline"):
                v.status = "safe" if st.safe_mode else "online"
            self._renew_leases(node, st)
        else:
            s = parse(Status, obj)
            v = self._view(node)
            v.status = s.state
            v.profile = s.profile
            if self.verifier is not None and s.state != "offline":
                self.verifier.expect_will(node, s.will_seq)
            if s.orbit is not None and v.orbits is None:
                with contextlib.suppress(FlightSwError):
                    v.orbits = orbits_from_info(s.orbit, node)
            if s.state == "offline":
                v.state = None  # not a target again before its next heartbeat
                self._lapse_node(node, "node went offline")
            self._wake.set()

    def _publish_record(self, job_id: str, result: JobResult | None = None) -> None:
        if result is not None:  # the job just ended: its outputs are at hand
            rec = self.table.record(job_id)
            rec.outputs = result.outputs
        else:
            rec = self.table.record(job_id, with_outputs=True)  # outputs once it has ended
        self._spawn(
            self.bus.publish(job_topic(job_id), dump(rec), qos=1), f"ground:record:{job_id}"
        )

    def _on_result(self, node: str, res: JobResult) -> None:
        try:
            row = self.table.row(res.job_id)
        except GroundError:
            log.warning("ground: result for unknown job %s from %s", res.job_id, res.node)
            return
        if row["node"] != node and row["state"] not in TERMINAL:
            # only the node holding the job's lease may end it (a copy after the end is a
            # duplicate, whoever sends it)
            raise AuthError(
                f"result for {res.job_id} from {node}, which does not hold its lease "
                f"({row['node'] or 'nobody'} does)"
            )
        verdict = judge_result(row["state"] in TERMINAL, row["epoch"], res.epoch)
        if verdict == "duplicate":
            self.duplicates += 1
            self.table.update(res.job_id, duplicates=row["duplicates"] + 1)
            return
        if verdict == "stale":
            self.stale += 1
            log.info(
                "ground: stale result for %s (epoch %d < %d) ignored",
                res.job_id,
                res.epoch,
                row["epoch"],
            )
            return
        self.table.update(
            res.job_id,
            state=res.status,
            epoch=res.epoch,
            node=res.node,
            reason=res.reason,
            host_wall_s=res.host_wall_s,
            modelled_latency_s=res.modelled_latency_s,
            modelled_energy_j=res.modelled_energy_j,
            power_mode=res.power_mode,
            accepted_at=res.accepted_at,
            started_at=res.started_at,
            finished_at=res.finished_at,
            migrations=max(res.migrations, row["migrations"]),
            result_blob=dump(res),
        )
        self._forget_sent(res.job_id)
        self._publish_record(res.job_id, res)
        if row["parent"] is not None:
            self._settle_parent(row["parent"])

    def _on_stage_return(self, node: str, ret: StageReturn) -> None:
        """A member gave a pipeline job back after its stage (the next member unusable):
        keep the stages left, on its outputs, and queue the job for a new chain with
        epoch + 1 (``_uplink_pipeline``). Judged as a result (``judge_result``): after the
        job ended, a duplicate; at an older epoch, or while nobody holds the job (queued
        again), stale; either ignored. Refused (counted in ``rejected``): from a node that
        does not hold the lease, and a job that is not a later stage of the plan than the
        one its chain began at, with that stage's model (:meth:`_check_return`)."""
        job_id = ret.job.job_id
        try:
            row = self.table.row(job_id)
        except GroundError:
            log.warning("ground: stage return for unknown job %s from %s", job_id, node)
            return
        ended = row["state"] in TERMINAL
        if not ended and row["node"] not in (None, node):
            raise AuthError(f"stage return of {job_id} from {node}, which does not hold its "
                            f"lease ({row['node']} does)")
        verdict = judge_result(ended, row["epoch"], ret.epoch)
        if verdict == "record" and (row["node"] is None or row["state"] == "queued"):
            verdict = "stale"  # queued again: nobody holds it at this epoch
        if verdict == "duplicate":
            self.duplicates += 1
            self.table.update(job_id, duplicates=row["duplicates"] + 1)
            return
        if verdict == "stale":
            self.stale += 1
            log.info("ground: stale stage return of %s from %s (epoch %d, job at %d, %s)",
                     job_id, node, ret.epoch, row["epoch"], row["state"])
            return
        self._check_return(row, ret)
        p = ret.job.pipeline
        assert p is not None
        epoch = next_epoch(ret.epoch)
        log.warning("ground: %s given back by %s at epoch %d: %s; stages %d-%d re-planned "
                    "with epoch %d", job_id, node, ret.epoch, ret.reason, p.stage,
                    len(p.stages) - 1, epoch)
        self._forget_sent(job_id)
        self.table.update(job_id, state="queued", epoch=epoch, node=None, target=None,
                          detail=f"re-plan: {ret.reason}", replans=row["replans"] + 1,
                          resume_blob=dump(ret.job))
        self._publish_record(job_id)
        self._wake.set()

    def _check_return(self, row: dict[str, Any], ret: StageReturn) -> None:
        """The returned job is a later stage of this job's plan than the one its chain
        began at (stage 0, or the stage of the last re-plan), with that stage's model;
        else :class:`ProtocolError` naming the field, counted in ``rejected``."""
        job_id = row["job_id"]
        plan = self.table.submitted(job_id).pipeline
        p = ret.job.pipeline
        resume = self.table.resume(job_id) if row["replans"] else None
        began = resume.pipeline.stage if resume is not None and resume.pipeline else 0
        why: tuple[str, str] | None = None
        if plan is None or p is None or p.stages != plan.stages:
            why = ("job.pipeline", "not a later stage of this job's plan")
        elif p.stage <= began:
            why = ("job.pipeline.stage", f"stage {p.stage} is not past stage {began}, "
                   "where the chain it was given began")
        elif ret.job.model != plan.stages[p.stage]:
            why = ("job.model", f"{ret.job.model[:12]} is not stage {p.stage}'s model "
                   f"{plan.stages[p.stage][:12]}")
        if why is not None:
            self.rejected += 1
            raise ProtocolError(f"stage return of {job_id} from {ret.node}: {why[0]}: "
                                f"{why[1]}", field=why[0])

    def _settle_parent(self, job_id: str) -> None:
        """A micro-batched job's state from its children's (:mod:`groundstation.microbatch`):
        failed once one of them failed (the reason names it), done once all are, with
        their outputs joined in order, else running once one left the queue. Only a parent
        that has not ended changes, so it ends once; called on each child's end and at
        every uplink pass (a restart between a child's end and its parent's ends it
        then)."""
        try:
            row = self.table.row(job_id)
        except GroundError:
            return
        if row["state"] in TERMINAL:
            return
        kids = self.table.children(job_id)
        if not kids:
            return
        now = self.clock.now()
        sums = {"attempts": sum(k["attempts"] for k in kids),
                "replans": sum(k["replans"] for k in kids)}
        failed = next((k for k in kids if k["state"] == "failed"), None)
        reason = None if failed is None else \
            f"micro-batch {failed['job_id']} failed: {failed['reason']}"
        res: JobResult | None = None
        if failed is None and all(k["state"] == "done" for k in kids):
            results = [self.table.result(k["job_id"]) for k in kids]
            try:
                res = join_results(self.table.submitted(job_id),
                                   [r for r in results if r is not None])
            except GroundError as exc:
                reason = f"micro-batches not joined: {exc}"
        if reason is not None:
            log.warning("ground: %s failed: %s", job_id, reason)
            self.table.update(job_id, state="failed", reason=reason, finished_at=now, **sums)
            self._publish_record(job_id)
            return
        if res is not None:
            self.table.update(
                job_id, state="done", node=res.node, host_wall_s=res.host_wall_s,
                modelled_latency_s=res.modelled_latency_s,
                modelled_energy_j=res.modelled_energy_j, power_mode=res.power_mode,
                accepted_at=res.accepted_at, started_at=res.started_at,
                finished_at=res.finished_at, migrations=res.migrations,
                result_blob=dump(res), **sums)
            self._publish_record(job_id, res)
            return
        state = "running" if any(k["state"] != "queued" for k in kids) else "queued"
        if state != row["state"] or sums["attempts"] != row["attempts"]:
            self.table.update(job_id, state=state, **sums)
            self._publish_record(job_id)

    def _on_job_event(self, node: str, ev: JobEvent) -> None:
        try:
            row = self.table.row(ev.job_id)
        except GroundError:
            return
        if row["node"] != node:
            if row["state"] in TERMINAL:
                return
            raise AuthError(
                f"event of {ev.job_id} from {node}, which does not hold its lease "
                f"({row['node'] or 'nobody'} does)"
            )
        if judge_result(row["state"] in TERMINAL, row["epoch"], ev.epoch) != "record":
            return
        now = self.clock.now()
        fields: dict[str, Any] = {"lease_seen": now, "detail": ev.detail}
        if ev.state == "handed_over":
            fields.update(
                state="migrating",
                node=ev.target,
                epoch=next_epoch(ev.epoch),
                migrations=row["migrations"] + 1,
            )
        elif ev.state in ("accepted", "queued", "deferred", "running", "suspended"):
            # a suspended job waits in its node's queue with the items it has done; the
            # core's `queued` note that follows a suspension must not hide it
            shown = "suspended" if ev.state == "queued" and row["state"] == "suspended" \
                else ev.state
            fields.update(state=shown, node=ev.node, epoch=ev.epoch)
            if ev.state == "accepted" and row["accepted_at"] is None:
                fields["accepted_at"] = ev.t
            if ev.state == "running" and row["started_at"] is None:
                fields["started_at"] = ev.t  # the first start: a resume keeps it
        else:  # shed, cancelled: the failed result follows
            fields.update(detail=f"{ev.state}: {ev.detail}")
        self.table.update(ev.job_id, **fields)
        if ev.state == "handed_over":
            self._publish_record(ev.job_id)  # the rest shows in `jobs`; watchers need ends

    def _renew_leases(self, node: str, st: NodeState) -> None:
        now = self.clock.now()
        for job_id, epoch in st.leases.items():
            try:
                row = self.table.row(job_id)
            except GroundError:
                continue
            if judge_result(row["state"] in TERMINAL, row["epoch"], epoch) != "record":
                continue
            if row["node"] != node:
                continue  # only the holder renews a lease (a handover names the next one)
            if epoch > row["epoch"]:
                self.table.update(job_id, epoch=epoch, lease_seen=now)
            else:
                self.table.update(job_id, lease_seen=now)

    def _lapse_node(self, node: str, why: str) -> None:
        for row in list(self.table.active()):
            if row["node"] == node and lapses_when_offline(row["state"]):
                self._lapse(row, f"{why} ({node})")

    def _lapse(self, row: dict[str, Any], why: str) -> None:
        job_id = row["job_id"]
        if row["attempts"] >= self.max_attempts:
            # every job ends: one that no node keeps (refused, lost, never acknowledged)
            # fails with the reason rather than going round for ever
            self._forget_sent(job_id)
            self._fail_at_ground(
                row, f"undeliverable: lease lapsed after {row['attempts']} uplinks (last: {why})",
                self.clock.now(),
            )
            return
        epoch = next_epoch(row["epoch"])
        log.warning(
            "ground: lease of %s on %s lapsed: %s; re-queued with epoch %d",
            job_id,
            row["node"],
            why,
            epoch,
        )
        self._forget_sent(job_id)
        self.table.update(
            job_id,
            state="queued",
            epoch=epoch,
            target=None,
            detail=f"lease lapsed: {why}",
            node=None,
        )
        self._publish_record(job_id)
        self._wake.set()

    def _forget_sent(self, job_id: str) -> None:
        """The job ended, or its chain did (lapsed, given back): drop what it booked."""
        for v in self.nodes.values():
            v.sent_work.pop(job_id, None)
            v.planned_work.pop(job_id, None)

    # -- uplink --------------------------------------------------------------------------
    def placeable(self, view: NodeView, now: float) -> bool:
        """A node jobs may go to: online, and heard from (a heartbeat, sealed when the
        ground holds keys) within the lease time, so a name that only announced itself,
        or went silent, draws no work."""
        return (
            view.status == "online"
            and view.state is not None
            and now - view.last_seen <= self.lease_s
        )

    def in_view(self, view: NodeView, now: float) -> list[int]:
        """The stations ``view`` is above the mask of at ``now`` (none without orbits)."""
        if view.orbits is None:
            return []
        r = view.orbits.positions(now)
        return [int(s) for s in np.flatnonzero(
            in_contact(r, now, self.stations, self.min_elevation_deg)[0])]

    def antenna_for(self, view: NodeView, stations: list[int], now: float
                    ) -> tuple[int, int, float] | None:
        """``(station, antenna, start)`` of an uplink to ``view`` asked for at ``now``: of
        the ``stations`` it is in view of, the one whose antenna can start on it soonest
        (:class:`~flightsw.protocol.antennas.Antennas`; ties: the first station)."""
        best: tuple[int, int, float] | None = None
        for s in stations:
            a, start = self.antennas.start(s, view.node, now)
            if best is None or start < best[2]:
                best = (s, a, start)
        return best

    async def _uplink_loop(self) -> None:
        while True:
            await self._wait_wake(self.tick_s)
            self._wake.clear()
            try:
                await self._uplink_once()
            except (GroundError, FlightSwError) as exc:
                log.error("ground: uplink pass failed: %s", exc)
            except Exception:
                log.exception("ground: uplink pass failed; the next pass tries again")

    async def _wait_wake(self, mission_s: float) -> None:
        """Until something changed or ``mission_s`` passed (at least 50 ms host time)."""
        if self._wake.is_set():
            return
        waiter = asyncio.ensure_future(self._wake.wait())
        timer = asyncio.ensure_future(
            self.clock.sleep(max(mission_s, 0.05 * self.clock.scale))
            if self.clock.scale != float("inf")
            else self.clock.sleep(mission_s)
        )
        try:
            await asyncio.wait({waiter, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            timer.cancel()

    async def _uplink_once(self) -> None:
        now = self.clock.now()
        in_view: dict[str, list[int]] = {}  # per pass: the stations each node is in view of
        horizon = now + self.tick_s

        def reachable(v: NodeView) -> bool:
            """In view of a station with an antenna that can start on it before the next
            pass (without stations: always, a relay network)."""
            if not self.stations:
                return True
            if v.node not in in_view:
                in_view[v.node] = self.in_view(v, now)
            got = self.antenna_for(v, in_view[v.node], now)
            return got is not None and got[2] < horizon

        chains: dict[tuple[str, int], list[str]] = {}  # per pass: micro-batches' chain
        for row in list(self.table.active()):
            if row["micro_batches"]:  # never uplinked: it ends with its children
                self._settle_parent(row["job_id"])
                continue
            if row["state"] != "queued":
                seen = row["lease_seen"] or row["uplinked_at"] or now
                if lease_lapsed(now, seen, self.lease_s):
                    self._lapse(row, f"no lease renewal for {now - seen:.0f} s")
                continue
            if expired_at_ground(row["deadline"], now):
                self._fail_at_ground(row, EXPIRED_AT_GROUND, now)
                continue
            if row["stages"]:
                await self._uplink_pipeline(row, now, reachable, chains)
                continue
            if row["target"] is not None:
                choice = self.nodes.get(row["target"])
                if choice is None or not self.placeable(choice, now) or not reachable(choice):
                    continue
            else:
                reach = [v for v in self.nodes.values()
                         if self.placeable(v, now) and reachable(v)]
                k = choose_uplink(
                    [self._uplink_option(v, row["model"], now) for v in reach],
                    input_bytes=self.table.submit_bytes(row["job_id"]),
                    model_bytes=self._model_size(row["model"]),
                )
                if k is None:
                    continue
                choice = reach[k]
            if row["model"] not in choice.models:
                await self._send_model(choice, row["model"], now)
                continue
            await self._send_job(row, choice.node, now)
            # the node's next heartbeat lists it; until then it counts in its backlog
            choice.sent_work[row["job_id"]] = (now, self._work_s(choice, row))

    async def _uplink_pipeline(self, row: dict[str, Any], now: float,
                               reachable: Callable[[NodeView], bool],
                               chains: dict[tuple[str, int], list[str]] | None = None
                               ) -> None:
        """Uplink the first stage left of a pipeline job (stage 0, or the next stage of a
        job a member gave back, on the outputs of the stages done) with the group of the
        stages left chosen now (:mod:`groundstation.pipeline`), each member sent its stage
        model first. The micro-batches of one job uplinked in one pass (``chains``, per
        parent and first stage left) go on the chain chosen for the first of them while
        its members may still take work (placeable, and neither in safe mode nor
        throttled by their last heartbeat: the chain rule's ``usable``) and its first
        member is reachable, so they stream through it one behind the other."""
        resume = self.table.resume(row["job_id"]) if row["replans"] else None
        plan = (resume or self.table.submitted(row["job_id"])).pipeline
        assert plan is not None
        start = plan.stage if resume is not None else 0
        left = plan.stages[start:]
        views = [v for v in self.nodes.values() if self.placeable(v, now)]
        key = (row["parent"], start) if row["parent"] is not None else None
        group = None if key is None or chains is None else chains.get(key)
        if group is not None and not (
                all(n in self.nodes and self.placeable(self.nodes[n], now)
                    and usable(_candidate(self.nodes[n], now, self.lease_s, True))
                    for n in group)
                and reachable(self.nodes[group[0]])):
            group = None
        bounds, duration = self._pipeline_figures(left, row["items"], views)
        if group is None:
            times = [now + duration * (i + 1) / TRACK_SAMPLES
                     for i in range(TRACK_SAMPLES)] if duration > 0 else []
            group = choose_group(left, [_candidate(v, now, self.lease_s, reachable(v), times)
                                        for v in views], bounds)
        if group is None:
            return
        if key is not None and chains is not None:
            chains[key] = group
        for node, model in zip(group, left, strict=True):
            if model not in self.nodes[node].models:
                await self._send_model(self.nodes[node], model, now)
        first = self.nodes[group[0]]
        if left[0] not in first.models:
            return  # the first stage left goes once its model is there
        # the stages done keep the nodes that ran them (a record, not a placement)
        await self._send_job(row, first.node, now, members=plan.members[:start] + group,
                             job=resume)
        self._book_chain(row, group, left, now, duration)

    def _book_chain(self, row: dict[str, Any], group: list[str], left: list[str],
                    now: float, duration_s: float) -> None:
        """Count the job just sent in its members' backlogs, so the next chain chosen does
        not take them as idle: the first stage left on the first member as a job sent
        (``sent_work``, until its heartbeat lists it), each later stage on its member as
        planned (``planned_work``, until that member's heartbeat lists the job, the job's
        chain ends, or the job's expected duration and a lease have passed). Each is the
        stage model's FLOPs per item times the job's items over the member's effective
        ops/s; a micro-batch books its own items under its own id."""
        job_id = row["job_id"]
        items = row["items"]
        first = self.nodes[group[0]]
        first.sent_work[job_id] = (now, self._stage_work_s(first, left[0], items))
        until = now + duration_s + self.lease_s
        for node, model in zip(group[1:], left[1:], strict=True):
            v = self.nodes[node]
            v.planned_work[job_id] = (until, self._stage_work_s(v, model, items))

    def _stage_work_s(self, v: NodeView, model: str, items: int) -> float:
        """Modelled seconds of a stage of ``items`` on ``v`` (0 if the ground cannot
        tell: no cost model of the stage, or no effective ops/s in its heartbeat)."""
        cost = self._stage_cost(model)
        ops = v.state.effective_ops_per_s if v.state is not None else 0.0
        return cost.flops_per_item * items / ops if cost is not None and ops > 0 else 0.0

    def _stage_cost(self, model: str) -> ModelCost | None:
        """A stage model's cost model, analysed once; a model that cannot be analysed is
        remembered as such (warned about once: its bytes never change). One not in the
        store yet is tried again at the next pass."""
        if model in self._stage_costs:
            return self._stage_costs[model]
        try:
            cost: ModelCost | None = analyse(self.store.path(model), model_hash=model)
        except UnknownModelError as exc:
            log.info("ground: no cost model of stage %s yet: %s", model[:12], exc)
            return None
        except (CostModelError, ModelStoreError) as exc:
            log.warning("ground: no cost model of stage %s: %s", model[:12], exc)
            cost = None
        self._stage_costs[model] = cost
        return cost

    def _pipeline_figures(self, stages: list[str], items: int,
                          views: list[NodeView]) -> tuple[list[int], float]:
        """What the group choice weighs for these stages of a job of ``items``: the bytes
        each stage ships to the next (the next stage model's inputs, per item, times the
        items; 0 where a shape is unknown) and the job's expected mission seconds (every
        stage's FLOPs at the median effective ops/s of ``views``, and every boundary at
        their slowest terminal)."""
        costs = [self._stage_cost(m) for m in stages]
        bounds = [items * _item_bytes(c) if c is not None else 0 for c in costs[1:]]
        ops = sorted(v.state.effective_ops_per_s for v in views
                     if v.state is not None and v.state.effective_ops_per_s > 0)
        rates = [v.state.isl_rate_bps for v in views
                 if v.state is not None and v.state.isl_rate_bps > 0]
        if not ops:
            return bounds, 0.0
        work = sum(c.flops_per_item for c in costs if c is not None) * items
        hops = 8.0 * sum(bounds) / min(rates) if rates else 0.0
        return bounds, work / ops[len(ops) // 2] + hops

    def _fail_at_ground(self, row: dict[str, Any], reason: str, now: float) -> None:
        """End a job the ground never uplinked (the rulebook's ground failure)."""
        log.warning("ground: %s failed at the ground: %s", row["job_id"], reason)
        self.table.update(row["job_id"], state="failed", reason=reason, finished_at=now,
                          node=None, target=None)
        self._publish_record(row["job_id"])
        if row["parent"] is not None:
            self._settle_parent(row["parent"])

    def _uplink_option(self, v: NodeView, model: str, now: float) -> UplinkOption:
        """A node in contact as the rulebook's uplink option (see ``UplinkOption``)."""
        st = v.state
        rate = math.inf  # the link is not modelled without stations (a relay network)
        if self.stations and st is not None and st.uplink_rate_bps > 0:
            rate = st.uplink_rate_bps
        return UplinkOption(
            node=v.node,
            uplink_rate_bps=rate,
            backlog_s=v.backlog_s(now, self.lease_s),
            has_model=model in v.models or model in v.models_sending,
        )

    def _model_size(self, model: str) -> int:
        size = self._model_bytes.get(model)
        if size is None:
            try:
                size = self.store.path(model).stat().st_size
            except (ModelStoreError, OSError):
                return 0  # not in the store: the job cannot be sent anywhere anyway
            self._model_bytes[model] = size
        return size

    def _work_s(self, v: NodeView, row: dict[str, Any]) -> float:
        """The job's modelled seconds of work on ``v`` at its fastest mode: the model's
        FLOPs per item (``flightsw.models.cost.analyse``) times the items, over the node's
        effective ops/s from its heartbeat (0 if the ground cannot tell)."""
        model = row["model"]
        flops = self._flops_per_item.get(model)
        if flops is None:
            try:
                flops = analyse(self.store.path(model), model_hash=model).flops_per_item
            except (CostModelError, ModelStoreError) as exc:
                log.warning("ground: no work estimate for model %s: %s", model[:12], exc)
                flops = 0.0
            self._flops_per_item[model] = flops
        ops = v.state.effective_ops_per_s if v.state is not None else 0.0
        return flops * row["items"] / ops if ops > 0 else 0.0

    async def _send_model(
        self, view: NodeView, model: str, now: float, *, force: bool = False
    ) -> None:
        sent = view.models_sending.get(model)
        if not force and sent is not None and now - sent < self.lease_s:
            return
        try:
            data = self.store.path(model).read_bytes()
        except ModelStoreError as exc:
            log.error("ground: cannot send model: %s", exc)
            return
        view.models_sending[model] = now
        chunks = chunk_model(data, CHUNK_BYTES)
        for i, c in enumerate(chunks):
            msg = ModelChunk(model=model, index=i, total=len(chunks), size=len(data), data=c)
            self._uplink_send(view, topics.model(view.node), dump(msg))
        log.info("ground: model %s (%d bytes) sent to %s", model[:12], len(data), view.node)

    def uplink_delay_s(self, view: NodeView, size: int) -> float:
        """Serialisation at the node's uplink rate plus propagation (0 without stations)."""
        if not self.stations or view.state is None or view.state.uplink_rate_bps <= 0:
            return 0.0
        return 8.0 * size / view.state.uplink_rate_bps + view.state.alt_km / 299_792.458

    def _uplink_send(self, view: NodeView, topic: str, payload: bytes) -> None:
        """Send to one node in order, each message after its modelled uplink time, on an
        antenna of a station it is in view of (held from the message's start to its end:
        a station sends to as many nodes at once as it has antennas)."""
        delay = self.uplink_delay_s(view, len(payload))
        prev = view.uplink_tail
        now = self.clock.now()
        # asked for when this node's messages ahead are out, so an antenna is held only
        # while it sends (one of another station may have them)
        after = max(now, view.uplink_until)
        got = self.antenna_for(view, self.in_view(view, now), after) if self.stations else None
        if got is not None:
            s, a, start = got
            end = start + delay
            self.antennas.book(s, a, view.node, end)
            view.uplink_until = end
            self._send_after(view, prev, topic, payload, lambda: self.clock.sleep_until(end))
            return
        view.uplink_until = max(view.uplink_until, now) + delay
        if delay <= 0 and (prev is None or prev.done()):
            # nothing ahead and no link to model: straight out (publish only queues it)
            self._spawn(self.bus.publish(topic, payload, qos=1), f"ground:uplink:{view.node}")
            view.uplink_tail = None
            return
        self._send_after(view, prev, topic, payload,
                         (lambda: self.clock.sleep(delay)) if delay > 0 else None)

    def _send_after(self, view: NodeView, prev: asyncio.Task[None] | None, topic: str,
                    payload: bytes, wait: Callable[[], Awaitable[None]] | None) -> None:
        """Publish once the node's message ahead (``prev``) is out and ``wait`` (the
        modelled uplink time) has passed; the node's new last message."""

        async def send() -> None:
            if prev is not None:
                await asyncio.wait({prev})
            if wait is not None:
                await wait()
            try:
                await self.bus.publish(topic, payload, qos=1)
            except FlightSwError as exc:  # the lease or the next pass sends it again
                log.error("ground: uplink to %s failed: %s", view.node, exc)

        assert self._tg is not None
        view.uplink_tail = self._track(
            self._tg.create_task(send(), name=f"ground:uplink:{view.node}")
        )

    async def _send_job(self, row: dict[str, Any], node: str, now: float,
                        members: list[str] | None = None,
                        job: JobSubmit | None = None) -> None:
        """Uplink the job (``job``: a pipeline's stages left, instead of the submitted job)
        to ``node`` at the row's epoch; ``members`` the pipeline group of this uplink."""
        job = self.table.submitted(row["job_id"]) if job is None else job
        job = job.model_copy(update={"epoch": row["epoch"]})
        if members is not None and job.pipeline is not None:  # the group of this uplink
            plan = job.pipeline.model_copy(update={"members": members,
                                                   "start": job.pipeline.stage})
            job = job.model_copy(update={"pipeline": plan})
        self.table.update(
            row["job_id"],
            state="uplinked",
            node=node,
            uplinked_at=now,
            lease_seen=now,
            attempts=row["attempts"] + 1,
        )
        view = self._view(node)
        self._uplink_send(view, topics.job(node), dump(job))
        self._publish_record(row["job_id"])

    # -- client requests -----------------------------------------------------------------
    async def _requests(self, sub: Any) -> None:
        async for msg in sub:
            answer = self.desk.answer(msg.payload)
            if answer is None:
                continue
            client, payload = answer
            try:
                await self.bus.publish(reply_topic(client), payload, qos=1)
            except FlightSwError as exc:
                log.error("ground: reply to %s not sent: %s", client, exc)

    def knows(self, node: str) -> bool:
        """A node the ground can place work on some day: one it holds a key of, or
        (without keys) one it has heard from."""
        if self.verifier is not None:
            return self.verifier.knows(node)
        return node in self.nodes

    def job_submitted(self, job_id: str) -> None:
        self._publish_record(job_id)
        self._wake.set()

    async def _flush_loop(self) -> None:
        while True:
            await self.clock.sleep_host(0.5)
            self.archive.flush()
            self._save_auth()

    def _save_auth(self) -> None:
        """Keep each node's highest accepted sequence number (replays stay refused after a
        restart; numbers accepted within the last flush period are the exposure)."""
        v = self.verifier
        if v is not None and v.changed:
            self.table.save_auth(v.marks_of(v.changed))
            v.changed.clear()

    def summary(self) -> dict[str, Any]:
        return {
            "ingested": self.ingested,
            "duplicates": self.duplicates,
            "stale": self.stale,
            "rejected": self.rejected,
            # a micro-batched submission counts once in jobs, its children apart
            "jobs": self.table.counts(),
            "micro_batches": self.table.counts(children=True),
            "nodes": {k: v.status for k, v in self.nodes.items()},
        }


def _antenna_counts(antennas: int | Sequence[int], stations: int) -> list[int]:
    """One antenna count per station, from one count for all or one per station."""
    if isinstance(antennas, int):
        return [check_antennas(antennas)] * stations
    counts = [check_antennas(a, f"antennas[{k}]") for k, a in enumerate(antennas)]
    if len(counts) != stations:
        raise ConfigError(f"antennas: give one count, or one per station ({stations}), "
                          f"got {len(counts)}")
    return counts


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("ground: %s failed: %s", task.get_name(), task.exception())


def _item_bytes(cost: ModelCost) -> int:
    """Bytes per item of a stage model's tensor inputs (the first axis is the items; an
    unknown dimension counts 1)."""
    total = 0
    for spec in cost.inputs:
        if not spec.is_tensor or spec.shape is None:
            continue
        n = 1
        for d in spec.shape[1:]:
            n *= d if d is not None and d > 0 else 1
        total += n * np.dtype(spec.dtype).itemsize
    return total


def _candidate(v: NodeView, now: float, lease_s: float, in_contact: bool,
               times: list[float] | None = None) -> PipelineCandidate:
    """A node as the pipeline group choice sees it: backlog, models, contact, the
    position, ISL terminal and headroom of its last heartbeat (no heartbeat: no links),
    and its positions at ``times`` from its orbit (none without an announced orbit)."""
    st = v.state
    pos = None
    if st is not None and len(st.position_km) == 3:
        x, y, z = st.position_km
        pos = (x, y, z)
    track: tuple[tuple[float, float, float], ...] = ()
    if times and v.orbits is not None:
        track = tuple((float(r[0]), float(r[1]), float(r[2]))
                      for r in (v.orbits.positions(t)[0] for t in times))
    if st is None:
        return PipelineCandidate(
            v.node, v.backlog_s(now, lease_s),
            frozenset(v.models) | frozenset(v.models_sending), in_contact, pos)
    return PipelineCandidate(
        v.node, v.backlog_s(now, lease_s), frozenset(v.models) | frozenset(v.models_sending),
        in_contact, pos, st.isl_rate_bps, st.isl_max_range_km, soc=st.soc,
        margin_wh=st.margin_wh, temperature_c=st.temperature_c, throttle_c=st.throttle_c,
        safe_mode=st.safe_mode, track_km=track)
