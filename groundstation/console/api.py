"""The console's HTTP API (JSON), its WebSocket and its page, on aiohttp.

Routes are listed once, in :data:`ROUTES`, with their OpenAPI description; the schema
served at ``/api/openapi.json`` is built from that list, so it cannot leave a route out.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from flightsw.archive import ArchiveError, ArchiveReader
from flightsw.exceptions import FlightSwError, ProtocolError
from flightsw.protocol import Telemetry, parse
from groundstation.console.exceptions import ConsoleError, Forbidden, NotFound
from groundstation.console.fleet import HISTORY_FIELDS
from groundstation.console.geometry import ground_track
from groundstation.console.metrics import CONTENT_TYPE
from groundstation.console.openapi import openapi_schema
from groundstation.console.push import encode
from groundstation.console.submit import ModelCatalog, arrays_from_json
from groundstation.exceptions import GroundError

if TYPE_CHECKING:
    from groundstation.console.service import ConsoleService

__all__ = ["build_app"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_SERVICE: web.AppKey[ConsoleService] = web.AppKey("console")
_HISTORY_MAX = 20_000  # points per history answer from the archive


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=encode(data), status=status, content_type="application/json")


def _svc(request: web.Request) -> ConsoleService:
    return request.app[_SERVICE]


def _float(request: web.Request, name: str) -> float | None:
    v = request.query.get(name)
    if v is None or v == "":
        return None
    try:
        return float(v)
    except ValueError as exc:
        raise ConsoleError(f"{name}: {v!r} is not a number") from exc


def _int(request: web.Request, name: str, default: int) -> int:
    v = request.query.get(name)
    try:
        return default if v is None else int(v)
    except ValueError as exc:
        raise ConsoleError(f"{name}: {v!r} is not an integer") from exc


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConsoleError(f"body: not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConsoleError("body: expected a JSON object")
    return data


# -- handlers --------------------------------------------------------------------------
async def index(request: web.Request) -> web.StreamResponse:
    return _static_file("index.html")


async def static(request: web.Request) -> web.StreamResponse:
    return _static_file(request.match_info["name"])


_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css",
          ".json": "application/json", ".svg": "image/svg+xml"}


def _static_file(name: str) -> web.Response:
    if "/" in name or name.startswith("."):
        raise NotFound(f"static file {name!r}")
    f = resources.files("groundstation.console") / "static" / name
    if not f.is_file():
        raise NotFound(f"static file {name!r}")
    ext = name[name.rfind("."):]
    kind = _TYPES.get(ext, "application/octet-stream")
    return web.Response(
        body=f.read_bytes(), content_type=kind, headers={"Cache-Control": "no-cache"}
    )


async def get_openapi(request: web.Request) -> web.StreamResponse:
    return _json(openapi_schema(ROUTES))


async def get_metrics(request: web.Request) -> web.StreamResponse:
    return web.Response(body=_svc(request).metrics.render(), headers={"Content-Type": CONTENT_TYPE})


async def get_session(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    ok = svc.auth.check(request.headers.get("Authorization"))
    return _json({"operator": svc.auth.operator if ok else None,
                  "commands_signed": not svc.desk.keys.empty})


async def get_nodes(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    return _json({"now": svc.clock.now(),
                  "nodes": [r.as_dict() for _, r in sorted(svc.fleet.rows.items())]})


def _row(svc: ConsoleService, node: str) -> Any:
    r = svc.fleet.rows.get(node)
    if r is None:
        raise NotFound(f"node {node!r}: not seen by the console")
    return r


async def get_node(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    r = _row(svc, request.match_info["node"])
    out = r.as_dict()
    out["telemetry"] = None if r.telemetry is None else r.telemetry.model_dump(mode="json")
    return _json(out)


async def get_history(request: web.Request) -> web.StreamResponse:
    """Telemetry of one node over ``[start, end)`` mission seconds: from memory when no
    ``start`` is given (the recent past), else from the archive on disk."""
    svc = _svc(request)
    node = request.match_info["node"]
    start, end = _float(request, "start"), _float(request, "end")
    if start is None and end is None:
        _row(svc, node)
        return _json({"node": node, "source": "memory", **svc.fleet.history(node)})
    try:
        reader = ArchiveReader(svc.dir / "telemetry", write_index=False)
    except ArchiveError as exc:
        raise NotFound(f"archive: {exc}") from exc
    cols: dict[str, list[float]] = {name: [] for name in HISTORY_FIELDS}
    for rec in reader.records(start, end, topics=[f"odc/sat/{node}/telemetry"]):
        try:
            tm = parse(Telemetry, rec.payload)
        except ProtocolError:
            continue
        for name in HISTORY_FIELDS:
            cols[name].append(float(getattr(tm, name)))
        if len(cols["t"]) >= _HISTORY_MAX:
            break
    return _json({"node": node, "source": "archive", **cols})


async def get_track(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    r = _row(svc, request.match_info["node"])
    if r.orbits is None:
        raise NotFound(f"node {r.node}: orbit unknown (its status carries none)")
    now = svc.clock.now()
    period = float(r.orbits.period_s[0])
    return _json({
        "node": r.node, "now": now, "period_s": period,
        "past": ground_track(r.orbits, now - period, now, 120),
        "next": ground_track(r.orbits, now, now + period, 120),
    })


async def get_stations(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    return _json({**svc.stations_view(), "isls": svc.isls_in_use()})


async def get_jobs(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    q = request.query
    return _json(svc.jobs.page(
        state=q.get("state") or None, node=q.get("node") or None,
        sort=q.get("sort", "submitted_at"), descending=q.get("order", "desc") != "asc",
        limit=_int(request, "limit", 50), offset=_int(request, "offset", 0),
    ))


async def get_job(request: web.Request) -> web.StreamResponse:
    return _json(_svc(request).jobs.job(request.match_info["job_id"]))


async def get_models(request: web.Request) -> web.StreamResponse:
    return _json({"models": _catalog(_svc(request)).listing()})


def _catalog(svc: ConsoleService) -> ModelCatalog:
    return ModelCatalog(svc.dir / "models")


async def post_job(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    svc.auth.require(request.headers.get("Authorization"))
    body = await _body(request)
    model = body.get("model")
    if not isinstance(model, str):
        raise ConsoleError("model: the sha256 of an uploaded model is required")
    inputs = body.get("inputs")
    if not isinstance(inputs, dict):
        raise ConsoleError("inputs: expected {\"input name\": nested list}")
    arrays = arrays_from_json(inputs, _catalog(svc).specs(model))
    assert svc.client is not None
    opts: dict[str, Any] = {}
    for name, kind in (("priority", int), ("deadline_s", float), ("value", float)):
        if body.get(name) is not None:
            try:
                opts[name] = kind(body[name])
            except (TypeError, ValueError) as exc:
                raise ConsoleError(f"{name}: {body[name]!r} is not a number") from exc
    node = body.get("node") or None
    if node is not None and node not in svc.fleet.rows:
        raise ConsoleError(f"node: {node!r} is not a node the console has seen")
    job_id = await svc.client.submit(model, arrays, node=node,
                                     job_id=str(body.get("job_id") or uuid.uuid4().hex), **opts)
    return _json({"job_id": job_id}, status=202)


async def get_alarms(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    return _json({"counts": svc.alarms.counts(),
                  "alarms": [a.as_dict() for a in svc.alarms.listed()]})


async def post_ack(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    who = svc.auth.require(request.headers.get("Authorization"))
    a = svc.alarms.acknowledge(request.match_info["alarm_id"], who, svc.clock.now())
    svc._event("alarm", a.node, f"acknowledged {a.kind} ({a.level}) by {who}")
    return _json(a.as_dict())


async def post_command(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    who = svc.auth.require(request.headers.get("Authorization"))
    body = await _body(request)
    node = request.match_info["node"]
    _row(svc, node)
    args = body.get("args") or {}
    if not isinstance(args, dict):
        raise ConsoleError("args: expected an object")
    rec = await svc.desk.send(node, str(body.get("name")), args, who)
    svc._event("command", node, f"sent {rec['name']} by {who}"
               + ("" if rec["signed"] else " (unsigned: no key for this node)"))
    return _json(rec, status=202)


async def get_command(request: web.Request) -> web.StreamResponse:
    return _json(_svc(request).desk.get(request.match_info["cmd_id"]))


async def get_events(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    limit = _int(request, "limit", 200)
    return _json({"events": list(svc.events)[-max(1, min(limit, 500)):]})


async def websocket(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    ws = web.WebSocketResponse(heartbeat=30.0, compress=False)
    await ws.prepare(request)
    await ws.send_str(encode(svc.snapshot()))
    svc.hub.add(ws)
    try:
        async for msg in ws:  # the page sends nothing that matters; we read to see it close
            if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                break
    finally:
        svc.hub.discard(ws)
    return ws


# -- routes, errors, latency -----------------------------------------------------------
# (method, path, handler, summary, details: tag, query parameters, operator, body schema)
Route = tuple[str, str, Handler, str, dict[str, Any]]

ROUTES: list[Route] = [
    ("GET", "/api/session", get_session, "who is logged in", {"tag": "session"}),
    ("GET", "/api/nodes", get_nodes, "every node's fleet-table row", {"tag": "nodes"}),
    ("GET", "/api/nodes/{node}", get_node, "one node's row and latest telemetry",
     {"tag": "nodes"}),
    ("GET", "/api/nodes/{node}/history", get_history,
     "telemetry series of one node; with start/end (mission s) from the archive",
     {"tag": "nodes", "query": {"start": "number", "end": "number"}}),
    ("GET", "/api/nodes/{node}/track", get_track, "ground track: past and next orbit",
     {"tag": "nodes"}),
    ("POST", "/api/nodes/{node}/commands", post_command, "send a signed telecommand",
     {"tag": "commands", "operator": True,
      "body": {"type": "object", "required": ["name"],
               "properties": {"name": {"type": "string"}, "args": {"type": "object"}}}}),
    ("GET", "/api/commands/{cmd_id}", get_command, "a sent command and its acknowledgement",
     {"tag": "commands"}),
    ("GET", "/api/stations", get_stations, "ground stations, visibility circles, ISLs in use",
     {"tag": "nodes"}),
    ("GET", "/api/jobs", get_jobs, "a page of the job table",
     {"tag": "jobs", "query": {"state": "string", "node": "string", "sort": "string",
                               "order": "string", "limit": "integer", "offset": "integer"}}),
    ("POST", "/api/jobs", post_job, "submit a job",
     {"tag": "jobs", "operator": True,
      "body": {"type": "object", "required": ["model", "inputs"],
               "properties": {"model": {"type": "string"}, "inputs": {"type": "object"},
                              "node": {"type": "string"}, "priority": {"type": "integer"},
                              "deadline_s": {"type": "number"}, "value": {"type": "number"},
                              "job_id": {"type": "string"}}}}),
    ("GET", "/api/jobs/{job_id}", get_job, "one job with its outputs once done",
     {"tag": "jobs"}),
    ("GET", "/api/models", get_models, "models the ground station holds, with their inputs",
     {"tag": "jobs"}),
    ("GET", "/api/alarms", get_alarms, "alarms listed now", {"tag": "alarms"}),
    ("POST", "/api/alarms/{alarm_id}/ack", post_ack, "acknowledge an alarm",
     {"tag": "alarms", "operator": True}),
    ("GET", "/api/events", get_events, "the event log", {"tag": "events",
                                                          "query": {"limit": "integer"}}),
    ("GET", "/api/openapi.json", get_openapi, "this schema", {"tag": "meta"}),
    ("GET", "/metrics", get_metrics, "Prometheus metrics (text format)",
     {"tag": "meta", "text": True}),
]


def _errors(metrics_hist: Any) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "unmatched"
        try:
            return await handler(request)
        except Forbidden as exc:
            return _json({"error": str(exc)}, 403)
        except NotFound as exc:
            return _json({"error": str(exc)}, 404)
        except (ConsoleError, GroundError, FlightSwError) as exc:
            return _json({"error": str(exc)}, 400)
        finally:
            if name != "/ws":
                metrics_hist.labels(name, request.method).observe(time.perf_counter() - start)

    return middleware


def build_app(svc: ConsoleService) -> web.Application:
    app = web.Application(middlewares=[_errors(svc.metrics.request_seconds)],
                          client_max_size=16 * 1024 * 1024)
    app[_SERVICE] = svc
    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/ws", websocket)
    for method, path, handler, _, _ in ROUTES:
        app.router.add_route(method, path, handler)
    return app

