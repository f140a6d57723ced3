from __future__ import annotations

import numpy as np
import pytest

from flightsw.exceptions import ConfigError
from flightsw.physics.constants import R_EARTH, SIGMA
from flightsw.physics.thermal import (
    ThermalParams,
    equilibrium_temperature_k,
    heat_flows,
    radiated_flux_w_m2,
    step_temperature,
    time_constant_s,
    view_factor,
)


def radiator_only(capacity: float = 60 * 900.0) -> ThermalParams:
    return ThermalParams(
        heat_capacity_j_per_k=capacity,
        radiator_area_m2=1.0,
        emissivity=0.9,
        absorptivity=0.3,
        sink_temperature_k=0.0,
    )


def test_radiator_reference_fluxes() -> None:
    # Brief section 9: eps 0.9, one side: 377 W/m2 at 20 C, 629 W/m2 at 60 C.
    assert radiated_flux_w_m2(293.15, 0.9) == pytest.approx(377.0, abs=0.5)
    assert radiated_flux_w_m2(333.15, 0.9) == pytest.approx(629.0, abs=0.5)
    p = radiator_only()
    assert equilibrium_temperature_k(p, 0.0, 0.0, 377.0) - 273.15 == pytest.approx(20.0, abs=0.05)
    assert equilibrium_temperature_k(p, 0.0, 0.0, 629.0) - 273.15 == pytest.approx(60.0, abs=0.05)


@pytest.mark.parametrize("power", [10.0, 150.0, 700.0])
def test_equilibrium_internal_load_only(power: float) -> None:
    p = radiator_only()
    expected = (power / (0.9 * SIGMA * 1.0)) ** 0.25
    assert equilibrium_temperature_k(p, 0.0, 0.0, power) == pytest.approx(expected, rel=1e-12)
    # Integrating long enough reaches it, from below and from above.
    for start in (150.0, 450.0):
        t = step_temperature(np.array([start]), p, 0.0, 0.0, power, 30 * 86400.0)
        assert t[0] == pytest.approx(expected, rel=1e-6)


def test_step_is_stable_for_huge_steps_and_accurate_for_small() -> None:
    p = radiator_only()
    t_eq = float(equilibrium_temperature_k(p, 0.0, 0.0, 300.0))
    tau = float(time_constant_s(p, t_eq))
    # A single implicit step 100x the time constant: no overshoot, no oscillation, and
    # within 1 % of equilibrium (first-order error ~ (T_eq - T0) * tau / dt).
    one = step_temperature(np.array([200.0]), p, 0.0, 0.0, 300.0, 100 * tau, max_substep_s=1e9)
    assert 200.0 < one[0] <= t_eq
    assert one[0] == pytest.approx(t_eq, rel=1e-2)
    # With the default sub-steps (<= 60 s, at most 1000) it lands on equilibrium.
    out = step_temperature(np.array([200.0]), p, 0.0, 0.0, 300.0, 100 * tau)
    assert out[0] == pytest.approx(t_eq, rel=1e-6)
    hot = step_temperature(np.array([400.0]), p, 0.0, 0.0, 300.0, 100 * tau, max_substep_s=1e9)
    assert t_eq <= hot[0] < 400.0

    # Against a fine RK4 reference over 2 h in 10 s steps.
    def rhs(t: float) -> float:
        return (300.0 - 0.9 * SIGMA * t**4) / (60 * 900.0)

    ref, h = 250.0, 1.0
    for _ in range(7200):
        k1 = rhs(ref)
        k2 = rhs(ref + h / 2 * k1)
        k3 = rhs(ref + h / 2 * k2)
        k4 = rhs(ref + h * k3)
        ref += h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    t = np.array([250.0])
    for _ in range(720):
        t = step_temperature(t, p, 0.0, 0.0, 300.0, 10.0)
    assert t[0] == pytest.approx(ref, abs=0.05)
    assert ref - 250.0 > 10.0  # the test covers a real change


def test_external_heat_flows_and_view_factor() -> None:
    r = R_EARTH + 550.0
    fe = view_factor(r)
    assert fe == pytest.approx((R_EARTH / r) ** 2)
    assert view_factor(np.array([R_EARTH, 2 * R_EARTH])) == pytest.approx([1.0, 0.25])
    p = ThermalParams(
        heat_capacity_j_per_k=5e4,
        radiator_area_m2=2.0,
        emissivity=0.85,
        absorptivity=0.25,
        sun_area_m2=1.0,
        albedo_area_m2=0.5,
        earth_ir_area_m2=0.5,
    )
    flows = heat_flows(p, 300.0, np.array([1.0, 0.0]), fe, 100.0)
    assert flows.solar_w == pytest.approx([0.25 * 1.0 * 1361, 0.0])
    assert flows.albedo_w == pytest.approx([0.25 * 0.5 * 1361 * 0.3 * fe, 0.0])
    assert flows.earth_ir_w == pytest.approx([0.85 * 0.5 * 237 * fe] * 2)
    assert flows.internal_w == pytest.approx([100.0, 100.0])
    assert flows.radiated_w == pytest.approx(0.85 * SIGMA * 2.0 * (300.0**4 - 3.0**4))
    t_eq = equilibrium_temperature_k(p, np.array([1.0, 0.0]), fe, 100.0)
    balance = heat_flows(p, t_eq, np.array([1.0, 0.0]), fe, 100.0)
    assert balance.net_w == pytest.approx([0.0, 0.0], abs=1e-9)
    assert t_eq[0] > t_eq[1]  # sunlit is warmer


def test_rejects_bad_parameters() -> None:
    with pytest.raises(ConfigError, match="emissivity"):
        ThermalParams(1e4, 1.0, 1.5, 0.3)
    with pytest.raises(ConfigError, match="heat_capacity_j_per_k"):
        ThermalParams(0.0, 1.0, 0.9, 0.3)
    with pytest.raises(ConfigError, match="radiator"):
        ThermalParams(1e4, 0.0, 0.9, 0.3)
    with pytest.raises(ConfigError, match="r_km"):
        view_factor(100.0)
