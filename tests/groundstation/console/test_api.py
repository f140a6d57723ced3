"""The console's HTTP API, WebSocket, /metrics and OpenAPI schema, in process on the
in-memory bus beside a real ground station service."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from node_harness import DIGITS, digits_inputs
from openapi_spec_validator import validate
from prometheus_client.parser import text_string_to_metric_families

from flightsw.bus import Bus
from flightsw.bus.memory import MemoryBus
from flightsw.clock import WallClock
from flightsw.physics.ground import Station
from flightsw.protocol import (
    Ack,
    CircularOrbitInfo,
    Command,
    Status,
    Telemetry,
    dump,
    parse,
    topics,
)
from flightsw.protocol.auth import CommandVerifier
from groundstation.console.api import ROUTES
from groundstation.console.auth import OperatorAuth
from groundstation.console.commands import KeyRing
from groundstation.console.service import ConsoleService
from groundstation.service import GroundStation

TOKEN = "t0ken-for-tests"
OP = {"Authorization": f"Bearer {TOKEN}"}


def telemetry(node: str, t: float, *, soc: float = 0.8, seq: int = 0, **kw: Any) -> Telemetry:
    base: dict[str, Any] = {
        "profile": "jetson-orin-nano-super", "lat_deg": 10.0, "lon_deg": 20.0, "alt_km": 550.0,
        "sunlit": 1.0, "beta_deg": 0.0, "solar_w": 40.0, "load_w": 20.0, "battery_wh": 80.0,
        "temperature_c": 30.0, "power_mode": "15W", "safe_mode": False, "paused": False,
        "queue_depth": 0, "jobs_running": 0, "jobs_done": 3, "jobs_failed": 1,
        "energy_used_j": 5.0, "upsets": 2,
    }
    return Telemetry(node=node, seq=seq, t=t, soc=soc, **(base | kw))


def status(node: str, t: float) -> Status:
    orbit = CircularOrbitInfo(altitude_km=550.0, inclination_deg=53.0, raan_deg=0.0,
                              arg_latitude_deg=0.0, epoch=t)
    return Status(node=node, state="online", t=t, profile="jetson-orin-nano-super", orbit=orbit)


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():  # noqa: ASYNC110 (the state is the service's, not an event's)
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def console(tmp_path: Path, bus: Bus) -> AsyncIterator[tuple[ConsoleService, GroundStation]]:
    clock = WallClock()
    stations = [Station("svalbard", 78.23, 15.41)]
    async with (
        GroundStation(bus, clock, tmp_path, stations=stations) as gs,
        ConsoleService(bus, clock, tmp_path, port=0, auth=OperatorAuth(TOKEN),
                       keys=KeyRing(pattern="{node}-cmd-dev"), push_period_s=0.05,
                       ground_ingested=lambda: gs.ingested) as c,
    ):
        yield c, gs


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[ConsoleService, GroundStation, Bus]]:
    bus = MemoryBus()
    async with bus, console(tmp_path, bus) as (c, gs):
        t = c.clock.now()
        for node in ("sat-a", "sat-b"):
            await bus.publish(topics.status(node), dump(status(node, t)), qos=1)
        await bus.publish(topics.telemetry("sat-a"), dump(telemetry("sat-a", t)), qos=0)
        await bus.publish(topics.telemetry("sat-b"), dump(telemetry("sat-b", t, soc=0.25)), qos=0)
        await until(lambda: all(r.telemetry for r in c.fleet.rows.values())
                    and len(c.fleet.rows) == 2)
        yield c, gs, bus


async def get(c: ConsoleService, path: str, **kw: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.get(c.url.rstrip("/") + path, **kw) as r:
        body = await r.text()
        return r.status, json.loads(body) if r.content_type == "application/json" else body


async def post(c: ConsoleService, path: str, data: Any, **kw: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.post(c.url.rstrip("/") + path, json=data,
                                                    **kw) as r:
        return r.status, await r.json()


async def test_nodes_track_and_stations(running: tuple[ConsoleService, GroundStation, Bus]) -> None:
    c, _, _ = running
    code, body = await get(c, "/api/nodes")
    assert code == 200
    rows = {n["node"]: n for n in body["nodes"]}
    assert set(rows) == {"sat-a", "sat-b"}
    assert rows["sat-b"]["soc"] == 0.25 and rows["sat-b"]["limits"]["soc_floor"] == 0.3
    assert rows["sat-a"]["limits"]["throttle_c"] == 60.0
    code, track = await get(c, "/api/nodes/sat-a/track")
    assert code == 200
    assert 5000 < track["period_s"] < 6000  # a 550 km orbit
    points = [p for line in track["next"] for p in line]
    assert len(points) == 120 and max(abs(p[0]) for p in points) == pytest.approx(53, abs=0.5)
    code, st = await get(c, "/api/stations")
    assert [s["name"] for s in st["stations"]] == ["svalbard"]
    assert st["stations"][0]["circle"]  # the visibility circle is drawn
    code, err = await get(c, "/api/nodes/sat-zz/track")
    assert code == 404 and "sat-zz" in err["error"]


async def test_battery_alarm_raised_acknowledged_cleared(
    running: tuple[ConsoleService, GroundStation, Bus],
) -> None:
    c, _, bus = running
    _, body = await get(c, "/api/alarms")
    alarms = body["alarms"]
    assert [(a["node"], a["kind"], a["level"]) for a in alarms] == [("sat-b", "battery", "red")]
    aid = alarms[0]["id"]
    code, err = await post(c, f"/api/alarms/{aid}/ack", {})
    assert code == 403 and "operator" in err["error"]
    code, acked = await post(c, f"/api/alarms/{aid}/ack", {}, headers=OP)
    assert code == 200 and acked["acked"] and acked["acked_by"] == "operator"
    # the battery recovers: an acknowledged alarm whose condition cleared is gone
    t = c.clock.now()
    await bus.publish(topics.telemetry("sat-b"), dump(telemetry("sat-b", t, soc=0.9, seq=1)), qos=0)
    await until(lambda: not c.alarms.listed())
    # a yellow one that clears unacknowledged stays listed until acknowledged
    for seq, soc in ((1, 0.35), (2, 0.9)):
        tm = telemetry("sat-a", t, soc=soc, seq=seq)
        await bus.publish(topics.telemetry("sat-a"), dump(tm), qos=0)
    await until(lambda: c.fleet.rows["sat-a"].telemetry.seq == 2)  # type: ignore[union-attr]
    _, body = await get(c, "/api/alarms")
    assert [(a["level"], a["active"], a["acked"]) for a in body["alarms"]] == [
        ("yellow", False, False)]


async def test_metrics_parse_with_prometheus_parser(
    running: tuple[ConsoleService, GroundStation, Bus],
) -> None:
    c, gs, _ = running
    await get(c, "/api/nodes")  # one request, so the latency histogram has a sample
    code, text = await get(c, "/metrics")
    assert code == 200
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    soc = {s.labels["node"]: s.value for s in fams["odc_node_soc_ratio"].samples}
    assert soc == {"sat-a": 0.8, "sat-b": 0.25}
    done = {s.labels["node"]: s.value for s in fams["odc_node_jobs_done"].samples
            if s.name == "odc_node_jobs_done_total"}
    assert done == {"sat-a": 3.0, "sat-b": 3.0}
    assert {s.labels["node"] for s in fams["odc_node_upsets"].samples} == {"sat-a", "sat-b"}
    ing = fams["odc_console_messages_ingested"].samples[0].value
    assert ing >= 4
    assert fams["odc_ground_messages_ingested"].samples[0].value == gs.ingested
    assert "odc_archive_bytes" in fams
    lat = [s for s in fams["odc_console_request_seconds"].samples
           if s.name.endswith("_count") and s.labels["route"] == "/api/nodes"]
    assert lat and lat[0].value >= 1


async def test_openapi_schema_valid_and_complete(
    running: tuple[ConsoleService, GroundStation, Bus],
) -> None:
    c, _, _ = running
    code, schema = await get(c, "/api/openapi.json")
    assert code == 200
    validate(schema)  # raises if not a valid OpenAPI document
    served = {(m.lower(), p) for m, p, *_ in ROUTES}
    described = {(m, p) for p, ops in schema["paths"].items() for m in ops}
    assert described == served
    assert schema["paths"]["/api/jobs"]["post"]["security"] == [{"operator": []}]


async def test_websocket_snapshot_then_only_changes(
    running: tuple[ConsoleService, GroundStation, Bus],
) -> None:
    c, _, bus = running
    async with aiohttp.ClientSession() as s, s.ws_connect(c.url + "ws") as ws:
        snap = json.loads((await ws.receive(timeout=5)).data)
        assert snap["type"] == "snapshot"
        assert {n["node"] for n in snap["nodes"]} == {"sat-a", "sat-b"}
        assert snap["stations"]["stations"][0]["name"] == "svalbard"
        with contextlib.suppress(TimeoutError):  # what changed before the snapshot, if any
            while True:
                await ws.receive(timeout=0.3)
        t = c.clock.now()
        await bus.publish(topics.telemetry("sat-a"),
                          dump(telemetry("sat-a", t, seq=5, lat_deg=-33.0)), qos=0)
        while True:
            msg = json.loads((await ws.receive(timeout=5)).data)
            if msg["nodes"]:
                break
        assert msg["type"] == "delta"
        assert [(n["node"], n["lat"]) for n in msg["nodes"]] == [("sat-a", -33.0)]


async def test_signed_command_and_its_ack(
    running: tuple[ConsoleService, GroundStation, Bus],
) -> None:
    c, _, bus = running
    async with bus.subscribe(topics.command("sat-a"), qos=1) as sub:
        code, err = await post(c, "/api/nodes/sat-a/commands", {"name": "pause"})
        assert code == 403
        code, rec = await post(c, "/api/nodes/sat-a/commands", {"name": "pause"}, headers=OP)
        assert code == 202 and rec["signed"]
        cmd = parse(Command, (await asyncio.wait_for(sub.get(), 5)).payload)
    assert cmd.name == "pause" and CommandVerifier("sat-a-cmd-dev").check(cmd) is None
    assert CommandVerifier("another-key").check(cmd) is not None
    code, err = await post(c, "/api/nodes/sat-a/commands", {"name": "reboot"}, headers=OP)
    assert code == 400 and "reboot" in err["error"]
    ack = Ack(cmd_id=cmd.cmd_id, node="sat-a", name="pause", ok=True, t=c.clock.now())
    await bus.publish(topics.ack("sat-a"), dump(ack), qos=1)
    await until(lambda: c.desk.get(cmd.cmd_id)["ack"] is not None)
    code, got = await get(c, f"/api/commands/{cmd.cmd_id}")
    assert code == 200 and got["ack"]["ok"] is True


async def test_submit_lists_and_refuses_bad_inputs(
    running: tuple[ConsoleService, GroundStation, Bus],
) -> None:
    c, gs, _ = running
    model = gs.store.put_file(DIGITS)
    code, models = await get(c, "/api/models")
    assert [m["model"] for m in models["models"]] == [model]
    name = models["models"][0]["inputs"][0]["name"]
    x = digits_inputs(2).tolist()
    code, err = await post(c, "/api/jobs", {"model": model, "inputs": {name: x}})
    assert code == 403
    code, err = await post(c, "/api/jobs", {"model": model, "inputs": {"bogus": x}}, headers=OP)
    assert code == 400 and "bogus" in err["error"] and name in err["error"]
    code, r = await post(c, "/api/jobs", {"model": model, "inputs": {name: x}, "priority": 7},
                         headers=OP)
    assert code == 202
    code, page = await get(c, "/api/jobs")
    assert [(j["job_id"], j["priority"], j["items"]) for j in page["jobs"]] == [(r["job_id"], 7, 2)]
    code, job = await get(c, f"/api/jobs/{r['job_id']}")
    assert job["state"] == "queued" and job["outputs"] is None
    code, err = await get(c, "/api/jobs?state=bogus")
    assert code == 400


async def test_page_and_its_assets_are_served(
    running: tuple[ConsoleService, GroundStation, Bus],
) -> None:
    c, _, _ = running
    code, html = await get(c, "/")
    assert code == 200 and "/static/console.js" in html and "http" not in html.split("<body>")[1]
    for asset in ("console.js", "console.css"):
        code, _ = await get(c, f"/static/{asset}")
        assert code == 200
    code, _ = await get(c, "/static/..%2Fapi.py")
    assert code == 404


async def test_history_from_memory_and_from_the_archive(
    running: tuple[ConsoleService, GroundStation, Bus],
) -> None:
    c, gs, bus = running
    t = c.clock.now()
    for seq, soc in ((1, 0.7), (2, 0.6)):
        tm = telemetry("sat-a", t + seq, soc=soc, seq=seq)
        await bus.publish(topics.telemetry("sat-a"), dump(tm), qos=0)
    await until(lambda: len(c.fleet.rows["sat-a"].history) == 3)
    code, mem = await get(c, "/api/nodes/sat-a/history")
    assert code == 200 and mem["source"] == "memory"
    assert mem["soc"] == [0.8, 0.7, 0.6] and len(mem["t"]) == 3
    gs.archive.flush()

    async def archived() -> dict[str, Any]:
        while True:
            code, body = await get(c, f"/api/nodes/sat-a/history?start={t - 10}&end={t + 10}")
            if code == 200 and len(body["t"]) == 3:
                return dict(body)
            await asyncio.sleep(0.1)

    body = await asyncio.wait_for(archived(), 10)
    assert body["source"] == "archive" and body["soc"] == [0.8, 0.7, 0.6]
    # the range is of the ground's reception times (the archive's index)
    code, body = await get(c, f"/api/nodes/sat-a/history?start={t + 60}&end={t + 120}")
    assert code == 200 and body["soc"] == []
    code, err = await get(c, "/api/nodes/sat-a/history?start=yesterday")
    assert code == 400 and "start" in err["error"]
