"""examples/scenarios/lifetime-events.toml: its profile differs from the packaged one only in
shielding, and its one-day run loses accelerators and flies manoeuvres, losing no job."""

from __future__ import annotations

from pathlib import Path

from flightsw.sim import run_scenario
from hardware_profiles import load_profile

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "scenarios"


def test_the_thin_shielding_profile_changes_only_the_shielding() -> None:
    thin = load_profile(EXAMPLES / "profiles" / "agx-orin-thin-shielding.toml")
    base = load_profile("jetson-agx-orin")
    assert thin.lifetime is not None and base.lifetime is not None
    assert thin.lifetime.shielding_mm_al == 0.5 < base.lifetime.shielding_mm_al
    same = {"name": base.name, "description": base.description,
            "lifetime": thin.lifetime.model_copy(update={
                "shielding_mm_al": base.lifetime.shielding_mm_al})}
    assert thin.model_copy(update=same) == base


def test_the_example_run_shows_lost_accelerators_and_manoeuvres() -> None:
    m = run_scenario(EXAMPLES / "lifetime-events.toml", archive=False)
    life = m["lifetime"]
    assert life["accelerators_lost"] >= 1 and life["manoeuvres"] >= 1
    assert life["manoeuvre_paused_s"] > 0 and life["propulsion_energy_j"] > 0
    assert m["jobs_lost"] == 0 and m["duplicate_results"] == 0
