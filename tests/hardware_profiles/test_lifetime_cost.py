"""The optional [lifetime] and [cost] sections: present in every packaged profile, checked."""

from __future__ import annotations

import pytest

from flightsw.exceptions import ProfileError
from hardware_profiles import list_profiles, load_profile, parse_profile


@pytest.mark.parametrize("name", list_profiles())
def test_every_packaged_profile_has_lifetime_and_cost(name: str) -> None:
    p = load_profile(name)
    assert p.lifetime is not None and p.cost is not None
    assert p.lifetime.shielding_mm_al > 0
    assert p.lifetime.dose_ref_shielding_mm_al == 10.0  # Suncatcher's reference shielding
    assert p.cost.accelerator_usd > 0


def test_suncatcher_figures() -> None:
    life = load_profile("suncatcher-tpu-v6e").lifetime
    assert life is not None
    assert life.dose_rate_rad_per_year == 150.0
    assert life.hard_failure_dose_rad > 15_000.0  # no hard failure up to 15 krad
    assert life.design_life_years == 5.0


def test_sections_are_optional_and_checked() -> None:
    data = load_profile("cubesat-6u").model_dump()
    bare = {k: v for k, v in data.items() if k not in ("lifetime", "cost")}
    assert parse_profile(bare, source="bare.toml").lifetime is None
    bad = {**data, "lifetime": {**data["lifetime"], "battery_ref_dod": 1.5}}
    with pytest.raises(ProfileError, match=r"lifetime\.battery_ref_dod"):
        parse_profile(bad, source="bad.toml")
    bad = {**data, "cost": {**data["cost"], "satellite_usd": 0}}
    with pytest.raises(ProfileError, match=r"cost\.satellite_usd"):
        parse_profile(bad, source="bad.toml")
    bad = {**data, "lifetime": {**data["lifetime"], "accelerators": 0}}
    with pytest.raises(ProfileError, match=r"lifetime\.accelerators"):
        parse_profile(bad, source="bad.toml")
