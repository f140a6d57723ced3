"""Run the whole demo in one asyncio process: broker, ground station, nodes, jobs, view.

Everything talks real MQTT: the embedded amqtt broker (or ``--broker URL``), one
:class:`~flightsw.bus.mqtt.MqttBus` connection per node, one for the ground station and one
for the console (the ground client, the job feeder and the view). All share one scaled
:class:`~flightsw.clock.WallClock`. Node data lives in a temporary directory removed on exit;
the archive, ``report.png``, ``summary.json`` and ``demo.log`` go to the output directory.

SIGINT/SIGTERM stop the run early but still cleanly (summary, archive, report); a second
signal skips the summary and only tears down.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import shutil
import signal
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

import flightsw
from flightsw.broker import EmbeddedBroker
from flightsw.bus import Bus
from flightsw.bus.mqtt import MqttBus, Will
from flightsw.bus.url import parse_broker_url
from flightsw.clock import WallClock
from flightsw.constellation import make_policy
from flightsw.exceptions import ConfigError, FlightSwError, ProtocolError
from flightsw.node.config import NodeConfig
from flightsw.node.service import Node
from flightsw.physics import CircularOrbits
from flightsw.protocol import JobEvent, Status, Telemetry, decode, dump, parse, topics
from groundstation.cli.serve import parse_http
from groundstation.client import GroundClient
from groundstation.console.auth import OperatorAuth
from groundstation.console.commands import KeyRing
from groundstation.console.service import ConsoleService
from groundstation.demo.plan import DemoPlan, plan_demo
from groundstation.demo.state import DemoState, JobTrack
from groundstation.demo.summary import DemoResult, archive_facts
from groundstation.demo.view import PlainView, TtyView
from groundstation.demo.workload import KINDS, JobKind, Workload
from groundstation.exceptions import GroundError
from groundstation.protocol import JobRecord
from groundstation.service import GroundStation
from hardware_profiles import load_profile

__all__ = ["DemoOptions", "find_models", "run_demo"]

log = logging.getLogger("groundstation.demo")

_MARKER = ".flightsw-demo"
_FEED_UNTIL = 0.85  # stop submitting at this fraction of the run so late jobs can finish
_TEARDOWN_S = 45.0  # host seconds from the end of the run to everything closed
_COLLECT_S = 20.0  # host seconds for the final queries to the ground station
# the demo's telecommand keys (one per node, for the console to sign with): a demo secret
_COMMAND_KEY = "{node}-demo-cmd"


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What ``flightsw demo`` was asked to do."""

    out: Path = Path("demo-output")
    broker: str | None = None
    nodes: int = 6
    minutes: float = 2.0  # host minutes the mission runs
    time_scale: float = 50.0
    models_dir: Path | None = None
    seed: int = 0
    epoch: float | None = None
    plain: bool | None = None  # None: redraw in place when stdout is a terminal
    policy: str = "forecast"
    http: str | None = "127.0.0.1:8080"  # the operations console; None: none

    def check(self) -> None:
        if not 1 <= self.nodes <= 60:
            raise ConfigError(f"--nodes: must be between 1 and 60, got {self.nodes}")
        if not 0 < self.minutes <= 24 * 60:
            raise ConfigError(f"--minutes: must be > 0 and at most a day, got {self.minutes}")
        if not 0 < self.time_scale <= 10_000:
            raise ConfigError(f"--time-scale: must be in (0, 10000], got {self.time_scale}")
        if self.broker is not None:
            parse_broker_url(self.broker)
        make_policy(self.policy)  # ConfigError lists the valid names
        if self.http is not None:
            parse_http(self.http)

    @property
    def mission_s(self) -> float:
        return self.minutes * 60.0 * self.time_scale


def find_models(explicit: Path | None) -> Path:
    """The example models: ``explicit``, else ``examples/models`` here or in the checkout."""
    wanted = [k.model_file for k in KINDS.values()]
    if explicit is not None:
        candidates = [explicit]
    else:
        root = Path(flightsw.__file__).resolve().parents[1]
        candidates = [Path.cwd() / "examples" / "models", root / "examples" / "models"]
    for c in candidates:
        if all((c / f).is_file() for f in wanted):
            return c
    where = explicit if explicit is not None else candidates[-1]
    raise ConfigError(
        f"--models: {where} does not hold {', '.join(wanted)} "
        "(run from the repository checkout, or pass --models DIR)"
    )


def _prepare_out(out: Path) -> Path:
    """Make ``out``; clear the results of an earlier demo there; refuse foreign content."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out: {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / _MARKER).exists():
        raise ConfigError(
            f"--out: {out} is not empty and was not written by `flightsw demo`; "
            "choose another directory"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / _MARKER).write_text("written by `flightsw demo`; its contents are replaced each run\n")
    for name in ("archive",):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in ("report.png", "summary.json", "demo.log"):
        (out / name).unlink(missing_ok=True)
    return out / "archive"


@contextlib.contextmanager
def _log_to(path: Path) -> Any:
    """Send all logging (and warnings) to ``path`` for the run; nothing to the terminal."""
    root = logging.getLogger()
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    saved = (root.level, list(root.handlers))
    for h in saved[1]:
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    quiet = {name: logging.getLogger(name).level for name in ("amqtt", "transitions")}
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        handler.close()
        root.setLevel(saved[0])
        for h in saved[1]:
            root.addHandler(h)
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)


class _Run:
    """One demo run: owns the services (via an exit stack) and the console tasks."""

    def __init__(self, opts: DemoOptions, plan: DemoPlan, models: Path, archive: Path,
                 out: TextIO) -> None:
        self.opts = opts
        self.plan = plan
        self.models = models
        self.archive = archive
        self.out = out
        self.state = DemoState(plan)
        self.clock = WallClock(epoch=plan.epoch, scale=opts.time_scale)
        self.stop = asyncio.Event()
        self.interrupted = False
        self.stuck = False
        self.run_id = uuid.uuid4().hex[:6]
        self.hashes: dict[str, str] = {}
        self._done_q: asyncio.Queue[JobTrack] = asyncio.Queue()
        self.started = self.clock.perf_counter()
        self.nodes: list[Node] = []
        self.url = ""
        self.ground: GroundStation
        self.console_bus: MqttBus
        scale = opts.time_scale
        # periods scale with the time scale so the message rate per host second stays sane
        self.telemetry_s = max(10.0, 0.25 * scale)
        self.physics_s = max(10.0, 0.1 * scale)
        self.lease_s = max(120.0, 7.5 * scale)  # ~7 host seconds: no spurious lapses
        self.model_wait_s = max(60.0, 10.0 * scale)

    # -- services ------------------------------------------------------------------------
    def _bus(self, url: str, name: str, will: Will | None = None) -> MqttBus:
        return MqttBus(url, f"demo-{self.run_id}-{name}", will=will, clean_start=True,
                       persistent_session=False)

    async def start_ground(self, stack: contextlib.AsyncExitStack) -> GroundClient:
        """The broker (unless given), the ground station and the console's ground client."""
        opts, plan = self.opts, self.plan
        if opts.broker is None:
            broker = await stack.enter_async_context(EmbeddedBroker(port=None))
            url = broker.url
            print(f"broker: {url} (embedded amqtt, this process)", file=self.out, flush=True)
        else:
            url = opts.broker
            print(f"broker: {parse_broker_url(url).redacted()}", file=self.out, flush=True)
        self.url = url
        gbus = await stack.enter_async_context(self._bus(url, "ground"))
        self.ground = await stack.enter_async_context(
            GroundStation(gbus, self.clock, self.archive, stations=plan.stations,
                          min_elevation_deg=plan.min_elevation_deg, lease_s=self.lease_s)
        )
        self.console_bus = await stack.enter_async_context(self._bus(url, "console"))
        if opts.http is not None:
            await self.start_web_console(stack, url, opts.http)
        return await stack.enter_async_context(
            GroundClient(self.console_bus, self.clock, client_id=f"demo-{self.run_id}-client",
                         timeout_s=30)
        )

    async def start_web_console(
        self, stack: contextlib.AsyncExitStack, url: str, http: str
    ) -> None:
        """The operations console on ``http`` (on a free port if that one is taken)."""
        host, port = parse_http(http)
        wbus = await stack.enter_async_context(self._bus(url, "web"))
        auth = OperatorAuth()
        keys = KeyRing(pattern=_COMMAND_KEY)
        ground = self.ground
        for p in (port, 0):
            try:
                web = await stack.enter_async_context(ConsoleService(
                    wbus, self.clock, self.archive, host=host, port=p, auth=auth, keys=keys,
                    ground_ingested=lambda: ground.ingested))
                break
            except OSError as exc:
                if p == 0:
                    raise
                log.warning("demo: console port %d not free (%s); taking a free one", p, exc)
        print(f"console: {web.url}#token={auth.token}  (open it in a browser)",
              file=self.out, flush=True)

    async def start_nodes(self, stack: contextlib.AsyncExitStack, tmp: Path) -> None:
        """One MQTT connection and one :class:`Node` per planned node."""
        opts, plan, url = self.opts, self.plan, self.url
        for i, n in enumerate(plan.nodes):
            profile = load_profile(n.profile)
            config = NodeConfig(
                node_id=n.node_id,
                profile=n.profile,
                orbit=n.orbit,
                data_dir=tmp / n.node_id,
                physics_step_s=self.physics_s,
                telemetry_period_s=self.telemetry_s,
                state_period_s=self.telemetry_s,
                initial_soc=n.initial_soc,
                seed=opts.seed * 1000 + i,
                policy=opts.policy,
                lease_s=self.lease_s,
                model_wait_s=self.model_wait_s,
                command_key=_COMMAND_KEY.replace("{node}", n.node_id),
            )
            config.data_dir.mkdir(parents=True)
            orbit = n.orbit
            orbits = CircularOrbits(
                orbit.altitude_km or plan.altitude_km,
                orbit.inclination_deg or plan.inclination_deg,
                orbit.raan_deg,
                orbit.arg_latitude_deg,
                epoch=plan.epoch,
                names=[n.node_id],
            )
            will = Will(
                topic=topics.status(n.node_id),
                payload=dump(Status(node=n.node_id, state="offline", t=0.0,
                                    profile=profile.name)),
                qos=1,
                retain=True,
            )
            bus = await stack.enter_async_context(self._bus(url, n.node_id, will))
            node = await stack.enter_async_context(Node(config, bus, self.clock, profile, orbits))
            self.nodes.append(node)

    async def settle(self, quiet_s: float = 0.3, limit_s: float = 5.0) -> None:
        """Until the ground has ingested what the stopped nodes flushed (host seconds)."""
        clock = self.clock
        give_up = clock.perf_counter() + limit_s
        last, since = -1, clock.perf_counter()
        while clock.perf_counter() < give_up:
            if self.ground.ingested != last:
                last, since = self.ground.ingested, clock.perf_counter()
            elif clock.perf_counter() - since >= quiet_s:
                return
            await clock.sleep_host(0.05)

    # -- console tasks -------------------------------------------------------------------
    async def _watch(self, bus: Bus, pattern: str, qos: int,
                     handle: Callable[[bytes], Awaitable[None] | None]) -> None:
        async with bus.subscribe(pattern, qos=qos) as sub:
            async for msg in sub:
                try:
                    got = handle(msg.payload)
                    if got is not None:
                        await got
                except (ProtocolError, FlightSwError) as exc:
                    log.warning("demo: ignored %s: %s", msg.topic, exc)

    def _on_telemetry(self, payload: bytes) -> None:
        self.state.on_telemetry(parse(Telemetry, payload))

    def _on_event(self, payload: bytes) -> None:
        obj = decode(payload)
        if isinstance(obj, dict) and obj.get("kind") == "job_event":
            self.state.on_job_event(parse(JobEvent, obj))

    def _on_record(self, payload: bytes) -> None:
        rec = parse(JobRecord, payload)
        done = self.state.on_record(rec, self.clock.now())
        if done is not None and done.state == "done" and not self._score_record(done, rec):
            self._done_q.put_nowait(done)  # no outputs in the record: ask for them

    @staticmethod
    def _score_record(job: JobTrack, rec: JobRecord) -> bool:
        """Score a classifier job from its record's ``label`` output; False if absent."""
        if job.labels is None:
            return True  # nothing to score
        if not rec.outputs or "label" not in rec.outputs:
            return False
        labels = GroundClient.outputs(rec)["label"]
        job.correct = int(np.sum(np.asarray(labels).reshape(-1) == job.labels))
        return True

    async def _score(self, gc: GroundClient, job: JobTrack) -> None:
        """Compare a finished classifier job's labels with the true digits."""
        if job.labels is None or job.correct is not None:
            return
        if not self._score_record(job, await gc.result(job.job_id)):
            log.warning("demo: classifier job %s has no 'label' output", job.job_id)

    async def _scorer(self, gc: GroundClient) -> None:
        while True:
            job = await self._done_q.get()
            try:
                await self._score(gc, job)
            except (GroundError, FlightSwError) as exc:
                log.warning("demo: cannot fetch the result of %s: %s", job.job_id, exc)

    async def _submit(self, gc: GroundClient, wl: Workload, kind: JobKind) -> None:
        sub = wl.make(kind)
        job_id = uuid.uuid4().hex
        self.state.submitted(
            JobTrack(job_id, kind.name, sub.items, self.clock.now(), labels=sub.labels)
        )
        await gc.submit(
            self.hashes[kind.name],
            sub.inputs,
            priority=kind.priority,
            deadline_s=kind.deadline_s,
            value=kind.value,
            job_id=job_id,
        )

    async def _feeder(self, gc: GroundClient, wl: Workload) -> None:
        """Submit each kind of job at its own host-time cadence until near the end."""
        clock = self.clock
        t0 = clock.perf_counter()
        stop_at = t0 + _FEED_UNTIL * self.opts.minutes * 60.0
        due = {name: t0 + 0.3 * k.every_s for name, k in KINDS.items()}
        while True:
            name = min(due, key=lambda k: due[k])
            if due[name] >= stop_at:
                return
            wait = due[name] - clock.perf_counter()
            if wait > 0:
                await clock.sleep_host(wait)
            kind = KINDS[name]
            await self._submit(gc, wl, kind)
            due[name] += kind.every_s

    async def _view(self) -> None:
        tty = self.opts.plain is False or (self.opts.plain is None and self.out.isatty())
        view: TtyView | PlainView
        if tty:
            view = TtyView(self.state, self.out, self.plan.headline(), self.opts.time_scale)
        else:
            view = PlainView(self.state, self.out)
        for n in self.plan.nodes:
            if n.note:
                self.state.add_event(self.plan.epoch, f"{n.node_id} {n.note}", "warn")
        view.start()
        try:
            while True:
                now = self.clock.now()
                self.state.update_contacts(now)
                progress = min(1.0, max(0.0, (now - self.plan.epoch) / self.plan.duration_s))
                view.draw(now, progress, self.clock.perf_counter() - self.started)
                await self.clock.sleep_host(0.25)
        finally:
            view.stop()

    async def console(self, gc: GroundClient) -> None:
        """Upload the models, feed jobs and show the view until the end or a signal."""
        cbus = self.console_bus
        for name, kind in KINDS.items():
            self.hashes[name] = await gc.upload_model(self.models / kind.model_file)
        wl = Workload(self.opts.seed)
        end = self.plan.epoch + self.plan.duration_s
        async with asyncio.TaskGroup() as tg:
            tasks = [
                tg.create_task(self._watch(cbus, "odc/sat/+/telemetry", 0, self._on_telemetry),
                               name="demo:telemetry"),
                tg.create_task(self._watch(cbus, "odc/sat/+/event", 1, self._on_event),
                               name="demo:events"),
                tg.create_task(self._watch(cbus, "odc/ground/job/+", 1, self._on_record),
                               name="demo:records"),
                tg.create_task(self._scorer(gc), name="demo:scorer"),
                tg.create_task(self._view(), name="demo:view"),
            ]
            feeder = tg.create_task(self._feeder(gc, wl), name="demo:feeder")
            timer = asyncio.ensure_future(self.clock.sleep_until(end))
            stopper = asyncio.ensure_future(self.stop.wait())
            try:
                await asyncio.wait({timer, stopper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                self.stop.set()  # from here on a signal stops at once
                timer.cancel()
                stopper.cancel()
                feeder.cancel()
                for task in tasks:
                    task.cancel()

    async def collect(self, gc: GroundClient) -> None:
        """Final job states from the ground's table, and every classifier result scored."""
        try:
            async with asyncio.timeout(_COLLECT_S):
                await self._collect(gc)
        except (TimeoutError, GroundError, FlightSwError) as exc:
            log.error("demo: final job states incomplete: %s", exc or "timed out")

    async def _collect(self, gc: GroundClient) -> None:
        for rec in await gc.jobs():
            done = self.state.on_record(rec, self.clock.now())
            if done is not None and done.state == "done":
                self._score_record(done, rec)
        for j in list(self.state.jobs.values()):
            if j.state == "done" and j.labels is not None and j.correct is None:
                try:
                    await self._score(gc, j)
                except (GroundError, FlightSwError) as exc:
                    log.warning("demo: cannot fetch the result of %s: %s", j.job_id, exc)

    def on_signal(self, task: asyncio.Task[Any]) -> None:
        if self.stop.is_set():
            task.cancel()  # second signal, or one during teardown: stop now, no summary
            return
        self.interrupted = True
        self.stop.set()

    def arm_watchdog(self, task: asyncio.Task[Any]) -> asyncio.Task[None]:
        """Teardown must finish within ``_TEARDOWN_S`` host seconds, or it is cut short."""

        async def watch() -> None:
            await self.clock.sleep_host(_TEARDOWN_S)
            self.stuck = True
            log.error("demo: teardown still running after %.0f s; stopping hard", _TEARDOWN_S)
            for t in asyncio.all_tasks():
                buf = io.StringIO()
                t.print_stack(file=buf)
                log.error("demo: task %s:\n%s", t.get_name(), buf.getvalue())
            task.cancel()

        return asyncio.get_running_loop().create_task(watch(), name="demo:watchdog")


def _intro(plan: DemoPlan, opts: DemoOptions, out: TextIO) -> None:
    print(
        f"flightsw demo: {len(plan.nodes)} nodes, {opts.mission_s / 60:.0f} mission minutes "
        f"({plan.duration_s / plan.period_s:.2f} orbits) in {opts.minutes:g} min at "
        f"x{opts.time_scale:g}, migration policy {opts.policy}",
        file=out,
    )
    for line in plan.describe():
        print(line, file=out)
    out.flush()


def _by_kind(state: DemoState) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name in KINDS:
        jobs = [j for j in state.jobs.values() if j.kind == name]
        done = [j for j in jobs if j.state == "done"]
        energies = [j.energy_j for j in done if j.energy_j is not None]
        out[name] = {
            "submitted": float(len(jobs)),
            "done": float(len(done)),
            "items": float(sum(j.items for j in jobs)),
            "energy_per_job_j": float(np.mean(energies)) if energies else 0.0,
        }
    return out


async def run_demo(opts: DemoOptions, out: TextIO | None = None) -> DemoResult:
    """Run the demo; returns its result (``interrupted`` if a signal stopped it)."""
    out = out or sys.stdout
    opts.check()
    models = find_models(opts.models_dir)
    archive = _prepare_out(opts.out)
    epoch = opts.epoch if opts.epoch is not None else WallClock().now()
    plan = plan_demo(epoch, opts.nodes, opts.mission_s)
    nodes = [n.node_id for n in plan.nodes]
    _intro(plan, opts, out)
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    assert me is not None
    with _log_to(opts.out / "demo.log"):
        run = _Run(opts, plan, models, archive, out)
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, run.on_signal, me)
        watchdog: asyncio.Task[None] | None = None
        try:
            with tempfile.TemporaryDirectory(prefix="flightsw-demo-") as tmp:
                async with contextlib.AsyncExitStack() as stack:
                    gc = await run.start_ground(stack)
                    async with contextlib.AsyncExitStack() as node_stack:
                        await run.start_nodes(node_stack, Path(tmp))
                        try:
                            await run.console(gc)
                        finally:
                            watchdog = run.arm_watchdog(me)
                    mission_s = min(run.clock.now() - plan.epoch, plan.duration_s)
                    # nodes are down: what they flushed reaches the ground, then the job
                    # table is final and matches the archive
                    await run.settle()
                    await run.collect(gc)
        except asyncio.CancelledError:
            if run.stuck:
                raise FlightSwError(
                    f"teardown did not finish within {_TEARDOWN_S:.0f} s and was cut short "
                    f"(task stacks in {opts.out / 'demo.log'})"
                ) from None
            raise
        finally:
            if watchdog is not None:
                watchdog.cancel()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
        wall_s = run.clock.perf_counter() - run.started
        facts = archive_facts(archive / "telemetry", nodes)
        report_png: str | None = str(opts.out / "report.png")
        report_error = None
        try:
            from flightsw.archive import ArchiveReader  # noqa: PLC0415
            from groundstation.report import write_report  # noqa: PLC0415  (matplotlib)

            with ArchiveReader(archive / "telemetry") as reader:
                write_report(reader, opts.out / "report.png", nodes=nodes)
        except (ImportError, GroundError, FlightSwError, OSError, ValueError) as exc:
            log.warning("demo: report not written: %s", exc)
            report_png, report_error = None, str(exc)
    st = run.state
    counts = st.counts()
    right, total = st.accuracy()
    energies = [
        j.energy_j for j in st.jobs.values() if j.state == "done" and j.energy_j is not None
    ]
    result = DemoResult(
        nodes=nodes,
        time_scale=opts.time_scale,
        mission_s=mission_s,
        wall_s=wall_s,
        interrupted=run.interrupted,
        submitted=counts["submitted"],
        completed=counts["done"],
        failed=counts["failed"],
        unfinished=counts["ground"] + counts["onboard"],
        classifier_images=total,
        classifier_correct=right,
        energy_per_job_j=float(np.mean(energies)) if energies else None,
        energy_total_j=float(np.sum(energies)) if energies else 0.0,
        migrations=st.migrations(),
        archive_dir=str(archive / "telemetry"),
        archive_records=facts.records,
        telemetry_nodes=facts.telemetry_nodes,
        archived_done_results=len(facts.done_job_ids),
        report_png=report_png,
        report_error=report_error,
        by_kind=_by_kind(st),
        failed_by_reason=st.failed_by_reason(),
    )
    result.write(opts.out / "summary.json")
    return result
