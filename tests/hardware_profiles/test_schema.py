"""Convenience methods of HardwareProfile, checked on every packaged profile."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from flightsw.exceptions import ProfileError
from hardware_profiles import HardwareProfile, PowerMode, list_profiles, load_profile


@pytest.fixture(params=list_profiles())
def profile(request: pytest.FixtureRequest) -> HardwareProfile:
    name: str = request.param
    return load_profile(name)


def test_power_mode_by_name(profile: HardwareProfile) -> None:
    for mode in profile.compute.power_modes:
        assert profile.power_mode(mode.name) is mode


def test_unknown_power_mode_lists_the_valid_names(profile: HardwareProfile) -> None:
    with pytest.raises(ProfileError) as info:
        profile.power_mode("ludicrous")
    text = str(info.value)
    assert f"profile {profile.name!r} has no power mode 'ludicrous'" in text
    for mode in profile.compute.power_modes:
        assert mode.name in text


def test_fastest_mode_has_throughput_one_and_the_most_ops(profile: HardwareProfile) -> None:
    fastest = profile.fastest_mode
    assert fastest.throughput == 1.0
    best = max(profile.effective_ops_per_s(m) for m in profile.compute.power_modes)
    assert profile.effective_ops_per_s(fastest) == best


def test_modes_by_watts_is_ascending_and_complete(profile: HardwareProfile) -> None:
    ordered = profile.modes_by_watts()
    watts = [m.watts for m in ordered]
    assert watts == sorted(watts)
    assert {m.name for m in ordered} == set(profile.mode_names())


def test_more_power_never_buys_less_throughput(profile: HardwareProfile) -> None:
    throughputs = [m.throughput for m in profile.modes_by_watts()]
    assert throughputs == sorted(throughputs)


def test_effective_ops_is_peak_times_efficiency_times_throughput(
    profile: HardwareProfile,
) -> None:
    c = profile.compute
    peak = c.peak_ops[c.inference_precision]
    for mode in c.power_modes:
        expected = peak * c.efficiency * mode.throughput
        assert profile.effective_ops_per_s(mode.name) == pytest.approx(expected)
        assert profile.effective_ops_per_s(mode) == pytest.approx(expected)
    assert profile.effective_ops_per_s() == profile.effective_ops_per_s(c.default_mode)
    assert profile.effective_ops_per_s() < peak


def test_dod_floor_wh(profile: HardwareProfile) -> None:
    b = profile.bus
    assert profile.dod_floor_wh == pytest.approx(b.battery_wh * b.dod_floor)
    assert 0 < profile.dod_floor_wh < b.battery_wh * b.initial_soc


def test_loads(profile: HardwareProfile) -> None:
    b = profile.bus
    mode = profile.fastest_mode
    assert profile.load_w(mode) == b.base_load_w + mode.watts
    assert profile.load_w(mode, heaters=True) == b.base_load_w + mode.watts + b.heater_w
    assert profile.idle_load_w() == b.base_load_w + profile.compute.idle_w
    assert profile.compute.idle_w < min(m.watts for m in profile.compute.power_modes)


def test_sustained_mode_defaults_to_fastest(profile: HardwareProfile) -> None:
    if profile.design.sustained_mode is None:
        assert profile.sustained_mode is profile.fastest_mode
    else:
        assert profile.sustained_mode.name == profile.design.sustained_mode


def test_profiles_are_frozen() -> None:
    p = load_profile("cubesat-6u")
    with pytest.raises(ValidationError):
        p.bus.battery_wh = 1e6


def test_json_round_trip(profile: HardwareProfile) -> None:
    again = HardwareProfile.model_validate_json(profile.model_dump_json())
    assert again == profile


def test_fastest_mode_prefers_the_cheaper_of_equal_modes() -> None:
    p = load_profile("cubesat-6u")
    modes = [*p.compute.power_modes, PowerMode(name="hot", watts=30.0, throughput=1.0)]
    twin = p.model_copy(update={"compute": p.compute.model_copy(update={"power_modes": modes})})
    assert twin.fastest_mode.name == "20W"
