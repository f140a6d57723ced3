"""Orbit descriptions: specs, the description published in Status, and its inverse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from flightsw.exceptions import ConfigError, OrbitError, ProtocolError
from flightsw.orbitdesc import OrbitSpec, build_orbits, orbit_info, orbits_from_info
from flightsw.physics.orbit import CircularOrbits, TleOrbits
from flightsw.protocol import CircularOrbitInfo, Status, TleOrbitInfo, decode, dump, parse
from flightsw.timeutil import parse_iso

ISS = Path(__file__).parent / "physics" / "data" / "iss_2019-12-09.tle"
T0 = parse_iso("2019-12-10T00:00:00Z")
TIMES = T0 + np.array([0.0, 1_234.0, 86_400.0])


def _same_track(a: object, b: object) -> None:
    assert isinstance(a, CircularOrbits | TleOrbits) and isinstance(b, CircularOrbits | TleOrbits)
    assert np.allclose(a.positions_many(TIMES), b.positions_many(TIMES), rtol=0, atol=1e-6)


@pytest.fixture
def two_sat_file(tmp_path: Path) -> Path:
    lines = ISS.read_text().splitlines()
    path = tmp_path / "two.tle"
    path.write_text("\n".join([*lines, "ISS COPY", *lines[1:]]) + "\n")
    return path


def test_circular_orbit() -> None:
    spec = OrbitSpec(altitude_km=550.0, inclination_deg=53.0, raan_deg=40.0,
                     arg_latitude_deg=10.0)
    orbits = build_orbits(spec, T0, "sat-7")
    assert isinstance(orbits, CircularOrbits)
    assert orbits.names == ["sat-7"] and len(orbits) == 1 and orbits.epoch == T0
    _same_track(orbits, CircularOrbits(550.0, 53.0, 40.0, 10.0, epoch=T0))


def test_circular_orbit_needs_altitude_and_inclination() -> None:
    with pytest.raises(ConfigError, match="altitude_km and inclination_deg"):
        build_orbits(OrbitSpec(altitude_km=550.0), T0, "n")
    with pytest.raises(ConfigError, match=r"^orbit: "):
        build_orbits(OrbitSpec(inclination_deg=53.0), T0, "n")


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"altitude_km": 50.0}, "altitude_km"),
        ({"inclination_deg": 181.0}, "inclination_deg"),
        ({"period_min": 95.0}, "period_min"),
    ],
)
def test_orbit_spec_fields_are_checked(fields: dict[str, float], name: str) -> None:
    with pytest.raises(ValidationError, match=name):
        OrbitSpec(**fields)


def test_tle_file_with_one_satellite() -> None:
    orbits = build_orbits(OrbitSpec(tle_file=ISS), T0, "ignored")
    assert isinstance(orbits, TleOrbits) and orbits.names == ["ISS (ZARYA)"]


def test_tle_file_with_several_needs_a_name(two_sat_file: Path) -> None:
    with pytest.raises(ConfigError, match=r"^tle_name: .* holds 2 satellites"):
        build_orbits(OrbitSpec(tle_file=two_sat_file), T0, "n")
    with pytest.raises(ConfigError, match=r"^tle_name: 'HUBBLE' is not in"):
        build_orbits(OrbitSpec(tle_file=two_sat_file, tle_name="HUBBLE"), T0, "n")
    picked = build_orbits(OrbitSpec(tle_file=two_sat_file, tle_name="ISS COPY"), T0, "n")
    assert isinstance(picked, TleOrbits) and picked.names == ["ISS COPY"]
    _same_track(picked, TleOrbits.from_file(ISS))


def test_missing_tle_file_is_an_orbit_error(tmp_path: Path) -> None:
    with pytest.raises(OrbitError, match="cannot read TLE file"):
        build_orbits(OrbitSpec(tle_file=tmp_path / "none.tle"), T0, "n")


def test_circular_info_round_trip_through_a_status_message() -> None:
    spec = OrbitSpec(altitude_km=700.0, inclination_deg=97.5, raan_deg=123.0,
                     arg_latitude_deg=-20.0)
    info = orbit_info(spec, T0)
    assert isinstance(info, CircularOrbitInfo) and info.epoch == T0
    wire = dump(Status(node="n", state="online", t=T0, orbit=info))
    assert decode(wire)["orbit"] == {  # the fields as they always travelled
        "type": "circular", "altitude_km": 700.0, "inclination_deg": 97.5, "raan_deg": 123.0,
        "arg_latitude_deg": -20.0, "epoch": T0,
    }
    sent = parse(Status, wire)
    assert sent.orbit == info
    back = orbits_from_info(sent.orbit, "n")
    assert isinstance(back, CircularOrbits) and back.names == ["n"]
    _same_track(back, build_orbits(spec, T0, "n"))


def test_tle_info_round_trip(two_sat_file: Path) -> None:
    spec = OrbitSpec(tle_file=two_sat_file, tle_name="ISS COPY")
    info = orbit_info(spec, T0)
    assert isinstance(info, TleOrbitInfo) and info.name == "ISS COPY"
    sent = parse(Status, dump(Status(node="n", state="online", t=T0, orbit=info)))
    assert sent.orbit == info
    back = orbits_from_info(sent.orbit, "n")
    assert isinstance(back, TleOrbits) and back.names == ["ISS COPY"]
    _same_track(back, build_orbits(spec, T0, "n"))
    whole = orbits_from_info(TleOrbitInfo(text=ISS.read_text()), "n")
    assert whole.names == ["ISS (ZARYA)"]


def _status_with(orbit: dict[str, object]) -> dict[str, object]:
    return {"kind": "status", "node": "n", "state": "online", "t": T0, "orbit": orbit}


def test_info_errors_name_the_field() -> None:
    good = decode(dump(orbit_info(OrbitSpec(altitude_km=550.0, inclination_deg=53.0), T0)))
    with pytest.raises(ProtocolError, match=r"^orbit: .*'keplerian'") as err:
        parse(Status, _status_with({**good, "type": "keplerian"}))
    assert err.value.code == "schema" and err.value.field == "orbit"
    with pytest.raises(ProtocolError, match=r"^orbit: "):
        parse(Status, _status_with({}))
    without_epoch = {k: v for k, v in good.items() if k != "epoch"}
    with pytest.raises(ProtocolError, match=r"^orbit\.circular\.epoch: Field required"):
        parse(Status, _status_with(without_epoch))
    with pytest.raises(ProtocolError, match=r"^orbit\.circular\.altitude_km: "):
        parse(Status, _status_with({**good, "altitude_km": "high"}))
    with pytest.raises(ProtocolError, match=r"^orbit\.circular\.inclination_deg: ") as err:
        parse(Status, _status_with({**good, "inclination_deg": 200.0}))
    assert err.value.field == "orbit.circular.inclination_deg"
    with pytest.raises(ProtocolError, match=r"^orbit\.tle\.text: "):
        parse(Status, _status_with({"type": "tle", "text": ""}))
    with pytest.raises(ConfigError, match=r"^orbit\.name: 'HUBBLE' is not in the TLE text"):
        orbits_from_info(TleOrbitInfo(text=ISS.read_text(), name="HUBBLE"), "n")
    with pytest.raises(OrbitError, match="has no TLE after it"):
        orbits_from_info(TleOrbitInfo(text="not a TLE"), "n")
