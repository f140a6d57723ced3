"""Parity: one scenario through the simulator and through real nodes gives the same outcome.

The scenario runs once through :class:`~flightsw.sim.engine.Simulation` (all nodes in one
process on its event heap and vectorised physics) and once through real
:class:`~flightsw.node.service.Node` objects on the in-memory bus and a virtual clock (each
node with its own one-row physics, its own tasks, its own model store), fed the same
arrivals. Both drive the one node core, so every job must end the same way: same node,
epoch, status and reason, and the same modelled latency and energy to 1e-9 relative.

Two profiles, one with ``dual_execution`` (jetson-agx-orin: every job costs twice the work),
both slowed 100,000-fold so the small example models make jobs from milliseconds to tens of
minutes: queues form, DVFS picks modes, a burst overloads a node so it sheds, and low
priority work expires before it starts. A second scenario makes a loaded node hand jobs to a
linked neighbour under the ``forecast`` policy (epoch + 1 on the neighbour).

A third runs ground-origin jobs through a real :class:`GroundStation` and real nodes: the
uplink waits for contact windows of low-orbit passes, a node crashes mid-job and its job is
re-run on the other node with epoch + 1 after the lease rule, and a job whose deadline
passes while it waits for the next pass fails at the ground. Both grounds follow one
rulebook (:mod:`flightsw.protocol.jobrules`); their timing still differs (the simulator
uplinks on step boundaries and re-runs ``lease_s`` after a crash, the ground station at once
on the node's ``offline`` status), so the scenarios leave slack around those instants.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from flightsw.bus import MemoryBus
from flightsw.clock import VirtualClock
from flightsw.models.executor import Executor
from flightsw.models.store import ModelStore
from flightsw.protocol import JobResult, JobSubmit, Tensor, dump, parse, topics
from flightsw.protocol.jobrules import EXPIRED_AT_GROUND
from flightsw.sim.engine import Simulation
from flightsw.sim.scenario import load_scenario
from flightsw.sim.world import build_world
from tests.helpers.node_harness import running_node, upload

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "examples" / "models"

SCENARIO = """
name = "parity"
seed = 3
start = "2026-03-20T00:00:00Z"
duration_hours = 1.5
step_s = 10.0
telemetry_period_s = 0

[constellation]
satellites = [
  { name = "orin-a", altitude_km = 550.0, inclination_deg = 53.0, raan_deg = 0.0 },
  { name = "h100-b", altitude_km = 550.0, inclination_deg = 53.0, arg_latitude_deg = 20.0 },
  { name = "orin-c", altitude_km = 550.0, inclination_deg = 97.6, raan_deg = 90.0 },
  { name = "h100-d", altitude_km = 650.0, inclination_deg = 97.9, raan_deg = 45.0 },
]

[profiles]
default = "slow-orin.toml"
nodes = { "h100-b" = "slow-h100.toml", "h100-d" = "starcloud-h100" }

[scheduler]
policy = "local"
overload_backlog_s = 900.0

[[jobs]]
name = "digits"
model = "{models}/digits_classifier.onnx"
items = [1, 64]
origin = "onboard"
times_s = [13.7, 14.1, 250.3, 251.9, 1200.5, 3000.25, 3001.5, 14.9, 1800.3]
nodes = ["orin-a", "h100-b", "orin-c", "orin-a", "h100-b", "orin-c", "orin-a", "h100-d", "h100-d"]
deadline_s = 600.0
value = 1.0
priority = 7

[[jobs]]
name = "detect"
model = "{models}/detector.onnx"
items = [10, 100]
origin = "onboard"
times_s = [15.3, 16.2, 17.9, 400.7, 402.2, 2222.2, 2223.3, 4000.1]
nodes = ["orin-a", "orin-a", "h100-b", "orin-c", "orin-a", "h100-b", "orin-c", "orin-a"]
deadline_s = 900.0
value = 3.0
priority = 5

[[jobs]]
name = "embed"
model = "{models}/embedder.onnx"
items = [20, 400]
origin = "onboard"
times_s = [33.3, 34.4, 35.5, 36.6, 37.7, 1500.5, 1501.5, 4500.9]
nodes = ["orin-c", "orin-c", "orin-c", "orin-c", "h100-b", "orin-a", "orin-c", "h100-b"]
deadline_s = 1800.0
value = 2.0
priority = 3

# low priority, short deadline, behind the embeddings on orin-c: expires before it starts
[[jobs]]
name = "late"
model = "{models}/digits_classifier.onnx"
items = [1, 4]
origin = "onboard"
times_s = [20.0, 22.5, 36.0]
nodes = ["orin-a", "orin-a", "orin-c"]
deadline_s = 30.0
value = 0.5
priority = 1
"""


def _outcome(node: str | None, epoch: int, status: str, reason: str | None,
             latency_s: float | None, energy_j: float | None, mode: str | None
             ) -> dict[str, Any]:
    """How a job ended, as both drivers are compared ("ground": the ground failed it)."""
    done = status == "done"
    return {"node": node or "ground", "epoch": epoch, "status": status,
            "reason": reason or None, "latency_s": (latency_s or 0.0) if done else 0.0,
            "energy_j": (energy_j or 0.0) if done else 0.0, "mode": mode or None}


class _Inputs:
    """Zero-filled inputs of a job's shape and dtype, read from each model's graph."""

    def __init__(self, sim: Simulation, tmp: Path) -> None:
        store = ModelStore(tmp / "input-specs")
        for c in sim.w.classes:
            assert c.model_path is not None
            store.put_file(c.model_path)
        self.executor = Executor(store, clock=VirtualClock())

    def zeros(self, model: str, items: int) -> dict[str, np.ndarray[Any, Any]]:
        out = {}
        for s in self.executor.input_specs(model):
            shape = tuple(items if d == 0 else (n or 1) for d, n in enumerate(s.shape or ()))
            out[s.name] = np.zeros(shape, dtype=s.dtype)
        return out

    def close(self) -> None:
        self.executor.close()


def _simulate(path: Path) -> tuple[Simulation, dict[str, dict[str, Any]]]:
    sim = Simulation(build_world(load_scenario(path)))
    sim.run()
    return sim, {
        jid: _outcome(sim.nodes[job.node].name if job.node >= 0 else None, job.epoch,
                      job.outcome, job.reason, job.latency_s, job.energy_j, job.mode)
        for jid, job in sim.ledger.jobs.items()
    }


async def _feed(sim: Simulation, bus: MemoryBus, clock: VirtualClock, inputs: _Inputs,
                results_sub: Any) -> dict[str, JobResult]:
    """Publish the simulator's arrivals to their nodes at their times, then gather the
    results (the first of each job) until every job has one or the longest deadline and
    ten minutes have passed since the last arrival."""
    w, a = sim.w, sim.arrivals
    last_t = float(a.t[-1]) + max(c.deadline_s or 0.0 for c in w.classes) + 600.0
    for k in range(len(a)):
        t = float(a.t[k])
        await clock.sleep_until(t)
        c = w.classes[int(a.cls[k])]
        arrays = inputs.zeros(c.model_key, int(a.items[k]))
        job = JobSubmit(job_id=f"j{k + 1:07d}", model=c.model_key,
                        inputs={n: Tensor.from_array(v) for n, v in arrays.items()},
                        priority=c.priority, value=c.value, submitted_at=t,
                        deadline=None if c.deadline_s is None else t + c.deadline_s)
        await bus.publish(topics.job(w.names[int(a.node[k])]), dump(job), qos=1)
    results: dict[str, JobResult] = {}
    while len(results) < len(a) and clock.now() < last_t:
        while results_sub.qsize():
            r = parse(JobResult, (await results_sub.get()).payload)
            results.setdefault(r.job_id, r)
        await clock.sleep(10.0)
    return results


async def _emulate(sim: Simulation, tmp: Path, profiles: Path) -> dict[str, dict[str, Any]]:
    w = sim.w
    clock = VirtualClock(w.t0)
    bus = MemoryBus()
    spec = sim.sched_spec
    inputs = _Inputs(sim, tmp)
    results: dict[str, JobResult] = {}
    prof_path = {}  # the test's slowed profiles by path, packaged ones by name
    for n, p in zip(w.names, w.profiles, strict=True):
        path = profiles / f"{p.name}.toml"
        prof_path[n] = str(path) if path.exists() else p.name

    async def main() -> None:
        async with contextlib.AsyncExitStack() as stack:
            sub = await stack.enter_async_context(bus.subscribe("odc/sat/+/result", qos=1))
            for k, name in enumerate(w.names):
                orbit_kw = _orbit_of(sim, k)
                await stack.enter_async_context(
                    running_node(
                        bus, clock, tmp / name, node_id=name, profile=prof_path[name],
                        physics_step_s=w.scenario.step_s, execute=False,
                        overload_backlog_s=spec.overload_backlog_s, max_queue=spec.max_queue,
                        seed=k, max_payload_bytes=256 * 1024 * 1024,
                        policy=sim.policy.name, state_period_s=spec.migration_period_s,
                        **orbit_kw,
                    )
                )
                for c in w.classes:
                    assert c.model_path is not None
                    await upload(bus, name, c.model_path)
            results.update(await _feed(sim, bus, clock, inputs, sub))

    await clock.run(main())
    inputs.close()
    return {
        jid: _outcome(r.node, r.epoch, r.status, r.reason, r.modelled_latency_s,
                      r.modelled_energy_j, r.power_mode)
        for jid, r in results.items()
    }


def _orbit_of(sim: Simulation, k: int) -> dict[str, float]:
    """The node's circular elements as the scenario gave them."""
    sat = sim.w.scenario.constellation.satellites
    assert sat is not None
    s = sat[k]
    return {
        "altitude_km": float(s.altitude_km),
        "inclination_deg": float(s.inclination_deg),
        "raan_deg": float(s.raan_deg),
        "arg_latitude_deg": float(s.arg_latitude_deg),
    }


SLOWDOWN = 1e-5


def _slow_profile(base: str, name: str, into: Path) -> Path:
    """A packaged profile with its compute peaks and memory bandwidth scaled by SLOWDOWN."""
    text = (ROOT / "hardware_profiles" / f"{base}.toml").read_text()

    def scale(m: re.Match[str]) -> str:
        return f"{m.group(1)}{float(m.group(2)) * SLOWDOWN!r}"

    text, n = re.subn(r"(?m)^((?:peak_ops\.\w+|memory_bandwidth_bps) = )([0-9.e+]+)", scale,
                      text)
    assert n >= 3, f"{base}: compute figures not found"
    text = text.replace(f'name = "{base}"', f'name = "{name}"', 1)
    path = into / f"{name}.toml"
    path.write_text(text)
    return path


def _scenario(tmp_path: Path, text: str) -> Path:
    _slow_profile("jetson-agx-orin", "slow-orin", tmp_path)
    _slow_profile("starcloud-h100", "slow-h100", tmp_path)
    path = tmp_path / "parity.toml"
    path.write_text(text.replace("{models}", str(MODELS)))
    return path


def _assert_same(simulated: dict[str, dict[str, Any]], emulated: dict[str, dict[str, Any]]
                 ) -> None:
    assert sorted(emulated) == sorted(simulated), "a job ended in one driver only"
    for jid in sorted(simulated):
        s, e = simulated[jid], emulated[jid]
        for key in ("node", "epoch", "status", "reason", "mode"):
            assert s[key] == e[key], f"{jid}: {key} differs: sim {s[key]!r}, node {e[key]!r}"
        for key in ("latency_s", "energy_j"):
            assert math.isclose(s[key], e[key], rel_tol=1e-9, abs_tol=0.0), (
                f"{jid}: {key} differs: sim {s[key]!r}, node {e[key]!r}")


async def test_simulation_and_emulated_nodes_agree_on_every_job(tmp_path: Path) -> None:
    scenario = _scenario(tmp_path, SCENARIO)
    sim, simulated = _simulate(scenario)
    emulated = await _emulate(sim, tmp_path / "emu", scenario.parent)
    _assert_same(simulated, emulated)
    # the scenario exercises what it claims: both profiles, dual execution, both outcomes
    done = [j for j in simulated.values() if j["status"] == "done"]
    assert {j["node"] for j in done} == {"orin-a", "h100-b", "orin-c", "h100-d"}
    reasons = {str(j["reason"]).split(":")[0] for j in simulated.values()}
    assert {"shed", "deadline expired before start"} <= reasons
    # durations from a microsecond-scale job on a real H100 to minutes on the slowed Orin
    assert min(j["latency_s"] for j in done) < 1e-6
    assert max(j["latency_s"] for j in done) > 300.0


MIGRATION = """
name = "parity-migration"
seed = 5
start = "2026-03-20T00:00:00Z"
duration_hours = 1.0
step_s = 10.0
telemetry_period_s = 0

[constellation]
satellites = [
  { name = "orin-a", altitude_km = 550.0, inclination_deg = 53.0 },
  { name = "orin-e", altitude_km = 550.0, inclination_deg = 53.0, arg_latitude_deg = 5.0 },
  { name = "h100-b", altitude_km = 550.0, inclination_deg = 53.0, arg_latitude_deg = 60.0 },
]

[profiles]
default = "slow-orin.toml"
nodes = { "h100-b" = "slow-h100.toml" }

[scheduler]
policy = "forecast"
migration_period_s = 10.0

# a burst of long embeddings on orin-a: its neighbour orin-e (600 km away) takes some
[[jobs]]
name = "embed"
model = "{models}/embedder.onnx"
items = [6, 10]
origin = "onboard"
times_s = [5.1, 5.3, 5.5, 5.7, 5.9, 6.1, 1805.5]
nodes = ["orin-a", "orin-a", "orin-a", "orin-a", "orin-a", "orin-a", "h100-b"]
deadline_s = 400.0
value = 2.0
priority = 3

[[jobs]]
name = "digits"
model = "{models}/digits_classifier.onnx"
items = [1, 64]
origin = "onboard"
times_s = [7.7, 300.3, 900.9]
nodes = ["orin-e", "orin-a", "h100-b"]
deadline_s = 600.0
value = 1.0
priority = 7
"""


async def test_a_migration_ends_the_same_in_both_drivers(tmp_path: Path) -> None:
    scenario = _scenario(tmp_path, MIGRATION)
    sim, simulated = _simulate(scenario)
    emulated = await _emulate(sim, tmp_path / "emu", scenario.parent)
    moved = [j for j in simulated.values() if j["epoch"] > 0]
    assert moved and all(j["node"] == "orin-e" for j in moved), simulated
    _assert_same(simulated, emulated)


GROUND = """
name = "parity-ground"
seed = 9
start = "2026-03-20T00:00:00Z"
duration_hours = 2.2
step_s = 10.0
telemetry_period_s = 0

[constellation]
satellites = [
  { name = "orin-a", altitude_km = 550.0, inclination_deg = 5.0 },
  { name = "orin-e", altitude_km = 550.0, inclination_deg = 5.0, arg_latitude_deg = 3.0 },
]

[profiles]
default = "slow-orin.toml"

[[ground_stations]]
name = "under"
lat_deg = {lat}
lon_deg = {lon}
min_elevation_deg = 10.0

[scheduler]
policy = "local"
lease_s = 60.0

[[jobs]]
name = "embed"
model = "{models}/embedder.onnx"
items = [6, 10]
origin = "ground"
times_s = [33.0, 1400.0, 2600.0]
deadline_s = 7200.0
value = 2.0
priority = 3

[[jobs]]
name = "digits"
model = "{models}/digits_classifier.onnx"
items = [1, 64]
origin = "ground"
times_s = [47.0, 1455.0]
deadline_s = 1200.0
value = 1.0
priority = 7

[[faults]]
kind = "crash"
node = "orin-a"
at_s = 90.0
"""


def _sub_point(alt_km: float, t0: float) -> tuple[float, float]:
    """Latitude and longitude (deg) under a satellite at the ascending node at ``t0``."""
    from flightsw.physics import frames
    from flightsw.physics.orbit import CircularOrbits

    orb = CircularOrbits(alt_km, 5.0, 0.0, 1.5, epoch=t0, names=["x"])
    lat, lon, _ = frames.ecef_to_geodetic(frames.eci_to_ecef(orb.positions(t0), t0))
    return float(lat[0]), float(lon[0]) % 360.0


async def _emulate_ground(sim: Simulation, tmp: Path, profiles: Path
                          ) -> dict[str, dict[str, Any]]:
    """The same ground-origin jobs through a real GroundStation and real Nodes; orin-a is
    crashed (its node service ends, its status turns offline) at the scenario's time."""
    from flightsw.physics.ground import Station
    from groundstation.client import GroundClient
    from groundstation.service import GroundStation

    w = sim.w
    a = sim.arrivals
    clock = VirtualClock(w.t0)
    bus = MemoryBus()
    spec = sim.sched_spec
    st = w.stations[0]
    crash = next(f for f in w.faults if f.kind == "crash")
    last_t = float(a.t[-1]) + max(c.deadline_s or 0.0 for c in w.classes) + 600.0
    records: dict[str, Any] = {}
    inputs = _Inputs(sim, tmp)

    async def node(k: int, stop: asyncio.Event) -> None:
        name = w.names[k]
        async with running_node(
            bus, clock, tmp / name, node_id=name, profile=str(profiles / "slow-orin.toml"),
            physics_step_s=w.scenario.step_s, execute=False, seed=k,
            max_payload_bytes=256 * 1024 * 1024, **_orbit_of(sim, k),
        ):
            for c in w.classes:
                assert c.model_path is not None
                await upload(bus, name, c.model_path)
            await stop.wait()

    async def main() -> None:
        async with contextlib.AsyncExitStack() as stack:
            gs = await stack.enter_async_context(GroundStation(
                bus, clock, tmp / "ground", stations=[Station(st.station.name,
                st.station.lat_deg, st.station.lon_deg, st.station.alt_m)],
                min_elevation_deg=st.min_elevation_deg, lease_s=spec.lease_s,
                tick_s=w.scenario.step_s))
            gc = await stack.enter_async_context(GroundClient(bus, clock, client_id="parity"))
            stops = [asyncio.Event() for _ in w.names]
            async with asyncio.TaskGroup() as tg:
                for k in range(len(w.names)):
                    tg.create_task(node(k, stops[k]))
                await clock.sleep(0.0)
                models = {}
                for c in w.classes:
                    assert c.model_path is not None
                    models[c.index] = await gc.upload_model(c.model_path)
                crashed = False
                for k in range(len(a)):
                    t = float(a.t[k])
                    if not crashed and t >= crash.start:
                        await clock.sleep_until(crash.start)
                        stops[crash.node or 0].set()
                        crashed = True
                    await clock.sleep_until(t)
                    c = w.classes[int(a.cls[k])]
                    items = int(a.items[k])
                    await gc.submit(models[c.index], inputs.zeros(c.model_key, items),
                                    priority=c.priority,
                                    deadline_s=c.deadline_s, value=c.value,
                                    job_id=f"j{k + 1:07d}")
                if not crashed:
                    await clock.sleep_until(crash.start)
                    stops[crash.node or 0].set()
                while clock.now() < last_t:
                    rows = {f"j{k + 1:07d}": gs.table.record(f"j{k + 1:07d}")
                            for k in range(len(a))}
                    if all(r.state in ("done", "failed") for r in rows.values()):
                        break
                    await clock.sleep(10.0)
                records.update(rows)
                for s in stops:
                    s.set()

    await clock.run(main())
    inputs.close()
    return {
        jid: _outcome(r.node, r.epoch, r.state, r.reason, r.modelled_latency_s,
                      r.modelled_energy_j, r.power_mode)
        for jid, r in records.items()
    }


async def test_ground_jobs_through_contact_windows_and_a_crash_end_the_same(
    tmp_path: Path,
) -> None:
    from flightsw.timeutil import parse_iso

    t0 = parse_iso("2026-03-20T00:00:00Z")
    lat, lon = _sub_point(550.0, t0)
    scenario = _scenario(tmp_path, GROUND.replace("{lat}", f"{lat:.4f}").replace(
        "{lon}", f"{lon:.4f}"))
    sim, simulated = _simulate(scenario)
    emulated = await _emulate_ground(sim, tmp_path / "emu", scenario.parent)
    rerun = [j for j in simulated.values() if j["epoch"] > 0]
    assert rerun and all(j["node"] == "orin-e" for j in rerun), simulated
    # a job submitted after the pass waits for the next one, past its deadline
    assert any(j["reason"] == EXPIRED_AT_GROUND for j in simulated.values()), simulated
    _assert_same(simulated, emulated)
