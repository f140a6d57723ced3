"""Scenario schema and world building: every error names the bad field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sim_cases import T0, scenario, small

from flightsw.exceptions import ScenarioError
from flightsw.physics.orbit import sun_synchronous_inclination
from flightsw.sim import build_world, load_scenario

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "scenarios"


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(ScenarioError) as info:
        build_world(scenario(data))
    return str(info.value)


@pytest.mark.parametrize("name", ["benchmark", "quickstart", "suncatcher"])
def test_example_scenarios_load(name: str) -> None:
    world = build_world(load_scenario(EXAMPLES / f"{name}.toml"))
    assert world.n >= 6
    assert world.mission_s > 0
    assert world.classes


def test_benchmark_is_the_brief_constellation() -> None:
    world = build_world(load_scenario(EXAMPLES / "benchmark.toml"))
    assert world.n == 24
    assert sorted(set(world.plane_of)) == [0, 1, 2, 3]
    assert len(world.stations) == 2
    assert world.mission_s >= 3 * 5739.0  # at least 3 orbits at 550 km
    assert {f.kind for f in world.faults} == {"crash", "isl_outage"}


def test_suncatcher_cluster_geometry() -> None:
    world = build_world(load_scenario(EXAMPLES / "suncatcher.toml"))
    assert world.n == 81
    assert {p.name for p in world.profiles} == {"suncatcher-tpu-v6e"}
    orb = world.orbits
    assert np.allclose(orb.altitude_km, 650.0)  # type: ignore[attr-defined]
    sso = float(sun_synchronous_inclination(650.0))
    assert abs(float(np.mean(orb.inclination_deg)) - sso) < 0.01  # type: ignore[attr-defined]
    for dt in np.linspace(0.0, float(orb.period_s[0]), 13):
        pos = orb.positions(world.t0 + dt)
        centre = pos.mean(axis=0)
        radius_km = np.linalg.norm(pos - centre, axis=1).max()
        d = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=2)
        np.fill_diagonal(d, np.inf)
        nearest_m = d.min(axis=1) * 1000.0
        assert radius_km < 1.3  # "within ~1 km radius"
        assert nearest_m.min() > 20.0  # closest approach 25 m (at the nodes)
        assert np.median(nearest_m) < 260.0  # neighbours 100-250 m apart


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"step_s": 0.0}, "step_s"),
        ({"duration_hours": None, "duration_orbits": None}, "duration_hours or duration_orbits"),
        ({"bogus": 1}, "bogus: unknown field"),
        ({"start": "yesterday"}, "start"),
        ({"constellation": {}}, "walker, tle_file or satellites"),
        ({"profiles": {"default": "no-such-profile"}}, "profiles.default"),
        ({"scheduler": {"lease_s": -1}}, "scheduler.lease_s"),
    ],
)
def test_errors_name_the_field(patch: dict[str, Any], field: str) -> None:
    data = small()
    for k, v in patch.items():
        if v is None:
            data.pop(k, None)
        else:
            data[k] = v
    assert field in _error(data)


def test_job_class_errors_name_the_field() -> None:
    data = small()
    data["jobs"][0]["deadline_s"] = -5
    assert "jobs[0].deadline_s" in _error(data)
    data = small()
    data["jobs"][1]["items"] = [10, 2]
    assert "jobs[1]" in _error(data) and "items" in _error(data)
    data = small()
    data["jobs"][0]["rate_per_hour"] = 3.0
    assert "jobs[0]" in _error(data) and "exactly one of" in _error(data)
    data = small()
    data["jobs"][0]["model"] = "missing.onnx"
    assert "jobs[0].model" in _error(data)
    data = small(ground_stations=[])
    assert "jobs[1].origin" in _error(data)


def test_walker_errors_name_the_field() -> None:
    data = small()
    data["constellation"]["walker"]["total"] = 7
    assert "constellation.walker" in _error(data) and "multiple of planes" in _error(data)
    data = small()
    data["constellation"]["walker"]["inclination_deg"] = "polar"
    assert "constellation.walker.inclination_deg" in _error(data)


def test_cross_references_name_the_field() -> None:
    data = small(faults=[{"kind": "crash", "node": "P09S09", "at_s": 10.0}])
    assert "faults[0].node" in _error(data)
    data = small(faults=[{"kind": "crash", "at_s": 10.0}])
    assert "faults[0]" in _error(data) and "node" in _error(data)
    data = small(faults=[{"kind": "ground_outage", "station": "nowhere", "start_s": 0,
                          "end_s": 10}])
    assert "faults[0].station" in _error(data)
    data = small(bursts=[{"start_s": 0, "duration_s": 10, "multiplier": 2,
                          "classes": ["nope"]}])
    assert "bursts[0].classes" in _error(data)
    data = small()
    data["profiles"]["planes"] = {"7": "jetson-agx-orin"}
    assert "profiles.planes" in _error(data)
    data = small()
    data["profiles"]["nodes"] = {"ZZ": "jetson-agx-orin"}
    assert "profiles.nodes" in _error(data)


def test_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("seed = [")
    with pytest.raises(ScenarioError, match=r"bad\.toml: invalid TOML"):
        load_scenario(bad)
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.toml")


def test_profile_mix_is_deterministic_and_overrides_apply() -> None:
    data = small()
    data["constellation"]["walker"] |= {"total": 8, "planes": 2}
    data["profiles"] = {
        "default": "starcloud-h100",
        "mix": [{"profile": "starcloud-h100", "fraction": 0.75},
                {"profile": "jetson-agx-orin", "fraction": 0.25}],
        "nodes": {"P01S03": "pic64-hpsc"},
    }
    a = [p.name for p in build_world(scenario(data)).profiles]
    b = [p.name for p in build_world(scenario(data)).profiles]
    assert a == b
    assert a.count("jetson-agx-orin") == 2
    assert a[-1] == "pic64-hpsc"
    data["profiles"]["planes"] = {0: "jetson-agx-orin"}
    c = [p.name for p in build_world(scenario(data)).profiles]
    assert c[:4] == ["jetson-agx-orin"] * 4


def test_explicit_satellites_with_sso_and_dawn_dusk() -> None:
    data = small(constellation={"satellites": [
        {"name": "A", "altitude_km": 650.0, "inclination_deg": "sso", "raan_deg": "dawn-dusk"},
        {"name": "B", "altitude_km": 650.0, "inclination_deg": "sso", "raan_deg": "dawn-dusk",
         "arg_latitude_deg": 0.001, "inclination_offset_deg": 0.001},
    ]})
    world = build_world(scenario(data))
    assert world.names == ["A", "B"]
    pos = world.orbits.positions(T0)
    assert 0.05 < np.linalg.norm(pos[0] - pos[1]) < 0.2  # ~120 m apart


def test_duration_in_orbits_and_overrides() -> None:
    data = small(duration_orbits=2.0)
    data.pop("duration_hours")
    world = build_world(scenario(data), policy="local", seed=9)
    assert world.mission_s == pytest.approx(2 * 5739.0, rel=0.01)
    assert world.scheduler.policy == "local"
    assert world.scenario.seed == 9


def test_model_file_class_takes_cost_from_the_graph() -> None:
    data = small()
    data["jobs"][0] = {"name": "digits", "model": "digits_classifier.onnx", "items": 100,
                       "rate_per_hour": 1.0}
    c = build_world(scenario(data)).classes[0]
    assert 9_000 < c.flops_per_item < 11_000  # ~9.7 kFLOP per item
    assert c.input_bytes_per_item == 64 * 4  # float32 [N, 64]
    assert len(c.model_key) == 64
