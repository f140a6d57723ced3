"""Cost terms: each formula, and a clear error naming the bad field."""

from __future__ import annotations

import math

import pytest

from flightsw.economics import terms
from flightsw.economics.exceptions import StudyError


def test_launch_and_launched_power_price() -> None:
    assert terms.launch_cost_usd(1000.0, 200.0) == 200_000.0
    # 575 kg, 28 kW, 5 y at $200/kg
    assert terms.launched_power_price(575.0, 28.0, 5.0, 200.0) == pytest.approx(821.43, rel=1e-4)
    with pytest.raises(StudyError, match="power_kw"):
        terms.launched_power_price(575.0, 0.0, 5.0, 200.0)
    with pytest.raises(StudyError, match="launch_usd_per_kg"):
        terms.launch_cost_usd(1.0, -1.0)


def test_energy_cost() -> None:
    # 1 MW for a year at $0.10/kWh and PUE 1.5
    assert terms.energy_cost_usd(1e6, 1.0, 0.10, pue=1.5) == pytest.approx(1_314_000.0)
    assert terms.energy_cost_usd(1e6, 1.0, 0.10, capacity_factor=0.5) == pytest.approx(438_000)
    assert terms.power_spend_per_kw_year(0.1, 1.0) == pytest.approx(876.0)
    with pytest.raises(StudyError, match="pue"):
        terms.energy_cost_usd(1.0, 1.0, 0.1, pue=0.9)
    with pytest.raises(StudyError, match="capacity_factor"):
        terms.energy_cost_usd(1.0, 1.0, 0.1, capacity_factor=1.5)


def test_mean_retention() -> None:
    assert terms.mean_retention(0.0, 5.0) == 1.0
    assert terms.mean_retention(0.1, 2.0, discrete=True) == pytest.approx((1 + 0.9) / 2)
    k = -math.log(0.9)
    assert terms.mean_retention(0.1, 2.0) == pytest.approx((1 - math.exp(-2 * k)) / (2 * k))
    with pytest.raises(StudyError, match="years"):
        terms.mean_retention(0.1, 2.5, discrete=True)
    with pytest.raises(StudyError, match="loss_per_year"):
        terms.mean_retention(1.0, 2.0)


def test_break_even_price() -> None:
    assert terms.break_even_price(1000.0, 10.0, 3000.0) == 200.0
    assert terms.break_even_price(5000.0, 10.0, 3000.0) < 0  # no price breaks even
