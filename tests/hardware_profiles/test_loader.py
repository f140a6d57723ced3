"""Loading profiles by name and path, and the errors bad files get."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from flightsw.exceptions import ConfigError, ProfileError
from hardware_profiles import (
    HardwareProfile,
    list_profiles,
    load_profile,
    parse_profile,
    profile_path,
    profiles_dir,
)

EditProfile = Callable[..., Path]

EXPECTED = {
    "cubesat-6u",
    "jetson-agx-orin",
    "jetson-orin-nano-super",
    "pic64-hpsc",
    "starcloud-h100",
    "suncatcher-tpu-v6e",
}


def test_list_profiles_is_sorted_and_has_the_six_required() -> None:
    names = list_profiles()
    assert names == sorted(names)
    assert set(names) >= EXPECTED
    assert {p.stem for p in profiles_dir().glob("*.toml")} == set(names)


@pytest.mark.parametrize("name", list_profiles())
def test_every_packaged_profile_loads_by_name_and_by_path(name: str) -> None:
    by_name = load_profile(name)
    by_path = load_profile(profile_path(name))
    by_str_path = load_profile(str(profile_path(name)))
    assert isinstance(by_name, HardwareProfile)
    assert by_name.name == name
    assert by_name == by_path == by_str_path


def test_unknown_name_lists_the_available_profiles() -> None:
    with pytest.raises(ProfileError) as info:
        load_profile("h200-dreamsat")
    text = str(info.value)
    assert "'h200-dreamsat'" in text
    for name in list_profiles():
        assert name in text
    assert isinstance(info.value, ConfigError)


def test_profile_path_refuses_names_with_separators() -> None:
    with pytest.raises(ProfileError, match="unknown hardware profile"):
        profile_path("../hardware_profiles/starcloud-h100")


def test_missing_file_is_a_profile_error(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"nothere\.toml: cannot read"):
        load_profile(tmp_path / "nothere.toml")


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("name = \n[bus\n", encoding="utf-8")
    with pytest.raises(ProfileError, match=r"^broken\.toml: invalid TOML"):
        load_profile(path)


def test_non_utf8_file_is_a_profile_error(tmp_path: Path) -> None:
    path = tmp_path / "latin.toml"
    path.write_bytes(b'description = "caf\xe9"\n')
    with pytest.raises(ProfileError, match=r"latin\.toml: not UTF-8"):
        load_profile(path)


def test_name_defaults_to_the_file_stem(edit_profile: EditProfile) -> None:
    path = edit_profile("cubesat-6u", stem="my-cubesat")
    text = path.read_text(encoding="utf-8").replace('name = "cubesat-6u"\n', "")
    path.write_text(text, encoding="utf-8")
    assert load_profile(path).name == "my-cubesat"


def test_name_must_match_the_file_stem(edit_profile: EditProfile) -> None:
    path = edit_profile("cubesat-6u", stem="renamed")
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert str(info.value) == (
        "renamed.toml: name: 'cubesat-6u' does not match the file name (expected 'renamed')"
    )


# --- validation errors name the file and the dotted field path -------------------------


def _error(path: Path) -> str:
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    return str(info.value)


def test_out_of_range_value(edit_profile: EditProfile) -> None:
    path = edit_profile("starcloud-h100", ("bus", "battery_wh", "-5.0"))
    assert _error(path) == "starcloud-h100.toml: bus.battery_wh: Input should be greater than 0"


def test_wrong_type(edit_profile: EditProfile) -> None:
    path = edit_profile("starcloud-h100", ("thermal", "max_c", '"hot"'))
    assert _error(path) == (
        "starcloud-h100.toml: thermal.max_c: Input should be a valid number, "
        "unable to parse string as a number"
    )


def test_missing_field(edit_profile: EditProfile) -> None:
    path = edit_profile("jetson-agx-orin", ("bus", "heater_w", None))
    assert _error(path) == "jetson-agx-orin.toml: bus.heater_w: field required"


def test_unknown_field(edit_profile: EditProfile) -> None:
    path = edit_profile("jetson-agx-orin", ("links", "laser_colour", '"green"'))
    assert _error(path) == (
        "jetson-agx-orin.toml: links.laser_colour: unknown field (not part of the profile schema)"
    )


def test_throttle_not_below_max(edit_profile: EditProfile) -> None:
    path = edit_profile("pic64-hpsc", ("thermal", "throttle_c", "85.0"))
    assert _error(path) == (
        "pic64-hpsc.toml: thermal.max_c: max_c (85) must be above throttle_c (85)"
    )


def test_default_mode_not_a_mode(edit_profile: EditProfile) -> None:
    path = edit_profile("starcloud-h100", ("compute", "default_mode", '"turbo"'))
    assert _error(path) == (
        "starcloud-h100.toml: compute.default_mode: 'turbo' is not a power mode "
        "(valid: tdp700, cap500, cap350, cap200)"
    )


def test_inference_precision_missing_from_peak_ops(edit_profile: EditProfile) -> None:
    path = edit_profile("cubesat-6u", ("compute", "inference_precision", '"bf16"'))
    assert _error(path) == (
        "cubesat-6u.toml: compute.inference_precision: 'bf16' has no entry in "
        "compute.peak_ops (present: int8, fp16, fp32)"
    )


def test_unknown_precision_key(edit_profile: EditProfile) -> None:
    path = edit_profile("cubesat-6u", ("compute", "peak_ops.fp4", "1e15"))
    error = _error(path)
    assert error.startswith("cubesat-6u.toml: compute.peak_ops.fp4 (key): Input should be ")
    assert "'int8'" in error


def test_several_errors_are_reported_together(edit_profile: EditProfile) -> None:
    path = edit_profile(
        "cubesat-6u",
        ("bus", "cell_efficiency", "1.2"),
        ("links", "downlink_rate_bps", "0"),
        ("radiation", "saa_factor", "0.5"),
    )
    lines = _error(path).splitlines()
    assert lines == [
        "cubesat-6u.toml: bus.cell_efficiency: Input should be less than 1",
        "cubesat-6u.toml: radiation.saa_factor: Input should be greater than or equal to 1",
        "cubesat-6u.toml: links.downlink_rate_bps: Input should be greater than 0",
    ]


def test_initial_soc_must_start_above_the_floor(edit_profile: EditProfile) -> None:
    path = edit_profile("cubesat-6u", ("bus", "initial_soc", "0.3"))
    assert _error(path) == (
        "cubesat-6u.toml: bus.initial_soc: initial_soc (0.3) must be above dod_floor (0.3)"
    )


def test_sustained_mode_must_be_a_mode(edit_profile: EditProfile) -> None:
    path = edit_profile("starcloud-h100", ("design", "sustained_mode", '"warp"'))
    assert _error(path) == (
        "starcloud-h100.toml: design.sustained_mode: 'warp' is not a power mode "
        "(valid: tdp700, cap500, cap350, cap200)"
    )


def test_unknown_mitigation_and_duplicates(edit_profile: EditProfile) -> None:
    bad = edit_profile("cubesat-6u", ("radiation", "mitigation", '["prayer"]'))
    assert _error(bad).startswith("cubesat-6u.toml: radiation.mitigation[0]: Input should be ")
    dup = edit_profile("cubesat-6u", ("radiation", "mitigation", '["ecc", "ecc"]'))
    assert _error(dup) == (
        "cubesat-6u.toml: radiation.mitigation: mitigations must be unique; repeated: ecc"
    )


# --- power-mode tables (edited as parsed data) -----------------------------------------


def _data(name: str) -> dict[str, object]:
    return tomllib.loads(profile_path(name).read_text(encoding="utf-8"))


def _modes(data: dict[str, object]) -> list[dict[str, object]]:
    compute = data["compute"]
    assert isinstance(compute, dict)
    modes = compute["power_modes"]
    assert isinstance(modes, list)
    return modes


def _parse_error(data: dict[str, object]) -> str:
    with pytest.raises(ProfileError) as info:
        parse_profile(data, source="x.toml")
    return str(info.value)


def test_power_mode_field_errors_carry_the_list_index() -> None:
    data = _data("jetson-agx-orin")
    _modes(data)[2]["watts"] = 0
    assert _parse_error(data) == (
        "x.toml: compute.power_modes[2].watts: Input should be greater than 0"
    )


def test_power_mode_names_must_be_unique() -> None:
    data = _data("jetson-agx-orin")
    _modes(data)[1]["name"] = "MAXN"
    assert _parse_error(data) == (
        "x.toml: compute.power_modes: power mode names must be unique; repeated: MAXN"
    )


def test_fastest_mode_must_have_throughput_one() -> None:
    data = _data("jetson-agx-orin")
    _modes(data)[0]["throughput"] = 0.9
    assert _parse_error(data).startswith(
        "x.toml: compute.power_modes: the fastest power mode must have throughput 1.0 (found 0.9)"
    )


def test_at_least_one_power_mode() -> None:
    data = _data("jetson-agx-orin")
    compute = data["compute"]
    assert isinstance(compute, dict)
    compute["power_modes"] = []
    assert _parse_error(data).startswith("x.toml: compute.power_modes: List should have at least 1")


def test_parse_profile_without_a_file_name_needs_a_name() -> None:
    data = _data("cubesat-6u")
    del data["name"]
    assert _parse_error(data) == "x.toml: name: field required"
