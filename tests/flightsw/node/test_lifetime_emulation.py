"""Lifetime events on an emulated node over a real mosquitto (``--lifetime-seed``): a debris
manoeuvre cuts the running job, which is queued again and finishes after the window; a lost
accelerator stops the node for good, in safe mode, and it takes no more work.

The profiles are the Orin Nano Super's with lifetime figures made extreme so that events
come within minutes of mission time; the seed is chosen from the same draw the node makes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mosquitto import MosquittoProcess
from node_harness import DIGITS, digits_inputs, kind, running_node, submit, upload, wait_for

from flightsw.bus.mqtt import MqttBus
from flightsw.clock import WallClock
from flightsw.node.lifetime import FAILED_REASON, MANOEUVRE_REASON, LifetimeSchedule, node_schedule
from flightsw.protocol import JobResult, NodeState, Telemetry, parse
from flightsw.timeutil import parse_iso
from hardware_profiles import load_profile, profile_path

pytestmark = pytest.mark.mqtt

EPOCH = parse_iso("2026-03-20T00:00:00Z")
SCALE = 50.0  # mission seconds per wall second


def _profile(tmp_path: Path, name: str, swaps: dict[str, str]) -> Path:
    text = profile_path("jetson-orin-nano-super").read_text()
    swaps = {
        'name = "jetson-orin-nano-super"': f'name = "{name}"',
        # a slow module: 64 digits take minutes of mission time
        "peak_ops.int8 = 33.5e12": "peak_ops.int8 = 3.5e4",
        "memory_bandwidth_bps = 102e9": "memory_bandwidth_bps = 4.0e3",
        "design_life_years = 5.0": "design_life_years = 0.002",  # events over ~17 h
        **swaps,
    }
    for a, b in swaps.items():
        assert a in text, a
        text = text.replace(a, b)
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def _seed(path: Path, ok: Callable[[LifetimeSchedule], bool]) -> int:
    """The first seed whose draw (the node's own, from its start) suits the test."""
    prof = load_profile(str(path))
    return next(s for s in range(1000) if ok(node_schedule(prof, 0.0, 0.0, s)))


@contextlib.asynccontextmanager
async def _ground(url: str) -> Any:
    async with MqttBus(url, client_id="test-ground") as bus:
        yield bus


async def _store_model(url: str, clock: WallClock, data_dir: Path, path: Path) -> str:
    """Give the node's store the digits model beforehand (it keeps it across restarts),
    so the node with events runs the job as soon as it starts."""
    async with (
        _ground(url) as gbus,
        gbus.subscribe("odc/sat/n1/#") as sub,
        MqttBus(url, client_id="node-n1") as nbus,
        running_node(nbus, clock, data_dir, profile=path),
    ):
        h = await upload(gbus, "n1", DIGITS)
        await wait_for(sub, kind("model_stored"))
    return h


async def test_a_manoeuvre_cuts_the_running_job_which_finishes_after_it(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    path = _profile(tmp_path, "nano-manoeuvres", {
        "manoeuvres_per_year = 33.0": "manoeuvres_per_year = 3.0e4",  # one per ~1,050 s
        "manoeuvre_pause_s = 5700.0": "manoeuvre_pause_s = 60.0",
        "random_failure_per_year = 0.03": "random_failure_per_year = 0.0",
    })

    def suits(s: LifetimeSchedule) -> bool:
        # the first window comes while the job (about 360 s at 7W) runs, and the rerun
        # fits before the second
        (a0, a1), (b0, _) = s.manoeuvres[:2]
        return s.failure_at is None and 200.0 < a0 < 350.0 and b0 - a1 > 600.0

    seed = _seed(path, suits)
    clock = WallClock(epoch=EPOCH, scale=SCALE)
    h = await _store_model(mosquitto.url, clock, tmp_path / "n1", path)
    async with (
        _ground(mosquitto.url) as gbus,
        gbus.subscribe("odc/sat/n1/#") as sub,
        MqttBus(mosquitto.url, client_id="node-n1") as nbus,
        running_node(nbus, clock, tmp_path / "n1", profile=path, lifetime_seed=seed,
                     physics_step_s=2.0) as node,
    ):
        lt = node.core.lifetime
        assert lt is not None and lt.schedule.propulsion_w == 20.0
        first = lt.schedule.manoeuvres[0]
        assert clock.now() < first[0]
        await submit(gbus, "n1", "long", h, {"input": digits_inputs(64)})
        _, running = await wait_for(sub, kind("job_event", job_id="long", state="running"))
        _, cut = await wait_for(sub, kind("job_event", job_id="long", state="queued"),
                                timeout=30)
        assert cut["detail"] == MANOEUVRE_REASON
        assert cut["t"] >= first[0] and running["t"] < first[0]
        msg, _ = await wait_for(sub, kind("result", job_id="long"), timeout=90)
        res = parse(JobResult, msg.payload)
        assert res.status == "done", res.reason
        assert lt.flown >= 1 and lt.propulsion_drawn_j > 0
        # the run that finished started outside every window the node flew
        assert res.finished_at is not None
        assert not node.core.safe_mode


async def test_a_lost_accelerator_stops_the_node_for_good(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    # a dose hazard so steep that the module fails within minutes (mean ~2 min)
    path = _profile(tmp_path, "nano-fragile", {
        "dose_rate_rad_per_year = 150.0": "dose_rate_rad_per_year = 2.35e4",
        "hard_failure_dose_rad = 30000.0": "hard_failure_dose_rad = 1.0",
        "hard_failure_shape = 4.0": "hard_failure_shape = 1.0",
        "manoeuvres_per_year = 33.0": "manoeuvres_per_year = 0.0",
    })
    seed = _seed(path, lambda s: s.failure_at is not None and 200.0 < s.failure_at < 400.0)
    clock = WallClock(epoch=EPOCH, scale=SCALE)
    h = await _store_model(mosquitto.url, clock, tmp_path / "n1", path)
    async with (
        _ground(mosquitto.url) as gbus,
        gbus.subscribe("odc/sat/n1/#") as sub,
        MqttBus(mosquitto.url, client_id="node-n1") as nbus,
        running_node(nbus, clock, tmp_path / "n1", profile=path, lifetime_seed=seed,
                     state_period_s=10.0, telemetry_period_s=10.0) as node,
    ):
        lt = node.core.lifetime
        assert lt is not None and lt.schedule.failure_at is not None
        await submit(gbus, "n1", "long", h, {"input": digits_inputs(64)})
        await submit(gbus, "n1", "queued", h, {"input": digits_inputs(64)})
        await wait_for(sub, kind("job_event", job_id="long", state="running"))
        # safe mode (the core's status change), then the error naming the loss
        await wait_for(sub, kind("status", state="safe"), timeout=30)
        _, lost = await wait_for(sub, kind("error", code="accelerator_lost"), timeout=10)
        assert lost["t"] >= lt.schedule.failure_at
        # its heartbeat holds no lease now (the ground lets them lapse) and shows safe mode
        msg, _ = await wait_for(sub, lambda m, o: o.get("kind") == "node_state"
                                and o["t"] > lost["t"], timeout=10)
        st = parse(NodeState, msg.payload)
        assert st.leases == {} and st.safe_mode
        msg, _ = await wait_for(sub, lambda m, o: o.get("kind") == "telemetry"
                                and o["t"] > lost["t"], timeout=10)
        tel = parse(Telemetry, msg.payload)
        assert tel.safe_mode and tel.jobs_running == 0 and tel.queue_depth == 0
        # a job sent now is not taken
        await submit(gbus, "n1", "late", h, {"input": digits_inputs(8)})
        _, refused = await wait_for(sub, kind("error", code="node_failed", job_id="late"))
        assert FAILED_REASON in refused["message"]
        assert node.core.run is None and len(node.core.sched) == 0
        # nothing it held finishes there
        with pytest.raises(asyncio.TimeoutError):
            await wait_for(sub, lambda m, o: o.get("kind") == "result", timeout=3)
