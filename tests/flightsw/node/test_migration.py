"""Emulated migration over a real broker: a loaded node hands queued jobs to an idle
neighbour over the inter-satellite link; every job ends exactly once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mosquitto import MosquittoProcess
from node_harness import DETECTOR, running_node
from profiles import slow_profile

from flightsw.bus.mqtt import MqttBus
from flightsw.clock import WallClock
from flightsw.timeutil import parse_iso
from groundstation.client import GroundClient
from groundstation.service import GroundStation

pytestmark = pytest.mark.mqtt


@pytest.mark.parametrize("policy", ["forecast", "least-loaded"])
async def test_loaded_node_hands_jobs_to_idle_neighbour(
    mosquitto: MosquittoProcess, tmp_path: Path, policy: str
) -> None:
    clock = WallClock(epoch=parse_iso("2026-03-20T12:00:00Z"), scale=20)
    slow = slow_profile(tmp_path, ops=2e7)  # one 2-image detector job: ~5 s at 25 W
    img = np.random.default_rng(3).standard_normal((2, 3, 96, 96)).astype(np.float32)
    url = mosquitto.url
    async with (
        MqttBus(url, client_id="gs") as gbus,
        GroundStation(gbus, clock, tmp_path / "gs") as gs,
        MqttBus(url, client_id="a") as abus,
        MqttBus(url, client_id="b") as bbus,
        running_node(
            abus,
            clock,
            tmp_path / "a",
            node_id="a",
            profile=slow,
            policy=policy,
            state_period_s=5.0,
        ) as a,
        running_node(
            bbus,
            clock,
            tmp_path / "b",
            node_id="b",
            profile=slow,
            policy=policy,
            arg_latitude_deg=2.0,
            state_period_s=5.0,
        ) as b,
        MqttBus(url, client_id="c", clean_start=True) as cbus,
        GroundClient(cbus, clock, client_id="c", timeout_s=20) as gc,
    ):
        model = await gc.upload_model(DETECTOR)
        # put the model on b too, so the policy sees no model transfer cost
        await gc.run(model, {"image": img}, node="b", timeout_s=60)
        ids = [await gc.submit(model, {"image": img}, node="a", job_id=f"j{i}") for i in range(40)]
        recs = [await gc.wait(j, timeout_s=120) for j in ids]
        ca, cb = a.core, b.core
        moves = (ca.migrations_out, cb.migrations_in, cb.migrations_out, ca.migrations_in)
        duplicates = gs.duplicates
    assert all(r.state == "done" for r in recs)
    a_out, b_in, b_out, a_in = moves
    assert a_out > 0
    assert (a_out, b_out) == (b_in, a_in)  # every handover arrived
    by_b = [r for r in recs if r.node == "b"]
    assert 0 < len(by_b) < len(recs)  # work was shared, not dumped on the neighbour
    assert all(r.epoch == r.migrations for r in recs)  # one epoch per move
    assert sum(r.migrations for r in recs) == a_out + b_out
    assert b_out <= a_out // 2  # hysteresis: little bouncing back
    assert duplicates == 0


async def test_a_peer_without_a_terminal_is_never_linked(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    """A peer whose state says no ISL (rate or range 0, the 6U CubeSat) is no link, as in the
    simulator's link model; a peer with a terminal, as close, is."""
    import asyncio

    clock = WallClock(epoch=parse_iso("2026-03-20T12:00:00Z"), scale=20)
    url = mosquitto.url
    async with (
        MqttBus(url, client_id="a") as abus,
        MqttBus(url, client_id="b") as bbus,
        MqttBus(url, client_id="c") as cbus,
        running_node(abus, clock, tmp_path / "a", node_id="a", profile="jetson-agx-orin",
                     policy="forecast", state_period_s=2.0) as a,
        running_node(bbus, clock, tmp_path / "b", node_id="b", profile="jetson-agx-orin",
                     policy="forecast", arg_latitude_deg=1.0, state_period_s=2.0),
        running_node(cbus, clock, tmp_path / "c", node_id="c", profile="cubesat-6u",
                     policy="forecast", arg_latitude_deg=-1.0, state_period_s=2.0),
    ):
        for _ in range(200):
            if {"b", "c"} <= set(a.migration.peers):
                break
            await asyncio.sleep(0.05)
        assert {"b", "c"} <= set(a.migration.peers)  # both heard
        linked = {p.node for p in a.migration.linked_peers(clock.now())}
    assert linked == {"b"}
