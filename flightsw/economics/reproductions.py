"""Published analyses of orbital compute, recomputed from their own assumptions.

Why it exists: before our model says anything about simulated fleets, it must give the
published figures when fed the published assumptions. Each study below lists its inputs
(with where each comes from) and the figures it published; the functions recompute the
figures with :mod:`flightsw.economics.terms` and return both, so a test can require each
within 5 % and ``flightsw economics --reproduce`` can print the comparison.

Sources (see ``docs/economics.md``):

* Starcloud white paper, "Why we should train AI in space" (Feilden, Oltean, Johnston,
  2024; starcloudinc.github.io/wp.pdf): a 40 MW cluster over 10 years, $167M on Earth vs
  $8.2M in orbit.
* Google, "Towards a future space-based, highly scalable AI infrastructure system design"
  (arXiv 2511.19468, 2025), section 4.4 and Table 1: launched power prices of four LEO
  satellites at $3,600/kg and $200/kg, and a terrestrial power spend of $570-3,000/kW/y.
* Andrew McCalip, "Economics of orbital vs terrestrial data centers" (2025; essay.md and
  the calculator of github.com/andrewmccalip/thoughts): a 1 GW Starlink-class constellation
  over 5 years costs $11.2-74.3B against $1.8B for a gas plant; the calculator's terrestrial
  data-centre default is $15.9B (quoted by The Economist, 2 Mar 2026).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

from flightsw.economics.terms import (
    energy_cost_usd,
    launch_cost_usd,
    launched_power_price,
    mean_retention,
    power_spend_per_kw_year,
)

__all__ = [
    "STUDIES",
    "Figure",
    "mccalip_calculator",
    "mccalip_calculator_orbital_usd",
    "mccalip_essay",
    "reproduce_all",
    "starcloud_white_paper",
    "suncatcher_paper",
]


class Figure(NamedTuple):
    """One published figure and what our terms give from the study's assumptions."""

    study: str
    quantity: str
    unit: str
    published: float
    computed: float
    source: str

    @property
    def error(self) -> float:
        """Relative error of the recomputed figure."""
        return abs(self.computed - self.published) / abs(self.published)


# --------------------------------------------------------------------------- Starcloud

_SC = "Starcloud white paper (2024)"
_SC_POWER_W = 40e6  # white paper: a 40 MW cluster
_SC_YEARS = 10.0  # white paper: operated for 10 years
_SC_USD_PER_KWH = 0.04  # white paper: wholesale electricity at 4 cents/kWh
_SC_COOLING_USD = 7e6  # white paper: chillers and cooling over 10 years
_SC_BACKUP_USD = 20e6  # white paper: backup power supply
_SC_LAUNCH_MASS_KG = 100_000.0  # white paper: one 100 t Starship launch carries the module
_SC_LAUNCH_USD_PER_KG = 50.0  # white paper: $5M for that launch (it also quotes $30/kg)
_SC_ARRAY_USD_PER_W = 0.05  # white paper: $2M of solar array for 40 MW ($50/kW)
_SC_SHIELDING_USD = 1.2e6  # the $8.2M less launch and array (radiation shielding in the paper)


def starcloud_white_paper() -> list[Figure]:
    """40 MW for 10 years: $167M on the ground, $8.2M in orbit, ~20x."""
    ground = (
        energy_cost_usd(_SC_POWER_W, _SC_YEARS, _SC_USD_PER_KWH)
        + _SC_COOLING_USD
        + _SC_BACKUP_USD
    )
    orbit = (
        launch_cost_usd(_SC_LAUNCH_MASS_KG, _SC_LAUNCH_USD_PER_KG)
        + _SC_ARRAY_USD_PER_W * _SC_POWER_W
        + _SC_SHIELDING_USD
    )
    src = "starcloudinc.github.io/wp.pdf, cost comparison of a 40 MW cluster"
    return [
        Figure(_SC, "terrestrial 10-year cost", "$", 167e6, ground, src),
        Figure(_SC, "energy, 40 MW x 10 y at $0.04/kWh", "$", 140e6,
               energy_cost_usd(_SC_POWER_W, _SC_YEARS, _SC_USD_PER_KWH), src),
        Figure(_SC, "orbital 10-year cost", "$", 8.2e6, orbit, src),
        Figure(_SC, "terrestrial / orbital", "x", 20.0, ground / orbit, src + " ('20x')"),
    ]


# --------------------------------------------------------------------------- Suncatcher

_GS = "Google Suncatcher paper (2025)"
# Table 1 (mass kg, power kW, lifespan y); v2 mini power from the paper's own derivation:
# ~105 m2 of array x 22 % cells x 1.361 kW/m2 x 90 % packing
_GS_V2MINI_KW = 105.0 * 0.22 * 1.361 * 0.9
_GS_SATELLITES: tuple[tuple[str, float, float, float, float, float], ...] = (
    # name, mass kg, power kW, life y, published $/kW/y at $3,600/kg, at $200/kg
    ("Starlink v2 mini", 575.0, _GS_V2MINI_KW, 5.0, 14_700.0, 810.0),
    ("Starlink v1", 260.0, 7.0, 5.0, 26_600.0, 1_470.0),
    ("OneWeb", 150.0, 0.8, 5.0, 135_800.0, 7_500.0),
    ("Iridium NEXT", 860.0, 2.0, 12.5, 124_600.0, 6_900.0),
)
_GS_PRICES = (3600.0, 200.0)  # paper: Falcon 9 reusable today, and the "potential" price
_GS_POWER_USD_PER_KWH = (0.06, 0.25)  # paper: US ML data-centre power $0.06-0.25/kWh
_GS_PUE = (1.09, 1.4)  # paper: PUE ~1.09-1.4


def suncatcher_paper() -> list[Figure]:
    """Launched power prices (Table 1), the terrestrial spend range, and $300/kg."""
    src = "arXiv 2511.19468, section 4.4 and Table 1"
    out: list[Figure] = []
    for name, mass, kw, life, at_now, at_200 in _GS_SATELLITES:
        for price, published in zip(_GS_PRICES, (at_now, at_200), strict=True):
            out.append(
                Figure(_GS, f"launched power price, {name}, ${price:,.0f}/kg", "$/kW/y",
                       published, launched_power_price(mass, kw, life, price), src)
            )
    low = power_spend_per_kw_year(_GS_POWER_USD_PER_KWH[0], _GS_PUE[0])
    high = power_spend_per_kw_year(_GS_POWER_USD_PER_KWH[1], _GS_PUE[1])
    out.append(Figure(_GS, "terrestrial power spend, low", "$/kW/y", 570.0, low, src))
    out.append(Figure(_GS, "terrestrial power spend, high", "$/kW/y", 3000.0, high, src))
    mass, kw, life = _GS_SATELLITES[0][1:4]
    out.append(Figure(_GS, "launched power price, Starlink v2 mini, $300/kg", "$/kW/y",
                      1200.0, launched_power_price(mass, kw, life, 300.0), src))
    return out


# --------------------------------------------------------------------------- McCalip

_MC = "McCalip essay (2025)"
_MC_POWER_W = 1e9  # essay: 1 GW of nameplate power
_MC_YEARS = 5.0  # essay: 5-year period
_MC_MASS_KG = 22.2e6  # essay: 22.2 million kg to LEO for 1 GW (Starlink V2 mini class)
_MC_HARDWARE_USD = 9.0e9  # essay: $250k per satellite, ~$9/W
_MC_LAUNCH = ((2939.0, 74.3e9), (1000.0, 31.2e9), (500.0, 20.1e9), (100.0, 11.2e9))
_MC_NGCC_CAPEX_USD_PER_KW = 898.0  # essay: EIA overnight capital cost of NGCC
_MC_NGCC_CF = 0.65  # essay: 65 % capacity factor
_MC_FUEL_USD_PER_MWH = 25.0  # essay: heat rate and fuel price giving ~$25/MWh
_MC_FIXED_OM_USD_PER_KW_YEAR = 14.17  # estimate: EIA AEO 2023 combined-cycle fixed O&M
_MC_VARIABLE_OM_USD_PER_MWH = 2.67  # estimate: EIA AEO 2023 combined-cycle variable O&M


def mccalip_essay() -> list[Figure]:
    """1 GW for 5 years: $11.2-74.3B in orbit by launch price, $1.8B for a gas plant."""
    src = "github.com/andrewmccalip/thoughts essay.md, '5-Year Total System Cost'"
    out = [
        Figure(_MC, f"orbital 5-year cost at ${price:,.0f}/kg", "$", published,
               _MC_HARDWARE_USD + launch_cost_usd(_MC_MASS_KG, price), src)
        for price, published in _MC_LAUNCH
    ]
    mwh = _MC_POWER_W / 1e6 * 8760.0 * _MC_YEARS * _MC_NGCC_CF
    gas = (
        _MC_NGCC_CAPEX_USD_PER_KW * _MC_POWER_W / 1e3
        + mwh * (_MC_FUEL_USD_PER_MWH + _MC_VARIABLE_OM_USD_PER_MWH)
        + _MC_FIXED_OM_USD_PER_KW_YEAR * _MC_POWER_W / 1e3 * _MC_YEARS
    )
    out.append(Figure(_MC, "NGCC 5-year cost (build + fuel + O&M)", "$", 1.78e9, gas, src))
    return out


_MCC = "McCalip calculator (2025)"
# calculator defaults (static/js/math.js, commit 278ecbc): 1 GW for 5 years
_MCC_FACILITY_USD_PER_W = 5.25 + 3.0 + 2.5 + 1.75  # electrical, mechanical, civil, network
_MCC_TURBINE_USD_PER_KW = 1800.0  # frame CCGT
_MCC_PUE = 1.2
_MCC_CF = 0.85
_MCC_FUEL_USD_PER_MWH = 6200.0 * 4.30 / 1000.0  # heat rate 6,200 BTU/kWh x $4.30/MMBtu
# orbital side of the same defaults
_MCC_SAT_KW = 27.0
_MCC_W_PER_KG = 36.5
_MCC_USD_PER_W = 22.0
_MCC_LAUNCH_USD_PER_KG = 500.0
_MCC_SUN_FRACTION = 0.98
_MCC_CELL_LOSS = 0.025
_MCC_OPS_FRACTION = 0.01
_MCC_GPU_FAILURE = 0.09
_MCC_NRE_USD = 1e9


def mccalip_calculator() -> list[Figure]:
    """The calculator's terrestrial data centre at its defaults: $15.9B for 1 GW, 5 years.

    The orbital total of the same defaults is returned too (published only as the page's
    live output, not in print): see :func:`mccalip_calculator_orbital_usd`.
    """
    capex = (_MCC_TURBINE_USD_PER_KW * _MCC_PUE / 1000.0 + _MCC_FACILITY_USD_PER_W) * 1e9
    fuel = energy_cost_usd(1e9, 5.0, _MCC_FUEL_USD_PER_MWH / 1000.0, pue=_MCC_PUE,
                           capacity_factor=_MCC_CF)
    src = "The Economist, 2 Mar 2026, quoting the calculator (github.com/andrewmccalip/thoughts)"
    return [Figure(_MCC, "terrestrial 1 GW data centre, 5 years", "$", 15.9e9, capex + fuel, src)]


def mccalip_calculator_orbital_usd() -> float:
    """The calculator's orbital total at its defaults (sized for 1 GW average), $."""
    kept = mean_retention(_MCC_CELL_LOSS, 5.0, discrete=True) * _MCC_SUN_FRACTION
    sats = math.ceil(1e9 / kept / (_MCC_SAT_KW * 1e3))
    power_w = sats * _MCC_SAT_KW * 1e3
    hardware = _MCC_USD_PER_W * power_w
    launch = launch_cost_usd(power_w / _MCC_W_PER_KG, _MCC_LAUNCH_USD_PER_KG)
    recurring = hardware * (_MCC_OPS_FRACTION + _MCC_GPU_FAILURE) * 5.0
    return hardware + launch + recurring + _MCC_NRE_USD


STUDIES: dict[str, Callable[[], list[Figure]]] = {
    "starcloud": starcloud_white_paper,
    "suncatcher": suncatcher_paper,
    "mccalip": mccalip_essay,
    "mccalip-calculator": mccalip_calculator,
}


def reproduce_all() -> list[Figure]:
    """Every figure of every study, in the order of :data:`STUDIES`."""
    return [fig for study in STUDIES.values() for fig in study()]
