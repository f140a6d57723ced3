"""Lifetime models: dose, hard-failure hazard, battery fade, array/radiator ageing, debris."""

from __future__ import annotations

import numpy as np
import pytest

from flightsw.exceptions import ConfigError
from flightsw.node import aging
from hardware_profiles import load_profile
from hardware_profiles.schema import Lifetime


@pytest.fixture
def tpu() -> Lifetime:
    life = load_profile("suncatcher-tpu-v6e").lifetime
    assert life is not None
    return life


def test_suncatcher_dose_five_years_behind_10mm(tpu: Lifetime) -> None:
    # Suncatcher paper: ~150 rad(Si)/yr behind 10 mm Al, ~750 rad for a 5-year mission
    assert tpu.shielding_mm_al == 10.0
    assert float(aging.dose_rate_rad_per_year(tpu)) * 5 == pytest.approx(750.0)


def test_dose_per_orbit_and_shielding(tpu: Lifetime) -> None:
    per_orbit = float(aging.dose_per_orbit_rad(tpu, 5860.0))
    assert per_orbit == pytest.approx(150.0 * 5860.0 / aging.SECONDS_PER_YEAR)
    thin, thick = aging.dose_rate_rad_per_year(tpu, [2.0, 20.0])
    assert thin > 150.0 > thick
    assert thin / 150.0 == pytest.approx(5.0**aging.DOSE_DEPTH_EXPONENT)
    with pytest.raises(ConfigError, match="shielding_mm_al"):
        aging.dose_rate_rad_per_year(tpu, 0.0)


def test_hard_failure_hazard_rises_with_dose(tpu: Lifetime) -> None:
    s = aging.dose_survival(tpu, [0.0, 750.0, 15_000.0, 60_000.0])
    assert s[0] == 1.0
    assert s[1] > 0.9999  # a shielded 5-year mission: hard failures from dose are rare
    assert s[2] > 0.9  # Suncatcher: no hard failure of TPU v6e up to 15 krad
    assert s[3] < 0.01
    assert np.all(np.diff(s) < 0)


def test_random_failures_follow_the_yearly_rate(tpu: Lifetime) -> None:
    assert float(aging.random_survival(tpu, 1.0)) == pytest.approx(1 - tpu.random_failure_per_year)
    assert float(aging.random_survival(tpu, 2.0)) == pytest.approx(
        (1 - tpu.random_failure_per_year) ** 2
    )
    both = aging.survival(tpu, 1.0, 15_000.0)
    assert float(both) == pytest.approx(
        float(aging.random_survival(tpu, 1.0) * aging.dose_survival(tpu, 15_000.0))
    )


def test_battery_fade_with_cycles_and_depth(tpu: Lifetime) -> None:
    ref = tpu.battery_ref_dod
    at_life = aging.battery_capacity_fraction(tpu, tpu.battery_cycles_to_80pct, ref)
    assert float(at_life) == pytest.approx(0.8)
    # a LEO satellite cycles ~5,500 times a year: five years at the reference depth
    five_years = float(aging.battery_capacity_fraction(tpu, 5 * 5500, ref))
    assert five_years == pytest.approx(1 - 0.2 * 27_500 / tpu.battery_cycles_to_80pct)
    shallow, deep = aging.battery_capacity_fraction(tpu, 10_000, [0.1, 0.5])
    assert shallow > deep
    with pytest.raises(ConfigError, match="cycles"):
        aging.battery_capacity_fraction(tpu, -1, ref)


def test_array_and_radiator_age(tpu: Lifetime) -> None:
    assert float(aging.array_power_fraction(tpu, 5.0)) == pytest.approx(
        (1 - tpu.array_degradation_per_year) ** 5
    )
    assert float(aging.radiator_absorptivity(tpu, 0.2, 5.0)) == pytest.approx(
        0.2 + 5 * tpu.radiator_absorptivity_rise_per_year
    )
    assert float(aging.radiator_absorptivity(tpu, 0.95, 100.0)) == 1.0


def test_manoeuvres_pause_compute_and_draw_power(tpu: Lifetime) -> None:
    year = aging.SECONDS_PER_YEAR
    frac = float(aging.manoeuvre_downtime_fraction(tpu, tpu.manoeuvres_per_year, year))
    assert frac == pytest.approx(tpu.manoeuvres_per_year * tpu.manoeuvre_pause_s / year)
    assert float(aging.manoeuvre_downtime_fraction(tpu, 1000, 3600.0)) == 1.0
    wh = float(aging.manoeuvre_energy_wh(tpu, 2))
    assert wh == pytest.approx(2 * tpu.propulsion_w * tpu.manoeuvre_pause_s / 3600)
    with pytest.raises(ConfigError, match="dt_s"):
        aging.manoeuvre_downtime_fraction(tpu, 1, 0.0)


def test_age_state_bundles_the_factors(tpu: Lifetime) -> None:
    st = aging.age_state(
        tpu, years=[0.0, 5.0], dose_rad=[0.0, 750.0], cycles=[0, 27_500], dod=0.25,
        initial_absorptivity=0.2,
    )
    assert st.array_fraction[0] == 1.0 and st.array_fraction[1] < 1.0
    assert st.battery_fraction[1] < st.battery_fraction[0] == 1.0
    assert st.accelerator_survival[1] < 1.0
    assert st.radiator_absorptivity[1] > 0.2


def test_aged_profile_is_the_bus_after_years() -> None:
    p = load_profile("starcloud-h100")
    life = p.lifetime
    assert life is not None
    same = aging.aged_profile(p, 0.0)
    assert same.bus.battery_wh == p.bus.battery_wh
    assert same.bus.degradation == pytest.approx(p.bus.degradation)
    assert same.thermal == p.thermal
    old = aging.aged_profile(p, 4.0, cycles_per_year=5500.0, dod=0.25)
    kept = (1 - life.array_degradation_per_year) ** 4
    assert 1 - old.bus.degradation == pytest.approx((1 - p.bus.degradation) * kept)
    assert old.bus.battery_wh == pytest.approx(
        p.bus.battery_wh * (1 - 0.2 * 22_000 / life.battery_cycles_to_80pct)
    )
    assert old.thermal.absorptivity == pytest.approx(
        p.thermal.absorptivity + 4 * life.radiator_absorptivity_rise_per_year
    )
    assert old.compute == p.compute  # accelerator failures are events, not figures
    with pytest.raises(ConfigError, match="years"):
        aging.aged_profile(p, -1.0)
    with pytest.raises(ConfigError, match="worn out"):
        aging.aged_profile(p, 100.0)
