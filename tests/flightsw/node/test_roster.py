"""The node host's roster carries a scenario's drawn lifetime events, node by node."""

from __future__ import annotations

from pathlib import Path

from flightsw.bus.memory import MemoryBus
from flightsw.clock import VirtualClock
from flightsw.node.lifetime import schedule_of
from flightsw.node.roster import NodeSettings, scenario_roster
from flightsw.node.service import Node
from flightsw.sim import build_world, load_scenario

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "scenarios" / "lifetime-events.toml"


def test_hosted_nodes_get_the_simulators_lifetime_draw(tmp_path: Path) -> None:
    sc = load_scenario(EXAMPLE)
    assert sc.lifetime_events
    world = build_world(sc)
    assert world.lifetime is not None
    roster = scenario_roster(sc, NodeSettings(state_dir=tmp_path))
    by_name = {h.config.node_id: h for h in roster}
    with_events = 0
    for i, name in enumerate(world.names):
        want = schedule_of(world.lifetime, i, world.profiles[i])
        assert by_name[name].lifetime == want, name
        with_events += want is not None
    assert with_events > 0  # the example draws a loss and manoeuvres
    assert any(h.lifetime is not None and h.lifetime.failure_at is not None for h in roster)


def test_without_lifetime_events_no_node_gets_any(tmp_path: Path) -> None:
    sc = load_scenario(EXAMPLE).model_copy(update={"lifetime_events": False})
    roster = scenario_roster(sc, NodeSettings(state_dir=tmp_path))
    assert all(h.lifetime is None for h in roster)


async def test_a_node_given_a_schedule_consults_it(tmp_path: Path) -> None:
    sc = load_scenario(EXAMPLE)
    hosted = next(h for h in scenario_roster(sc, NodeSettings(state_dir=tmp_path))
                  if h.lifetime is not None)
    clock = VirtualClock(epoch=build_world(sc).t0)
    async with Node(hosted.config, MemoryBus(), clock, hosted.profile, hosted.orbits,
                    lifetime=hosted.lifetime) as node:
        assert node.core.lifetime is not None
        assert node.core.lifetime.schedule == hosted.lifetime
