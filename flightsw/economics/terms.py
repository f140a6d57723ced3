"""The cost terms every study is built from: launch, energy, hardware, amortisation.

Why it exists: the published analyses (Starcloud's white paper, Google's Suncatcher paper,
McCalip's critique) and our fleet study differ in which terms they include, not in how a
term is computed. Each term here is one formula, so a reproduction and the fleet model
cannot disagree about, say, what a kilogram to orbit costs per kilowatt-year.
"""

from __future__ import annotations

import math

from flightsw.economics.exceptions import StudyError

__all__ = [
    "HOURS_PER_YEAR",
    "break_even_price",
    "energy_cost_usd",
    "launch_cost_usd",
    "launched_power_price",
    "mean_retention",
    "power_spend_per_kw_year",
]

#: Hours in a year as the published studies count them (365 x 24).
HOURS_PER_YEAR = 8760.0


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise StudyError(f"{name}: must be > 0, got {value!r}")


def _non_negative(name: str, value: float) -> None:
    if not value >= 0:
        raise StudyError(f"{name}: must be >= 0, got {value!r}")


def launch_cost_usd(mass_kg: float, usd_per_kg: float) -> float:
    """Price of putting ``mass_kg`` in orbit at ``usd_per_kg``."""
    _non_negative("mass_kg", mass_kg)
    _non_negative("launch_usd_per_kg", usd_per_kg)
    return mass_kg * usd_per_kg


def launched_power_price(
    mass_kg: float, power_kw: float, life_years: float, usd_per_kg: float
) -> float:
    """Launch cost per kilowatt of satellite power per year of its life, $/kW/y.

    The Suncatcher paper's "launched power price": usd_per_kg x mass / (power x life).
    """
    _positive("power_kw", power_kw)
    _positive("life_years", life_years)
    return launch_cost_usd(mass_kg, usd_per_kg) / (power_kw * life_years)


def energy_cost_usd(
    power_w: float,
    years: float,
    usd_per_kwh: float,
    *,
    pue: float = 1.0,
    capacity_factor: float = 1.0,
    hours_per_year: float = HOURS_PER_YEAR,
) -> float:
    """Electricity bill of an IT load ``power_w`` running ``capacity_factor`` of the time."""
    _non_negative("power_w", power_w)
    _non_negative("years", years)
    _non_negative("electricity_usd_per_kwh", usd_per_kwh)
    if pue < 1.0:
        raise StudyError(f"pue: must be >= 1, got {pue!r}")
    if not 0.0 <= capacity_factor <= 1.0:
        raise StudyError(f"capacity_factor: must be within [0, 1], got {capacity_factor!r}")
    kwh = power_w / 1000.0 * hours_per_year * years * capacity_factor * pue
    return kwh * usd_per_kwh


def power_spend_per_kw_year(
    usd_per_kwh: float, pue: float, hours_per_year: float = HOURS_PER_YEAR
) -> float:
    """What one kilowatt of IT load costs in electricity per year, $/kW/y."""
    return energy_cost_usd(1000.0, 1.0, usd_per_kwh, pue=pue, hours_per_year=hours_per_year)


def mean_retention(loss_per_year: float, years: float, *, discrete: bool = False) -> float:
    """Mean fraction kept over ``years`` of something losing ``loss_per_year`` a year.

    ``discrete``: the yearly average (1 + r + ... + r^(n-1)) / n of whole years, as the
    McCalip calculator counts; otherwise the continuous mean of r^t over [0, years].
    """
    if not 0.0 <= loss_per_year < 1.0:
        raise StudyError(f"loss_per_year: must be within [0, 1), got {loss_per_year!r}")
    _positive("years", years)
    r = 1.0 - loss_per_year
    if discrete:
        n = round(years)
        if n < 1 or abs(n - years) > 1e-9:
            raise StudyError(f"years: a discrete mean needs whole years, got {years!r}")
        return sum(r**k for k in range(n)) / n
    if loss_per_year == 0.0:
        return 1.0
    k = -math.log(r)
    return (1.0 - math.exp(-k * years)) / (k * years)


def break_even_price(fixed_usd: float, mass_kg: float, target_usd: float) -> float:
    """Launch price p at which ``fixed_usd + p * mass_kg`` equals ``target_usd``, $/kg.

    Negative when the fixed costs alone exceed the target: no launch price breaks even.
    """
    _positive("mass_kg", mass_kg)
    return (target_usd - fixed_usd) / mass_kg
