"""Parity of the node host: a scenario's nodes in one NodeHost end every job as the
simulator does (same node, status, reason, modelled latency and energy).

The scenario and the drivers' comparison are ``tests/test_parity.py``'s; here the emulated
nodes are not built one by one from the test's own orbit arguments but by the node host from
the scenario file itself (``scenario_roster``: the simulator's names, orbits and profiles,
the scheduler's settings), all of them in one :class:`NodeHost` with one inference pool, on
the in-memory bus and a virtual clock, fed the simulator's arrivals.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from flightsw.bus import MemoryBus
from flightsw.clock import VirtualClock
from flightsw.node.host import NodeHost
from flightsw.node.roster import NodeSettings, scenario_roster
from flightsw.protocol import JobResult
from flightsw.sim.engine import Simulation
from flightsw.sim.scenario import load_scenario
from tests.helpers.node_harness import upload
from tests.test_parity import (
    MIGRATION,
    SCENARIO,
    _assert_same,
    _feed,
    _Inputs,
    _outcome,
    _scenario,
    _simulate,
)


async def _host(sim: Simulation, scenario: Path, tmp: Path) -> dict[str, dict[str, Any]]:
    w = sim.w
    clock = VirtualClock(w.t0)
    bus = MemoryBus()
    inputs = _Inputs(sim, tmp)
    settings = NodeSettings(state_dir=tmp / "state", execute=False,
                            state_period_s=sim.sched_spec.migration_period_s,
                            max_payload_bytes=256 * 1024 * 1024)
    roster = scenario_roster(load_scenario(scenario), settings)
    assert [h.config.node_id for h in roster] == w.names
    results: dict[str, JobResult] = {}

    async def main() -> None:
        async with contextlib.AsyncExitStack() as stack:
            sub = await stack.enter_async_context(bus.subscribe("odc/sat/+/result", qos=1))
            await stack.enter_async_context(NodeHost(
                roster, "memory://", clock,
                bus_factory=lambda url, client_id, will: contextlib.nullcontext(bus)))
            for name in w.names:
                for c in w.classes:
                    assert c.model_path is not None
                    await upload(bus, name, c.model_path)
            results.update(await _feed(sim, bus, clock, inputs, sub))

    await clock.run(main())
    inputs.close()
    return {jid: _outcome(r.node, r.epoch, r.status, r.reason, r.modelled_latency_s,
                          r.modelled_energy_j, r.power_mode) for jid, r in results.items()}


async def test_node_host_and_simulation_agree_on_every_job(tmp_path: Path) -> None:
    scenario = _scenario(tmp_path, SCENARIO)
    sim, simulated = _simulate(scenario)
    hosted = await _host(sim, scenario, tmp_path / "host")
    _assert_same(simulated, hosted)
    done = [j for j in simulated.values() if j["status"] == "done"]
    assert {j["node"] for j in done} == {"orin-a", "h100-b", "orin-c", "h100-d"}
    reasons = {str(j["reason"]).split(":")[0] for j in simulated.values() if j["reason"]}
    assert {"shed", "deadline expired before start"} <= reasons


async def test_a_migration_between_hosted_nodes_ends_as_simulated(tmp_path: Path) -> None:
    scenario = _scenario(tmp_path, MIGRATION)  # forecast policy: nodes hand jobs over
    sim, simulated = _simulate(scenario)
    hosted = await _host(sim, scenario, tmp_path / "host")
    moved = [j for j in simulated.values() if j["epoch"] > 0]
    assert moved and all(j["node"] == "orin-e" for j in moved), simulated
    _assert_same(simulated, hosted)
