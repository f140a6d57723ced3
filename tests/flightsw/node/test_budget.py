"""Power, thermal and upset state of nodes, and the energy forecast used for admission."""

from __future__ import annotations

import numpy as np
import pytest

from flightsw.node.budget import EDGE_PAD_S, Budget
from flightsw.physics import power, thermal
from flightsw.physics.eclipse import eclipse_intervals
from flightsw.physics.orbit import CircularOrbits, ltan_raan, sun_synchronous_inclination
from flightsw.timeutil import parse_iso
from hardware_profiles import HardwareProfile, load_profile

T0 = parse_iso("2026-03-20T12:00:00Z")
NANO = load_profile("jetson-orin-nano-super")  # 100 Wh, floor 30 Wh, bus 12 W + idle 4 W
BASE_W = NANO.bus.base_load_w + NANO.compute.idle_w
ETA = 0.95  # the Nano profile's charge and discharge efficiency
# the Nano's array in full sun, by hand: S * eta * A * (1 - degradation)
SUN_W = 1361.0 * 0.298 * 0.2 * (1.0 - 0.05)
SCAN_STEP_S = 30.0  # the forecast samples illumination every 30 s
# with an eclipse ahead the margin keeps EDGE_PAD_S of bus load for the forecast's own error
PAD_WH = EDGE_PAD_S * BASE_W / ETA / 3600.0


def _orbit(raan: float = 0.0, u0: float = 0.0) -> CircularOrbits:
    return CircularOrbits(550.0, 53.0, raan, u0, epoch=T0, names=["n"])


@pytest.fixture(scope="module")
def eclipses() -> list[tuple[float, float]]:
    """The reference eclipses of the default orbit over three orbits (0.1 s edges)."""
    return eclipse_intervals(_orbit(), T0, T0 + 3 * 5_739.0)[0]


def _budget(t: float, *, soc: float | None = None, temp_c: float | None = None,
            seed: int = 0) -> Budget:
    return Budget.from_profiles([NANO], _orbit(), t, initial_soc=soc,
                                initial_temperature_c=temp_c, seed=seed)


def test_reference_orbit_has_the_expected_eclipses(eclipses: list[tuple[float, float]]) -> None:
    # the other tests lean on this geometry: sunlit at T0, eclipse ~30 min later for ~36 min
    assert len(eclipses) == 3
    start, end = eclipses[0]
    assert 1_500 < start - T0 < 2_100 and 2_000 < end - start < 2_200


def test_sunlit_step_charges_with_the_charge_efficiency() -> None:
    b = _budget(T0, soc=0.5)
    assert power.solar_power_w(b.power, 1.0)[0] == pytest.approx(SUN_W)
    b.step(T0 + 60.0, 60.0, np.array([NANO.compute.idle_w]))
    assert b.illumination_of(0) == 1.0
    assert b.solar_w_of(0) == pytest.approx(SUN_W)
    assert b.load_w_of(0) == BASE_W
    want = 50.0 + (SUN_W - BASE_W) * ETA * 60.0 / 3600.0
    assert b.battery_wh_of(0) == pytest.approx(want, rel=1e-12)
    stepped, _ = power.step_battery(50.0, SUN_W, BASE_W, 60.0, b.power)
    assert b.battery_wh_of(0) == pytest.approx(float(stepped[0]), rel=1e-12)
    assert b.soc_of(0) == pytest.approx(want / 100.0)
    assert b.t == T0 + 60.0


def test_eclipse_step_discharges_with_the_discharge_efficiency(
    eclipses: list[tuple[float, float]],
) -> None:
    start, _ = eclipses[0]
    b = _budget(start + 300.0, soc=0.5)
    compute = 25.0 + NANO.compute.idle_w
    b.step(start + 360.0, 60.0, np.array([compute]))
    assert b.illumination_of(0) == 0.0 and b.solar_w_of(0) == 0.0
    assert b.load_w_of(0) == NANO.bus.base_load_w + compute
    want = 50.0 - (NANO.bus.base_load_w + compute) / ETA * 60.0 / 3600.0
    assert b.battery_wh_of(0) == pytest.approx(want, rel=1e-12)


def test_battery_clamps_at_capacity() -> None:
    b = _budget(T0, soc=1.0)
    b.step(T0 + 600.0, 600.0, np.array([0.0]))
    assert b.battery_wh_of(0) == 100.0


def test_zero_or_negative_step_does_nothing() -> None:
    b = _budget(T0, soc=0.5)
    b.step(T0 + 60.0, 0.0, np.array([100.0]))
    b.step(T0 + 60.0, -5.0, np.array([100.0]))
    assert b.battery_wh_of(0) == 50.0 and b.t == T0


@pytest.mark.parametrize("temp_c", [-15.0, 20.0, 70.0])
@pytest.mark.parametrize("where", ["sun", "eclipse"])
def test_temperature_moves_toward_equilibrium(
    temp_c: float, where: str, eclipses: list[tuple[float, float]],
) -> None:
    t = T0 if where == "sun" else eclipses[0][0] + 300.0
    b = _budget(t, temp_c=temp_c)
    compute = np.array([NANO.compute.idle_w + 10.0])
    b.step(t + 120.0, 120.0, compute)
    vf = thermal.view_factor(np.linalg.norm(b.position_of(0)))
    eq_c = float(thermal.equilibrium_temperature_k(
        b.thermal, b.illumination_of(0), vf, b.load_w_of(0))[0]) - 273.15
    after = b.temperature_c_of(0)
    assert abs(after - eq_c) < abs(temp_c - eq_c)
    assert min(temp_c, eq_c) < after < max(temp_c, eq_c)  # no overshoot
    assert not b.heater_on[0]


def test_heater_turns_on_below_the_minimum() -> None:
    b = _budget(T0, temp_c=-25.0)
    b.step(T0 + 60.0, 60.0, np.array([4.0]))
    assert b.heater_on[0]
    assert b.load_w_of(0) == NANO.bus.base_load_w + 4.0 + NANO.bus.heater_w


# -- forecast ----------------------------------------------------------------------------


def test_next_eclipse_matches_the_eclipse_search(eclipses: list[tuple[float, float]]) -> None:
    b = _budget(T0)
    for now, (true_start, true_end) in [
        (T0, eclipses[0]),
        (eclipses[0][1] + 120.0, eclipses[1]),
        (eclipses[1][1] + 2_000.0, eclipses[2]),
    ]:
        got = b.next_eclipse(0, now)
        assert got is not None
        start, end = got
        # first dark / first lit sample of a 30 s scan: at most one step after the true edge
        assert -0.2 <= start - true_start <= SCAN_STEP_S + 0.2
        assert -0.2 <= end - true_end <= SCAN_STEP_S + 0.2


def test_next_eclipse_while_in_eclipse_starts_now(eclipses: list[tuple[float, float]]) -> None:
    start, end = eclipses[0]
    now = start + 600.0
    got = _budget(now).next_eclipse(0, now)
    assert got is not None
    assert got[0] == now and abs(got[1] - end) <= SCAN_STEP_S + 0.2


def test_no_eclipse_on_an_orbit_that_never_enters_the_shadow() -> None:
    # an 06:00-LTAN sun-synchronous orbit at the June solstice: beta -75 deg, beyond the
    # 62.7 deg shadow limit at 800 km (the 18:00 plane is in its eclipse season then)
    june = parse_iso("2026-06-21T06:00:00Z")
    orbit = CircularOrbits(800.0, float(sun_synchronous_inclination(800.0)),
                           ltan_raan(june, 6.0), 0.0, epoch=june, names=["dd"])
    b = Budget.from_profiles([NANO], orbit, june, initial_soc=0.5)
    assert eclipse_intervals(orbit, june, june + 2 * 6_000.0) == [[]]
    assert b.next_eclipse(0, june) is None
    assert b.margin_wh(0, june) == pytest.approx(50.0 - 30.0)


def test_margin_smaller_in_eclipse_than_after_sunrise(eclipses: list[tuple[float, float]]) -> None:
    start, end = eclipses[0]
    b = _budget(T0, soc=0.5)  # the battery stays at 50 Wh: nothing is stepped
    in_eclipse = start + 600.0
    fc_end = b.next_eclipse(0, in_eclipse)
    assert fc_end is not None
    drain = BASE_W / ETA * (fc_end[1] - in_eclipse) / 3600.0
    m_dark = b.margin_wh(0, in_eclipse)
    assert m_dark == pytest.approx(50.0 - drain - 30.0 - PAD_WH)
    # just after sunrise a long day recharges more than the next eclipse drains
    m_dawn = b.margin_wh(0, end + 60.0)
    assert m_dawn == pytest.approx(50.0 - 30.0 - PAD_WH)
    assert m_dark < m_dawn


def test_margin_of_a_full_battery_clips_the_surplus(eclipses: list[tuple[float, float]]) -> None:
    _, end = eclipses[0]
    now = end + 60.0
    b = _budget(now, soc=1.0)
    nxt = b.next_eclipse(0, now)
    assert nxt is not None
    assert abs(nxt[0] - eclipses[1][0]) <= SCAN_STEP_S + 0.2
    # battery + min over the window - floor: the day's surplus cannot be stored above 100 Wh,
    # so the low point is 100 Wh minus the next eclipse's drain
    drain = BASE_W / ETA * (nxt[1] - nxt[0]) / 3600.0
    assert drain > 5.0  # ~10 Wh: the clipping matters (a 60 min day would bring ~58 Wh)
    assert b.margin_wh(0, now) == pytest.approx(100.0 - drain - 30.0 - PAD_WH)
    assert b.margins_wh(now)[0] == pytest.approx(100.0 - drain - 30.0 - PAD_WH)


def test_margin_below_the_floor_is_negative(eclipses: list[tuple[float, float]]) -> None:
    now = eclipses[0][0] + 60.0
    b = _budget(now, soc=0.25)
    assert b.margin_wh(0, now) < -5.0


# -- counters and upsets -----------------------------------------------------------------


def test_floor_and_thermal_violation_counters_accumulate(
    eclipses: list[tuple[float, float]],
) -> None:
    t = eclipses[0][0] + 60.0
    bad = _budget(t, soc=0.2, temp_c=90.0)
    good = _budget(t)
    for k in range(1, 4):
        for b in (bad, good):
            b.step(t + 60.0 * k, 60.0, np.array([4.0]))
    assert bad.floor_violation_s[0] == 180.0 and bad.thermal_violation_s[0] == 180.0
    assert good.floor_violation_s[0] == 0.0 and good.thermal_violation_s[0] == 0.0


def _upset_trace(seed: int) -> list[int]:
    b = _budget(T0, seed=seed)
    trace = []
    for k in range(1, 121):  # two hours: a pass near the SAA included
        b.step(T0 + 60.0 * k, 60.0, np.array([4.0]))
        trace.append(b.upsets_of(0))
    return trace


def test_upsets_are_deterministic_for_a_seed() -> None:
    a, b, c = _upset_trace(7), _upset_trace(7), _upset_trace(8)
    assert a == b
    assert a != c
    assert a == sorted(a) and a[-1] > 0  # a running count
    # 4.2e-8 /bit/day x 6.4e10 bits = 2688 /day outside the SAA: ~224 in two hours
    assert 150 < a[-1] < 5_000


# -- vectorised rows ---------------------------------------------------------------------


def test_rows_behave_like_single_budgets() -> None:
    profiles: list[HardwareProfile] = [
        NANO, load_profile("jetson-agx-orin"), load_profile("cubesat-6u"),
    ]
    raans, phases = [0.0, 120.0, 250.0], [0.0, 95.0, 200.0]
    socs = np.array([0.25, 0.6, 0.95])
    temps = np.array([-25.0, 20.0, 80.0])
    compute = np.array([4.0, 30.0, 3.0])

    def make(idx: list[int]) -> Budget:
        orbits = CircularOrbits(550.0, 53.0, [raans[i] for i in idx], [phases[i] for i in idx],
                                epoch=T0, names=[f"n{i}" for i in idx])
        caps = np.array([profiles[i].bus.battery_wh for i in idx])
        return Budget([profiles[i] for i in idx], orbits, T0, caps * socs[idx],
                      temps[idx] + 273.15)

    together = make([0, 1, 2])
    alone = [make([i]) for i in range(3)]
    for k in range(1, 61):  # an hour in 60 s steps, through eclipse for some rows
        t = T0 + 60.0 * k
        together.step(t, 60.0, compute)
        for i, b in enumerate(alone):
            b.step(t, 60.0, compute[i : i + 1])
        if k % 20 == 0:
            margins = together.margins_wh(t)
            for i, b in enumerate(alone):
                assert margins[i] == pytest.approx(b.margin_wh(0, t), rel=1e-9, abs=1e-9)
                assert together.next_eclipse(i, t) == b.next_eclipse(0, t)
    for i, b in enumerate(alone):
        assert together.battery_wh_of(i) == pytest.approx(b.battery_wh_of(0), rel=1e-12)
        assert together.temperature_c_of(i) == pytest.approx(b.temperature_c_of(0), rel=1e-9)
        assert together.illumination_of(i) == b.illumination_of(0)
        assert together.solar_w_of(i) == pytest.approx(b.solar_w_of(0), rel=1e-12)
        assert together.load_w_of(i) == b.load_w_of(0)
        assert together.floor_violation_s[i] == b.floor_violation_s[0]
        assert together.thermal_violation_s[i] == b.thermal_violation_s[0]
        assert np.allclose(together.position_of(i), b.position_of(0), rtol=0, atol=1e-6)
    # the rows differ from each other, so the comparison above is not vacuous
    assert len({round(together.battery_wh_of(i), 3) for i in range(3)}) == 3
    assert together.floor_violation_s[0] > 0 and together.thermal_violation_s[2] > 0
    # upsets are not compared: the rows of one budget share one random generator


def test_from_profiles_replicates_one_profile_and_checks_lengths() -> None:
    orbits = CircularOrbits(550.0, 53.0, [0.0, 90.0], 0.0, epoch=T0, names=["a", "b"])
    b = Budget.from_profiles([NANO], orbits, T0)
    assert b.n == 2 and b.soc_of(0) == b.soc_of(1) == NANO.bus.initial_soc
    assert b.temperature_c_of(1) == pytest.approx(NANO.thermal.initial_c)
    with pytest.raises(ValueError, match="1 profiles for 2 orbits"):
        Budget([NANO], orbits, T0, np.array([50.0, 50.0]), np.array([290.0, 290.0]))

