"""The fleet model: line items, unit costs, break-even, the other profiles, sensitivity."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flightsw.economics.exceptions import StudyError
from flightsw.economics.model import assumed_operations, evaluate
from flightsw.economics.sensitivity import break_even_curve, tornado
from flightsw.economics.study import parse_study
from flightsw.node.aging import SECONDS_PER_YEAR
from hardware_profiles import load_profile, parse_profile

SD = Callable[..., dict[str, Any]]


def test_orbit_line_items_follow_the_profile(study_data: SD) -> None:
    study = parse_study(study_data(orbit={"ground_stations": 2,
                                          "ground_station_usd_per_year": 1e6,
                                          "operations_usd_per_satellite_year": 1e4,
                                          "insurance_fraction": 0.1}))
    p = load_profile("starcloud-h100")
    assert p.cost is not None and p.design.mass_kg is not None
    v = evaluate(study, p, assumed_operations(study, p))
    unit = p.cost.satellite_usd + p.cost.accelerator_usd
    items = v.orbit.items
    assert items["satellites"] == pytest.approx(100 * unit)
    assert items["launch"] == pytest.approx(100 * p.design.mass_kg * 1000.0)
    assert items["insurance"] == pytest.approx(0.1 * (items["satellites"] + items["launch"]))
    assert items["ground segment"] == pytest.approx(2 * 1e6 * 5)
    assert items["operations"] == pytest.approx(100 * 1e4 * 5)
    # inferences: sustained mode (cap350) of 100 H100s, all the time (assumed constants = 1)
    ops = p.effective_ops_per_s(p.sustained_mode) * 100
    assert v.orbit.inferences == pytest.approx(ops * 5 * SECONDS_PER_YEAR / 2e12)
    assert v.orbit.compute_kwh == pytest.approx(100 * 350 * 5 * SECONDS_PER_YEAR / 3.6e6)


def test_ground_serves_the_same_work(study_data: SD) -> None:
    study = parse_study(study_data())
    p = load_profile("starcloud-h100")
    v = evaluate(study, p, assumed_operations(study, p))
    assert v.ground.inferences == pytest.approx(v.orbit.inferences)
    g = v.ground.items
    assert g["servers"] == 100 * 40000.0
    assert g["facility"] == pytest.approx(100 * 1275.0 * 12.5)
    # the ground runs the same work at full power: busy 0.67 (cap350 throughput)
    busy = p.sustained_mode.throughput
    load = 0.3 + 0.7 * busy
    kwh = 100 * 1275.0 / 1000 * load * 5 * SECONDS_PER_YEAR / 3600 * 1.2
    assert g["electricity"] == pytest.approx(kwh * 0.08)


def test_break_even_is_where_the_ratio_crosses_one(study_data: SD) -> None:
    # a cheap bus so that a break-even launch price exists
    study = parse_study(study_data(orbit={"satellite_usd": 5000.0}))
    p = load_profile("starcloud-h100")
    ops = assumed_operations(study, p)
    v = evaluate(study, p, ops)
    be = v.break_even_launch_usd_per_kg
    assert be > 0
    at = evaluate(study, p, ops, launch_usd_per_kg=be)
    assert at.ratio == pytest.approx(1.0, rel=1e-9)
    assert evaluate(study, p, ops, launch_usd_per_kg=be * 0.5).ratio < 1.0
    # the default bus is too dear for any launch price
    dear = parse_study(study_data())
    v2 = evaluate(dear, p, assumed_operations(dear, p))
    assert v2.break_even_launch_usd_per_kg < 0 and v2.free_launch_gap_usd > 0


def test_lower_utilisation_costs_more_per_inference(study_data: SD) -> None:
    p = load_profile("starcloud-h100")
    full = parse_study(study_data())
    half = parse_study(study_data(orbit={"assumed": {"utilisation": 0.5}}))
    r_full = evaluate(full, p, assumed_operations(full, p))
    r_half = evaluate(half, p, assumed_operations(half, p))
    assert r_half.orbit.usd_per_million_inferences == pytest.approx(
        2 * r_full.orbit.usd_per_million_inferences
    )


@pytest.mark.parametrize("name", ["suncatcher-tpu-v6e", "cubesat-6u", "jetson-orin-nano-super"])
def test_the_same_study_on_another_profile(name: str, study_data: SD) -> None:
    study = parse_study(study_data(orbit={"profile": name}))
    p = load_profile(study.orbit.profile)
    v = evaluate(study, p, assumed_operations(study, p))
    assert v.profile == name
    assert v.orbit.total_usd > 0 and v.ground.total_usd > 0
    assert v.orbit.inferences > 0


def test_profile_without_cost_is_refused(study_data: SD) -> None:
    p = load_profile("starcloud-h100")
    bare = parse_profile({k: v for k, v in p.model_dump().items() if k != "cost"}, source="b")
    study = parse_study(study_data())
    with pytest.raises(StudyError, match=r"\[cost\]"):
        evaluate(study, bare, assumed_operations(study, bare))


def test_tornado_and_curve(study_data: SD) -> None:
    study = parse_study(study_data(orbit={"satellite_usd": 20000.0}))
    p = load_profile("starcloud-h100")
    ops = assumed_operations(study, p)
    base = evaluate(study, p, ops).ratio
    bars = tornado(study, p, ops)
    assert [b.swing for b in bars] == sorted((b.swing for b in bars), reverse=True)
    by = {b.name: b for b in bars}
    assert by["launch price"].low_ratio < base < by["launch price"].high_ratio
    assert by["attrition (orbit)"].high_ratio > by["attrition (orbit)"].low_ratio
    assert by["electricity (ground)"].high_ratio < base  # dearer power helps the orbit
    curve = break_even_curve(study, p, ops)
    five = [pt.ratio for pt in curve if pt.years == 5.0]
    assert five == sorted(five)  # dearer launch, worse ratio
    assert {pt.years for pt in curve} == {3.0, 5.0, 7.0}


def test_path_profile(tmp_path: Path, study_data: SD) -> None:
    src = load_profile("cubesat-6u")
    assert src.cost is not None
    study = parse_study(study_data(orbit={"profile": "my.toml"}), base_dir=tmp_path)
    assert study.orbit.profile == str(tmp_path / "my.toml")
