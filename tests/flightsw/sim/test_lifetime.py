"""The multi-year fluid run: the budget of an aged bus, decay, replacement, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flightsw.exceptions import ConfigError, ScenarioError
from flightsw.sim.lifetime import (
    load_lifetime_scenario,
    parse_lifetime_scenario,
    run_lifetime,
)
from flightsw.sim.lifetime.budget import allowance_w, choose_modes, eclipse_fraction_beta
from hardware_profiles import load_profile, parse_profile

EXAMPLE = Path(__file__).parents[3] / "examples" / "scenarios" / "lifetime.toml"


def _scenario(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "t",
        "profile": "starcloud-h100",
        "years": 2.0,
        "step_hours": 72.0,
        "seed": 3,
        "fleet": {"satellites": 300, "planes": 6, "phasing": 1, "altitude_km": 550.0,
                  "inclination_deg": 53.0},
        "workload": {"demand": 0.9, "flops_per_inference": 2e12},
    }
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


def test_eclipse_fraction_matches_the_brief() -> None:
    f = eclipse_fraction_beta(550.0, [0.0, 66.9, 67.1, -80.0])
    assert f[0] == pytest.approx(0.372, abs=5e-4)  # 35.6 of 95.65 min
    assert f[1] > 0.0
    assert f[2] == 0.0 and f[3] == 0.0


def test_new_bus_allows_the_sustained_mode() -> None:
    for name in ("starcloud-h100", "suncatcher-tpu-v6e", "cubesat-6u"):
        p = load_profile(name)
        allow = allowance_w(
            p, altitude_km=p.design.altitude_km, period_s=5800.0,
            eclipse_fraction=p.design.eclipse_fraction, array_fraction=1.0,
            battery_fraction=1.0, absorptivity=p.thermal.absorptivity,
        )
        mode = choose_modes(p, allow.compute_w, 1)
        assert float(mode.watts) == p.sustained_mode.watts, name


def test_aged_bus_drops_its_mode() -> None:
    p = load_profile("starcloud-h100")
    orbit = {"altitude_km": 550.0, "period_s": 5739.0, "eclipse_fraction": 0.372}
    new = allowance_w(p, array_fraction=1.0, battery_fraction=1.0, absorptivity=0.2, **orbit)
    tired = allowance_w(p, array_fraction=0.8, battery_fraction=0.3, absorptivity=0.2, **orbit)
    assert float(tired.compute_w) < float(new.compute_w)
    assert float(choose_modes(p, tired.compute_w, 1).watts) < p.sustained_mode.watts
    assert float(choose_modes(p, new.compute_w, 0).watts) == 0.0  # no accelerator, no mode


def test_capacity_decays_and_attrition_follows_the_profile() -> None:
    r = run_lifetime(parse_lifetime_scenario(_scenario()))
    s, life = r.summary, r.lifetime
    cap = np.array(r.series.capacity_ops) / s.initial_capacity_ops
    assert cap[-1] < cap[0]
    assert s.final_capacity_fraction < 0.95
    # 300 accelerators x 2 years at 9 %/yr: about 52 failures; binomial noise ~7
    assert s.attrition_per_year == pytest.approx(life.random_failure_per_year, rel=0.4)
    assert s.manoeuvres_per_satellite_year == pytest.approx(life.manoeuvres_per_year, rel=0.1)
    assert 0.98 < s.availability < 1.0
    assert s.inferences == pytest.approx(sum(r.series.inferences))
    assert s.inferences == pytest.approx(
        sum(r.series.delivered_ops) * 72 * 3600 / 2e12, rel=1e-9
    )
    assert r.series.battery_fraction[-1] < 1.0


def test_no_hazards_no_decay() -> None:
    quiet = {"random_failure_per_year": 0.0, "manoeuvres_per_year": 0.0}
    r = run_lifetime(parse_lifetime_scenario(_scenario(aging=quiet)))
    assert r.summary.accelerator_failures == 0
    assert r.summary.availability == 1.0
    assert set(r.series.accelerators_alive) == {300}
    # what is left is the bus: beta-angle seasons and the ageing array and radiator
    hazards = run_lifetime(parse_lifetime_scenario(_scenario()))
    assert r.summary.capacity_fraction > hazards.summary.capacity_fraction


def test_thin_shielding_costs_accelerators() -> None:
    base = {"random_failure_per_year": 0.0, "manoeuvres_per_year": 0.0}
    thick = run_lifetime(parse_lifetime_scenario(_scenario(aging=base, years=4.0)))
    thin = run_lifetime(
        parse_lifetime_scenario(_scenario(aging={**base, "shielding_mm_al": 0.5}, years=4.0))
    )
    assert thin.summary.accelerator_failures > thick.summary.accelerator_failures + 20


def test_replacements_keep_capacity_up() -> None:
    none = run_lifetime(parse_lifetime_scenario(_scenario()))
    rep = run_lifetime(parse_lifetime_scenario(_scenario(policy={"replace_failed": True,
                                                                 "replacement_delay_days": 30})))
    assert none.summary.launches == 0
    assert rep.summary.launches > 0
    assert rep.summary.final_capacity_fraction > none.summary.final_capacity_fraction


def test_demand_below_capacity_sets_utilisation() -> None:
    r = run_lifetime(parse_lifetime_scenario(_scenario(workload={"demand": 0.3}, years=1.0)))
    assert r.summary.delivered_fraction == pytest.approx(0.3, rel=1e-6)
    assert r.summary.utilisation < 0.35


def test_the_example_runs_on_another_profile_by_one_line(tmp_path: Path) -> None:
    text = EXAMPLE.read_text("utf-8").replace(
        'profile = "starcloud-h100"', 'profile = "suncatcher-tpu-v6e"'
    ).replace("satellites = 1000", "satellites = 100").replace("years = 5.0", "years = 1.0")
    path = tmp_path / "tpu.toml"
    path.write_text(text, "utf-8")
    r = run_lifetime(load_lifetime_scenario(path))
    assert r.profile.name == "suncatcher-tpu-v6e"
    assert r.summary.inferences > 0


def test_bad_scenarios_name_the_field() -> None:
    with pytest.raises(ScenarioError, match=r"fleet\.satellites"):
        parse_lifetime_scenario(_scenario(fleet={"satellites": 0}))
    with pytest.raises(ScenarioError, match=r"workload\.flops_per_inference"):
        parse_lifetime_scenario(_scenario(workload={"flops_per_inference": -1}))
    with pytest.raises(ScenarioError, match="colour"):
        parse_lifetime_scenario(_scenario(colour=1))
    with pytest.raises(ConfigError, match=r"multiple of fleet\.planes"):
        run_lifetime(parse_lifetime_scenario(_scenario(fleet={"satellites": 301})))
    p = load_profile("starcloud-h100")
    bare = parse_profile(
        {k: v for k, v in p.model_dump().items() if k not in ("lifetime", "cost")},
        source="bare",
    )
    with pytest.raises(ConfigError, match=r"no \[lifetime\]"):
        run_lifetime(parse_lifetime_scenario(_scenario()), bare)


def test_a_seed_repeats_the_run_exactly() -> None:
    small = {"satellites": 60, "planes": 6}
    a = run_lifetime(parse_lifetime_scenario(_scenario(fleet=small, years=1.0)))
    b = run_lifetime(parse_lifetime_scenario(_scenario(fleet=small, years=1.0)))
    c = run_lifetime(parse_lifetime_scenario(_scenario(fleet=small, years=1.0, seed=4)))
    assert a.series.as_dict() == b.series.as_dict()
    assert a.series.manoeuvres != c.series.manoeuvres
