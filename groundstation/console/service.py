"""The console service: follows the constellation on the bus and serves the web console.

Tasks of its TaskGroup:

* ``console:telemetry``, ``console:status``, ``console:state``, ``console:event``,
  ``console:ack``, ``console:jobs``, ``console:stations`` follow one topic filter each
  (node telemetry, status, state and events, telecommand acks, the ground's job records,
  the ground stations) and update the fleet, the alarms and the event log;
* ``console:push`` every ``push_period_s`` sends each WebSocket client what changed
  (never the whole state, except once on connect) and saves the alarm book if it changed,
  at most once a second (``console-alarms.json`` in the data directory, read back at start);
* the HTTP server (aiohttp) answers the API, ``/metrics`` and the page.

It talks to the ground station only as a client would (``GroundClient`` requests on the
bus for submissions) and reads the ground's job table and archive from disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from flightsw.bus import Bus, Subscription
from flightsw.clock import Clock
from flightsw.exceptions import AuthError, FlightSwError, ProtocolError
from flightsw.orbitdesc import orbits_from_info
from flightsw.physics.orbit import Orbits
from flightsw.protocol import (
    ErrorEvent,
    GroundStations,
    JobEvent,
    NodeState,
    Status,
    Telemetry,
    decode,
    parse,
    parse_event,
    topics,
)
from flightsw.protocol.sign import Verifier
from flightsw.taskset import cancel_all
from groundstation.client import GroundClient
from groundstation.console.alarms import TELEMETRY_KINDS, AlarmBook, Condition, conditions
from groundstation.console.alarmstore import AlarmStore
from groundstation.console.api import build_app
from groundstation.console.auth import OperatorAuth
from groundstation.console.commands import CommandDesk, KeyRing
from groundstation.console.fleet import Fleet
from groundstation.console.geometry import footprint_deg, small_circle
from groundstation.console.jobview import JobView
from groundstation.console.metrics import ConsoleMetrics
from groundstation.console.push import Hub
from groundstation.exceptions import GroundError
from groundstation.protocol import JobRecord

__all__ = ["ConsoleService"]

log = logging.getLogger("groundstation.console")

_EVENTS = 500  # event log kept in memory
_ISL_S = 600.0  # a handover is drawn as an ISL in use for this many mission seconds
_SAVE_S = 1.0  # the alarm book is written at most this often (host seconds), and on exit


class ConsoleService:
    """``async with ConsoleService(bus, clock, archive_dir, host=..., port=...) as c:``"""

    def __init__(
        self,
        bus: Bus,
        clock: Clock,
        archive_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        auth: OperatorAuth | None = None,
        keys: KeyRing | None = None,
        push_period_s: float = 0.25,
        ground_ingested: Callable[[], int] | None = None,
        node_keys: Mapping[str, bytes] | None = None,
    ) -> None:
        self.bus = bus
        self.clock = clock
        self.dir = archive_dir
        self.host = host
        self.port = port
        self.auth = auth or OperatorAuth()
        self.push_period_s = push_period_s
        self.fleet = Fleet()
        self.alarms = AlarmBook()
        self.alarm_store = AlarmStore(archive_dir)
        self._alarms_saved_at = -_SAVE_S
        self.jobs = JobView(archive_dir / "jobs.sqlite")
        self.desk = CommandDesk(bus, clock, keys or KeyRing())
        self.hub = Hub()
        self.events: deque[dict[str, Any]] = deque(maxlen=_EVENTS)
        self._new_events: list[dict[str, Any]] = []
        self._job_updates: dict[str, dict[str, Any]] = {}
        self.stations: GroundStations | None = None
        self._stations_changed = False
        self.isls: dict[tuple[str, str], float] = {}
        self.ingested = 0
        # with the nodes' keys, as the ground: status, state, events and acks count only
        # sealed by their node (telemetry is not sealed, see docs/security.md)
        self.verifier = None if node_keys is None else Verifier(node_keys)
        self.rejected = 0
        self.metrics = ConsoleMetrics(
            self.fleet, self.alarms, archive_dir / "telemetry", lambda: self.ingested,
            ground_ingested, lambda: self.rejected,
        )
        self.client: GroundClient | None = None
        self._stack = contextlib.AsyncExitStack()
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- lifecycle -----------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        restored = self.alarm_store.load(self.alarms)  # a bad file stops us here, named
        if restored:
            log.info("console: %d alarm(s) restored from %s", restored, self.alarm_store.path)
        await self._stack.__aenter__()
        try:
            tg = await self._stack.enter_async_context(asyncio.TaskGroup())
            feeds: list[tuple[str, str, Callable[[bytes, str], None]]] = [
                ("telemetry", f"{topics.PREFIX}/+/telemetry", self._on_telemetry),
                ("status", f"{topics.PREFIX}/+/status", self._on_status),
                ("state", f"{topics.PREFIX}/+/state", self._on_state),
                ("event", f"{topics.PREFIX}/+/event", self._on_event),
                ("ack", f"{topics.PREFIX}/+/ack", self._on_ack),
                ("jobs", "odc/ground/job/+", self._on_record),
                ("stations", topics.GROUND_STATIONS, self._on_stations),
            ]
            for name, pattern, handler in feeds:
                sub = await self._stack.enter_async_context(self.bus.subscribe(pattern, qos=0))
                self._track(tg.create_task(self._follow(sub, handler), name=f"console:{name}"))
            self.client = await self._stack.enter_async_context(
                GroundClient(self.bus, self.clock, timeout_s=10.0)
            )
            self._track(tg.create_task(self._push_loop(), name="console:push"))
            self._runner = web.AppRunner(build_app(self), access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.host, self.port)
            await site.start()
            port = self._bound_port(self._runner) or self.port
            self.url = f"http://{self.host}:{port}/"
            self.port = port
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        log.info("console at %s (operator login: %s#token=%s)", self.url, self.url,
                 self.auth.token if self.auth.generated else "<--operator-token>")
        return self

    @staticmethod
    def _bound_port(runner: web.AppRunner) -> int | None:
        """The port the server listens on (the OS chose it when ``port`` was 0)."""
        for addr in runner.addresses:
            if isinstance(addr, tuple) and len(addr) >= 2:
                return int(addr[1])
        return None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.hub.close()
            if self._runner is not None:
                await self._runner.cleanup()
            alive = await cancel_all(self._tasks, self.clock)
            if alive:
                log.error("console: tasks still running after cancellation: %s",
                          ", ".join(alive))
            await self._stack.__aexit__(None, None, None)
        finally:
            self.jobs.close()
            if self.alarm_store.dirty(self.alarms):
                try:
                    self.alarm_store.save(self.alarms)
                except OSError as err:
                    log.error("console: alarms not saved to %s: %s", self.alarm_store.path, err)

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- feeds ---------------------------------------------------------------------------
    async def _follow(self, sub: Subscription, handler: Callable[[bytes, str], None]) -> None:
        while True:
            msg = await sub.get()
            self.ingested += 1
            if not msg.payload:
                continue
            try:
                handler(msg.payload, msg.topic)
            except AuthError as exc:
                self.rejected += 1
                log.warning("console: refused %s: %s", msg.topic, exc)
            except (GroundError, FlightSwError) as exc:
                log.debug("console: ignored %s: %s", msg.topic, exc)
            except Exception:
                log.exception("console: error handling %s; going on", msg.topic)

    def _event(self, kind: str, node: str | None, text: str, level: str = "info",
               t: float | None = None) -> None:
        ev = {"t": self.clock.now() if t is None else t, "kind": kind, "node": node,
              "level": level, "text": text}
        self.events.append(ev)
        self._new_events.append(ev)

    def _sealed(self, payload: bytes, topic: str) -> Any:
        """The decoded message, checked against its node's key when the console has the
        nodes' keys (:class:`AuthError` if unsealed, forged, replayed or not the topic's)."""
        if self.verifier is None:
            return payload
        obj = decode(payload)
        if not isinstance(obj, dict):
            raise ProtocolError(f"expected a map, got {type(obj).__name__}")
        node = topics.node_from_topic(topic)
        if node is None or obj.get("node") != node:
            raise AuthError(f"node: {obj.get('node')!r} does not match the topic's {node!r}")
        self.verifier.check(node, topic, obj)
        return obj

    def _on_telemetry(self, payload: bytes, topic: str) -> None:
        tm = parse(Telemetry, payload)
        r = self.fleet.on_telemetry(tm, self.clock.perf_counter())
        found = conditions(tm.node, tm.soc, tm.temperature_c, tm.safe_mode, r.limits)
        before = [self.alarms.active_level(tm.node, c.kind) for c in found]
        self.alarms.judge(tm.node, TELEMETRY_KINDS, found, tm.t)
        for c, was in zip(found, before, strict=True):
            if was != c.level:
                self._event("alarm", c.node, f"{c.level}: {c.message}", c.level, tm.t)

    def _on_status(self, payload: bytes, topic: str) -> None:
        st = parse(Status, self._sealed(payload, topic))
        row = self.fleet.rows.get(st.node)
        orbits: Orbits | None = None
        if st.orbit is not None and (row is None or row.orbits is None):
            with contextlib.suppress(FlightSwError):
                orbits = orbits_from_info(st.orbit, st.node)
        old = row.status if row is not None else "unknown"
        if self.verifier is not None and st.state != "offline":
            self.verifier.expect_will(st.node, st.will_seq)  # its sealed last will
        self.fleet.on_status(st, orbits)
        if old != st.state:
            level = "warning" if st.state != "online" else "info"
            self._event("status", st.node, f"{old} -> {st.state}", level, st.t)

    def _on_state(self, payload: bytes, topic: str) -> None:
        self.fleet.on_state(parse(NodeState, self._sealed(payload, topic)))

    def _on_event(self, payload: bytes, topic: str) -> None:
        ev = parse_event(self._sealed(payload, topic))
        if isinstance(ev, JobEvent):
            text = f"job {ev.job_id[:12]} {ev.state}"
            if ev.state == "handed_over" and ev.target:
                text += f" to {ev.target}"
                self.isls[(ev.node, ev.target)] = ev.t
            if ev.detail:
                text += f": {ev.detail}"
            level = "warning" if ev.state in ("shed", "cancelled") else "info"
            self._event("job", ev.node, text, level, ev.t)
        elif isinstance(ev, ErrorEvent):
            self._event("error", ev.node, f"{ev.code}: {ev.message}", "warning", ev.t)
        else:
            self._event(ev.kind, ev.node, f"{ev.kind} {ev.model[:12]}", "info", ev.t)

    def _on_ack(self, payload: bytes, topic: str) -> None:
        ack = self.desk.parse_ack(self._sealed(payload, topic))
        rec = self.desk.on_ack(ack)
        text = f"ack {ack.name} {'ok' if ack.ok else 'REJECTED'}"
        if ack.reason:
            text += f": {ack.reason}"
        if rec is not None or not ack.ok:
            self._event("command", ack.node, text, "info" if ack.ok else "warning", ack.t)

    def _on_record(self, payload: bytes, topic: str) -> None:
        rec = parse(JobRecord, payload)
        d = rec.model_dump(mode="json", exclude={"outputs"})
        self._job_updates[rec.job_id] = d
        now = self.clock.now()
        node = rec.node or "ground"
        if rec.state == "failed":
            reason = rec.reason or "unknown reason"
            self._event("job", rec.node, f"job {rec.job_id[:12]} failed: {reason}", "warning")
            c = Condition(node, "failed_job", "yellow", f"job {rec.job_id[:12]} failed: {reason}")
            self.alarms.raise_(c, now)
            self.alarms.clear(node, "failed_job", now)  # an event: listed until acknowledged
        elif rec.state == "done":
            self._event("job", rec.node, f"job {rec.job_id[:12]} done on {rec.node}")
        if rec.detail and rec.detail.startswith("lease lapsed") and rec.state == "queued":
            c = Condition(node, "lease_lapsed", "yellow", f"job {rec.job_id[:12]}: {rec.detail}")
            self.alarms.raise_(c, now)
            self.alarms.clear(node, "lease_lapsed", now)

    def _on_stations(self, payload: bytes, topic: str) -> None:
        self.stations = parse(GroundStations, payload)
        self._stations_changed = True

    # -- push ----------------------------------------------------------------------------
    def isls_in_use(self) -> list[dict[str, Any]]:
        """Links up now, as the nodes report them (``isl_peers`` of their last telemetry:
        ``kind: link``, each pair once; not drawn when the peer's own report leaves this
        node out, e.g. a peer with no terminal), and handovers of the last ``_ISL_S`` mission
        seconds (``kind: handover``, from the node that gave the job)."""
        now = self.clock.now()
        for k in [k for k, t in self.isls.items() if now - t > _ISL_S]:
            del self.isls[k]
        reports: dict[str, list[str] | None] = {}
        for r in self.fleet.rows.values():
            if r.telemetry is not None and r.status != "offline":
                reports[r.node] = r.telemetry.isl_peers
        links: dict[tuple[str, str], float] = {}
        for r in self.fleet.rows.values():
            tm = r.telemetry
            if tm is None or not tm.isl_peers or r.status == "offline":
                continue
            for peer in tm.isl_peers:
                back = reports.get(peer)
                if back is not None and tm.node not in back:
                    continue  # a link needs both terminals: the peer does not see this one
                a, b = sorted((tm.node, peer))
                links[(a, b)] = max(links.get((a, b), 0.0), tm.t)
        out = [{"src": s, "dst": d, "t": t, "kind": "link"} for (s, d), t in links.items()]
        out.extend({"src": s, "dst": d, "t": t, "kind": "handover"}
                   for (s, d), t in self.isls.items())
        return out

    def snapshot(self) -> dict[str, Any]:
        return {
            "type": "snapshot",
            "now": self.clock.now(),
            "nodes": [r.as_dict() for r in self.fleet.rows.values()],
            "alarms": [a.as_dict() for a in self.alarms.listed()],
            "events": list(self.events)[-200:],
            "stations": self.stations_view(),
            "isls": self.isls_in_use(),
        }

    def delta(self) -> dict[str, Any] | None:
        nodes = self.fleet.take_dirty()
        alarms = [a.as_dict() for a in self.alarms.changed()]
        events, self._new_events = self._new_events, []
        jobs = list(self._job_updates.values())
        self._job_updates.clear()
        acks = self.desk.take_acks()
        if not (nodes or alarms or events or jobs or acks or self._stations_changed):
            return None
        out: dict[str, Any] = {"type": "delta", "now": self.clock.now(), "nodes": nodes,
                               "alarms": alarms, "events": events, "jobs": jobs,
                               "commands": acks, "isls": self.isls_in_use()}
        if self._stations_changed:
            out["stations"] = self.stations_view()
            self._stations_changed = False
        return out

    async def _push_loop(self) -> None:
        while True:
            await self.clock.sleep_host(self.push_period_s)
            host = self.clock.perf_counter()
            if self.alarm_store.dirty(self.alarms) and host - self._alarms_saved_at >= _SAVE_S:
                self._alarms_saved_at = host
                await self._save_alarms()
            msg = self.delta()
            if msg is not None and self.hub.clients:
                await self.hub.broadcast(msg)
            elif msg is not None:
                pass  # nobody watching: the change is dropped, the next snapshot has it

    async def _save_alarms(self) -> None:
        revision, text = self.alarm_store.encode(self.alarms)
        try:
            await asyncio.to_thread(self.alarm_store.write, revision, text)
        except OSError as exc:  # the console goes on; the next change tries again
            self.alarm_store.saved_revision = revision
            log.error("console: alarms not saved to %s: %s", self.alarm_store.path, exc)

    def stations_view(self) -> dict[str, Any]:
        if self.stations is None:
            return {"stations": [], "min_elevation_deg": None}
        alts = [r.telemetry.alt_km for r in self.fleet.rows.values() if r.telemetry is not None]
        alt = sum(alts) / len(alts) if alts else 550.0
        radius = footprint_deg(alt, self.stations.min_elevation_deg)
        return {
            "min_elevation_deg": self.stations.min_elevation_deg,
            "altitude_km": round(alt, 1),
            "stations": [
                {"name": s.name, "lat": s.lat_deg, "lon": s.lon_deg,
                 "circle": small_circle(s.lat_deg, s.lon_deg, radius)}
                for s in self.stations.stations
            ],
        }
