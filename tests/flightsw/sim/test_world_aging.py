"""A scenario's ``mission_year``: every node runs its bus as aged by then, the same aged
profile an emulated node runs with ``--mission-year``."""

from __future__ import annotations

from pathlib import Path

from flightsw.node.aging import aged_profile
from flightsw.sim import load_scenario
from flightsw.sim.world import build_world
from hardware_profiles import load_profile

QUICKSTART = Path(__file__).resolve().parents[3] / "examples" / "scenarios" / "quickstart.toml"


def test_mission_year_ages_every_profile_as_the_node_does() -> None:
    sc = load_scenario(QUICKSTART)
    fresh = build_world(sc)
    old = build_world(sc.model_copy(update={"mission_year": 4.0}))
    for new_p, aged_p in zip(fresh.profiles, old.profiles, strict=True):
        want = aged_profile(load_profile(new_p.name), 4.0)
        assert aged_p.bus.battery_wh == want.bus.battery_wh < new_p.bus.battery_wh
        assert aged_p.model_dump() == want.model_dump()
