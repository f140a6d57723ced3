"""The TOML files themselves: every figure carries its source, estimates say so."""

from __future__ import annotations

import re

import pytest

from hardware_profiles import list_profiles, load_profile, profile_path

ASSIGNMENT = re.compile(r"^(?P<key>[A-Za-z0-9_.]+)\s*=\s*(?P<rest>.*)$")
TEXT_KEYS = {"name", "description", "accelerator"}


def _assignments(name: str) -> list[tuple[int, str, str]]:
    rows = []
    for number, line in enumerate(profile_path(name).read_text("utf-8").splitlines(), 1):
        match = ASSIGNMENT.match(line)
        if match:
            rows.append((number, match["key"], match["rest"]))
    return rows


@pytest.mark.parametrize("name", list_profiles())
def test_every_figure_has_a_source_comment(name: str) -> None:
    missing = [
        f"line {number}: {key}"
        for number, key, rest in _assignments(name)
        if key not in TEXT_KEYS and "#" not in rest
    ]
    assert not missing, f"{name}.toml figures without a source comment: {missing}"


@pytest.mark.parametrize("name", list_profiles())
def test_sources_are_not_empty(name: str) -> None:
    for number, key, rest in _assignments(name):
        if "#" in rest:
            comment = rest.split("#", 1)[1].strip()
            assert len(comment) >= 8, f"{name}.toml line {number} ({key}): comment too short"


@pytest.mark.parametrize("name", list_profiles())
def test_efficiency_is_labelled_an_estimate(name: str) -> None:
    rows = {key: rest for _, key, rest in _assignments(name)}
    assert "estimate" in rows["efficiency"].split("#", 1)[1]


@pytest.mark.parametrize("name", list_profiles())
def test_peak_figures_are_dense_and_plausible(name: str) -> None:
    """Sanity on orders of magnitude: no sparse-vs-dense slip of more than the 2x."""
    p = load_profile(name)
    ops = p.compute.peak_ops
    if "int8" in ops and "bf16" in ops:
        assert ops["int8"] >= ops["bf16"]
    if "fp32" in ops and "fp16" in ops:
        assert ops["fp16"] > ops["fp32"]
    # achievable arithmetic intensity (ops per byte at the ridge point) of real accelerators
    ridge = ops[p.compute.inference_precision] / p.compute.memory_bandwidth_bps
    assert 10 < ridge < 2000


def test_brief_reference_figures_are_used() -> None:
    h100 = load_profile("starcloud-h100")
    assert h100.compute.peak_ops["bf16"] == 989e12
    assert h100.compute.memory_bandwidth_bps == 3.35e12
    assert h100.fastest_mode.watts == 700
    assert h100.design.mass_kg == 60
    tpu = load_profile("suncatcher-tpu-v6e")
    assert tpu.compute.peak_ops["bf16"] == 918e12
    assert tpu.compute.memory_bandwidth_bps == 1638e9
    assert tpu.design.altitude_km == 650
    agx = load_profile("jetson-agx-orin")
    assert agx.compute.peak_ops["int8"] == 275e12 / 2
    assert [m.watts for m in agx.modes_by_watts()] == [15, 30, 50, 60]
    assert agx.compute.memory_bytes == 64e9
    assert agx.compute.memory_bandwidth_bps == 204.8e9
    nano = load_profile("jetson-orin-nano-super")
    assert nano.compute.peak_ops["int8"] == 67e12 / 2
    assert [m.watts for m in nano.modes_by_watts()] == [7, 15, 25]
    assert nano.compute.memory_bandwidth_bps == 102e9
    hpsc = load_profile("pic64-hpsc")
    assert hpsc.compute.peak_ops == {"int8": 2e12, "bf16": 1e12}
    for p in (h100, tpu, agx, nano, hpsc, load_profile("cubesat-6u")):
        assert p.bus.cell_efficiency == 0.298
        assert p.thermal.emissivity == 0.9
        assert 0.90 <= p.bus.charge_efficiency * p.bus.discharge_efficiency <= 0.95


def test_cubesat_is_small() -> None:
    p = load_profile("cubesat-6u")
    assert 10 <= p.fastest_mode.watts <= 20
    assert not p.links.has_isl
    assert p.design.mass_kg is not None and p.design.mass_kg <= 12
