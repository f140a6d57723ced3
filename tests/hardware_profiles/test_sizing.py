"""Sizing checks: the formulas against the brief's reference figures, then every profile."""

from __future__ import annotations

import pytest

from hardware_profiles import HardwareProfile, list_profiles, load_profile, size_profile
from hardware_profiles.sizing import (
    SOLAR_CONSTANT,
    array_power_w,
    max_eclipse_fraction,
    orbit_period_s,
    radiator_equilibrium_c,
)

# --- formulas vs DESIGN_BRIEF section 9 -------------------------------------------------


def test_period_at_550_km() -> None:
    assert orbit_period_s(550) / 60 == pytest.approx(95.65, abs=0.01)


def test_max_eclipse_at_550_km() -> None:
    fraction = max_eclipse_fraction(550)
    assert fraction * orbit_period_s(550) / 60 == pytest.approx(35.6, abs=0.05)
    assert fraction == pytest.approx(0.372, abs=0.001)


def test_eclipse_vanishes_above_beta_67_deg_at_550_km() -> None:
    assert max_eclipse_fraction(550, 66.9) > 0
    assert max_eclipse_fraction(550, 67.1) == 0
    assert max_eclipse_fraction(550, -67.1) == 0


def test_radiator_flux_reference_points() -> None:
    # eps 0.9, one side: 377 W/m2 at 20 C and 629 W/m2 at 60 C
    assert radiator_equilibrium_c(377, 0.9, 1.0) == pytest.approx(20, abs=0.3)
    assert radiator_equilibrium_c(629, 0.9, 1.0) == pytest.approx(60, abs=0.3)


def test_array_power_formula() -> None:
    p = load_profile("cubesat-6u")
    b = p.bus
    assert array_power_w(p) == pytest.approx(
        SOLAR_CONSTANT * b.cell_efficiency * b.array_area_m2 * (1 - b.degradation)
    )


# --- every packaged profile is physically self-consistent ------------------------------


@pytest.fixture(params=list_profiles())
def profile(request: pytest.FixtureRequest) -> HardwareProfile:
    name: str = request.param
    return load_profile(name)


def test_all_sizing_checks_pass(profile: HardwareProfile) -> None:
    report = size_profile(profile)
    failures = [f"{c.name}: {c.value:.4g} vs {c.limit:.4g} ({c.detail})" for c in report.failures()]
    assert not failures, f"{profile.name}: " + "; ".join(failures)
    assert len(report.checks) >= 6


def test_sunlit_array_covers_full_compute(profile: HardwareProfile) -> None:
    assert array_power_w(profile) >= profile.load_w(profile.fastest_mode)


def test_radiator_rejects_full_load_below_max_c(profile: HardwareProfile) -> None:
    # the brief's rough check, internal load only; the report adds the environment
    t = profile.thermal
    full = profile.load_w(profile.fastest_mode)
    assert radiator_equilibrium_c(full, t.emissivity, t.radiator_area_m2) < t.max_c
    figures = size_profile(profile).figures
    assert figures["radiator_simple_c"] < figures["radiator_hot_c"] <= t.max_c


def test_a_lower_sustained_mode_is_only_named_when_needed(profile: HardwareProfile) -> None:
    """design.sustained_mode below the fastest mode must be a real limit of the bus."""
    if profile.sustained_mode is profile.fastest_mode:
        return
    fe = profile.design.eclipse_fraction
    round_trip = profile.bus.charge_efficiency * profile.bus.discharge_efficiency
    need = profile.load_w(profile.fastest_mode) * (1 + fe / ((1 - fe) * round_trip))
    assert need > array_power_w(profile)


def test_starcloud_cannot_sustain_700_w_but_sustains_its_default() -> None:
    p = load_profile("starcloud-h100")
    assert p.fastest_mode.watts == 700
    assert p.sustained_mode.watts < p.fastest_mode.watts
    assert p.default_mode == p.sustained_mode


def test_design_cycle_depth_of_discharge_is_leo_like(profile: HardwareProfile) -> None:
    # LEO practice: 20-30 % depth of discharge per orbit for cycle life (brief sec. 9)
    assert 0.15 <= size_profile(profile).figures["cycle_dod"] <= 0.35


def test_failing_profile_is_reported() -> None:
    p = load_profile("cubesat-6u")
    small = p.model_copy(update={"bus": p.bus.model_copy(update={"array_area_m2": 0.05})})
    report = size_profile(small)
    assert not report.ok
    names = {c.name for c in report.failures()}
    assert "sunlit full compute: array covers the load" in names
    assert report.to_dict()["ok"] is False
