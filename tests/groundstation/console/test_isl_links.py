"""ISLs on the console's map come from the nodes: each node's telemetry names the peers it
has a link to now (line of sight, within both terminals' range, state heard recently), and
the console draws each pair once. Real nodes (in process) on a real mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest
from mosquitto import MosquittoProcess
from node_harness import running_node

from flightsw.bus.mqtt import MqttBus
from flightsw.clock import WallClock
from groundstation.console.service import ConsoleService

pytestmark = pytest.mark.mqtt


async def _until(what: str, cond: Callable[[], bool], timeout: float = 20.0) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not cond():  # noqa: ASYNC110 (the state is the service's)
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def test_reported_links_are_drawn_once_per_pair(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    clock = WallClock()
    # a and b 1 deg apart along one orbit (~120 km: inside the Orin Nano's 580 km optical
    # crosslink), c on the far side of the Earth (no line of sight to either), d between a
    # and b with no terminal at all (a 6U CubeSat)
    nodes = {"isl-a": (0.0, "jetson-orin-nano-super"), "isl-b": (1.0, "jetson-orin-nano-super"),
             "isl-c": (180.0, "jetson-orin-nano-super"), "isl-d": (0.5, "cubesat-6u")}
    async with contextlib.AsyncExitStack() as stack:
        cbus = await stack.enter_async_context(
            MqttBus(mosquitto.url, "isl-console", clean_start=True))
        c = await stack.enter_async_context(
            ConsoleService(cbus, clock, tmp_path / "ground", port=0, push_period_s=0.05))
        for node, (u, profile) in nodes.items():
            bus = await stack.enter_async_context(
                MqttBus(mosquitto.url, node, clean_start=True))
            await stack.enter_async_context(running_node(
                bus, clock, tmp_path / node, node_id=node, arg_latitude_deg=u, profile=profile,
                policy="forecast", telemetry_period_s=0.5, state_period_s=0.5))

        def reported(node: str) -> list[str] | None:
            r = c.fleet.rows.get(node)
            return None if r is None or r.telemetry is None else r.telemetry.isl_peers

        await _until("a and b reporting their link",
                     lambda: "isl-b" in (reported("isl-a") or [])
                     and "isl-a" in (reported("isl-b") or []))
        await _until("c's and d's telemetry",
                     lambda: reported("isl-c") is not None and reported("isl-d") is not None)
        assert reported("isl-c") == []  # heard the others, but no line of sight
        assert reported("isl-d") == []  # no terminal
        assert "isl-c" not in (reported("isl-a") or []) + (reported("isl-b") or [])
        # each pair once; none with d, whose own report leaves a and b out (a and b may
        # list it: Migration.linked_peers reads a peer's range 0 as 'not given')
        links = [(i["src"], i["dst"]) for i in c.isls_in_use() if i["kind"] == "link"]
        assert links == [("isl-a", "isl-b")]


async def test_a_node_that_does_not_migrate_reports_no_links(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    clock = WallClock()
    async with (
        MqttBus(mosquitto.url, "solo-console", clean_start=True) as cbus,
        MqttBus(mosquitto.url, "solo", clean_start=True) as nbus,
        ConsoleService(cbus, clock, tmp_path / "ground", port=0, push_period_s=0.05) as c,
        running_node(nbus, clock, tmp_path / "solo", node_id="solo", policy="local",
                     telemetry_period_s=0.5),
    ):
        await _until("its telemetry", lambda: "solo" in c.fleet.rows
                     and c.fleet.rows["solo"].telemetry is not None)
        tm = c.fleet.rows["solo"].telemetry
        assert tm is not None and tm.isl_peers is None  # it does not listen to peers
        assert c.isls_in_use() == []
