from __future__ import annotations

import numpy as np
import pytest

from flightsw.exceptions import ConfigError
from flightsw.physics.power import (
    PowerParams,
    cos_incidence,
    floor_wh,
    max_load_w,
    max_sustainable_load_w,
    orbit_average_solar_w,
    orbit_energy_balance_wh,
    solar_power_w,
    step_battery,
)


def params(**kw: float) -> PowerParams:
    base = {
        "array_area_m2": 2.0,
        "cell_efficiency": 0.298,  # Spectrolab XTJ BOL (brief section 9)
        "degradation": 0.0,
        "capacity_wh": 1000.0,
        "charge_efficiency": 0.95,
        "discharge_efficiency": 0.96,
        "dod_floor": 0.3,
    }
    base.update(kw)
    return PowerParams(**base)


def test_solar_power_formula() -> None:
    p = params(degradation=0.13)
    lit = np.array([1.0, 0.0, 0.5, 1.0])
    cos = np.array([1.0, 1.0, 1.0, -0.3])
    out = solar_power_w(p, lit, cos)
    expected = 1361 * 0.298 * 2.0 * 0.87
    assert out[0] == pytest.approx(expected)
    assert out[1] == 0.0
    assert out[2] == pytest.approx(expected / 2)
    assert out[3] == 0.0  # sun behind the panel
    # Sun tracking by default.
    assert solar_power_w(p, 1.0) == pytest.approx(expected)
    assert cos_incidence([0.0, 0.0, 1.0], [0.0, 0.6, 0.8]) == pytest.approx(0.8)


def test_vectorised_over_satellites() -> None:
    p = params(array_area_m2=np.array([1.0, 2.0, 4.0]), capacity_wh=np.array([100.0, 200, 400]))
    out = solar_power_w(p, np.ones(3))
    assert out == pytest.approx(1361 * 0.298 * np.array([1.0, 2.0, 4.0]))
    e, _ = step_battery(np.array([50.0, 50.0, 50.0]), out, 0.0, 3600.0, p)
    assert e.tolist() == [100.0, 200.0, 400.0]  # clamped at each capacity


def test_energy_conservation_through_a_charge_discharge_cycle() -> None:
    p = params()
    e0 = 400.0
    e = np.array([e0])
    stored = drawn = 0.0
    # Charge: 300 W surplus for 1 h in 10 s steps, then discharge: 250 W deficit for 1 h.
    for _ in range(360):
        e, info = step_battery(e, 500.0, 200.0, 10.0, p)
        stored += float(info.stored_wh[0])
    e_after_charge = float(e[0])
    for _ in range(360):
        e, info = step_battery(e, 0.0, 250.0, 10.0, p)
        drawn += float(info.drawn_wh[0])
    assert e_after_charge == pytest.approx(e0 + 300 * 0.95)
    assert float(e[0]) == pytest.approx(e0 + 300 * 0.95 - 250 / 0.96)
    assert stored == pytest.approx(300 * 0.95)
    assert drawn == pytest.approx(250 / 0.96)
    # Round trip: energy delivered back for energy put in is eta_c * eta_d.
    e, _ = step_battery(np.array([500.0]), 1000.0, 0.0, 360.0, p)  # 100 Wh in
    gained = float(e[0]) - 500.0
    delivered = gained * 0.96
    assert delivered / 100.0 == pytest.approx(0.95 * 0.96)


def test_clamping_reports_spilled_and_unmet_energy() -> None:
    p = params(capacity_wh=100.0)
    e, info = step_battery(np.array([90.0]), 400.0, 0.0, 360.0, p)  # 40 Wh in, room for 10
    assert e[0] == 100.0
    assert info.stored_wh[0] == pytest.approx(10.0)
    assert info.spilled_wh[0] == pytest.approx(40.0 - 10.0 / 0.95)
    assert not info.brownout[0]
    e, info = step_battery(np.array([10.0]), 0.0, 200.0, 360.0, p)  # 20 Wh load
    assert e[0] == 0.0
    assert info.drawn_wh[0] == pytest.approx(10.0)
    assert info.unmet_wh[0] == pytest.approx(20.0 - 10.0 * 0.96)
    assert info.brownout[0]


def test_floor_and_max_load() -> None:
    p = params()
    assert floor_wh(p) == pytest.approx(300.0)
    # 500 Wh stored, floor 300: over 1 h at most 200 * 0.96 Wh of load above the solar input.
    load = max_load_w(np.array([500.0, 250.0]), np.array([100.0, 100.0]), 3600.0, p)
    assert load[0] == pytest.approx(100.0 + 192.0)
    assert load[1] == pytest.approx(100.0)
    e, _ = step_battery(np.array([500.0]), 100.0, load[0], 3600.0, p)
    assert e[0] == pytest.approx(300.0)


def test_orbit_average_and_sustainable_load() -> None:
    p = params()
    f = 1 - 35.6 / 95.65  # beta 0 at 550 km
    assert orbit_average_solar_w(p, f) == pytest.approx(solar_power_w(p, 1.0) * f)
    load = max_sustainable_load_w(p, f)
    balance = orbit_energy_balance_wh(p, 95.65 * 60, f, load)
    assert balance == pytest.approx(0.0, abs=1e-9)
    assert orbit_energy_balance_wh(p, 95.65 * 60, f, load * 1.01) < 0
    assert orbit_energy_balance_wh(p, 95.65 * 60, f, load * 0.99) > 0


def test_rejects_bad_parameters() -> None:
    with pytest.raises(ConfigError, match="cell_efficiency"):
        params(cell_efficiency=1.2)
    with pytest.raises(ConfigError, match="capacity_wh"):
        params(capacity_wh=-1.0)
    with pytest.raises(ConfigError, match="discharge_efficiency"):
        params(discharge_efficiency=0.0)
    with pytest.raises(ConfigError, match="dt_s"):
        step_battery(np.array([1.0]), 0.0, 0.0, -1.0, params())
