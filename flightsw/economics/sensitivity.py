"""How the verdict moves: a tornado of one-at-a-time changes and a break-even curve.

The verdict is the ratio of the orbit's to the ground's cost per million inferences.
Each tornado bar changes one input to a low and a high value, everything else at the
study's figures; the operations measured by the simulation stay as measured except where
the bar is about them (utilisation, attrition), and a longer or shorter life keeps the
measured yearly rates (the simulation is not re-run).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from flightsw.economics.model import Operations, evaluate
from flightsw.economics.study import Study
from flightsw.economics.terms import mean_retention
from hardware_profiles import HardwareProfile

__all__ = ["Bar", "CurvePoint", "break_even_curve", "tornado"]


class Bar(NamedTuple):
    """One input varied: its low and high values and the ratio at each."""

    name: str
    low_label: str
    high_label: str
    low_ratio: float
    high_ratio: float

    @property
    def swing(self) -> float:
        return abs(self.high_ratio - self.low_ratio)


class CurvePoint(NamedTuple):
    years: float
    launch_usd_per_kg: float
    ratio: float


Variant = Callable[[Study, Operations], tuple[Study, Operations]]


def _orbit(study: Study, **update: float) -> Study:
    return study.model_copy(update={"orbit": study.orbit.model_copy(update=update)})


def _ground(study: Study, **update: float) -> Study:
    return study.model_copy(update={"ground": study.ground.model_copy(update=update)})


def _scaled_delivered(ops: Operations, factor: float) -> Operations:
    return ops._replace(delivered_fraction=ops.delivered_fraction * factor)


def _attrition(ops: Operations, years: float, rate: float) -> Operations:
    """Replace the measured attrition by ``rate``: delivered work scales with survival."""
    measured = min(max(ops.attrition_per_year, 0.0), 0.99)
    factor = mean_retention(rate, years) / mean_retention(measured, years)
    return _scaled_delivered(ops, factor)._replace(attrition_per_year=rate)


def _price(v: float) -> Variant:
    return lambda s, op: (_orbit(s, launch_usd_per_kg=v), op)


def _life(v: float) -> Variant:
    return lambda s, op: (s.model_copy(update={"years": v}), op)


def _use(v: float) -> Variant:
    return lambda s, op: (s, _scaled_delivered(op, v / op.utilisation) if op.utilisation else op)


def _attr(v: float) -> Variant:
    return lambda s, op: (s, _attrition(op, s.years, v))


def _power(v: float) -> Variant:
    return lambda s, op: (_ground(s, electricity_usd_per_kwh=v), op)


def _pue(v: float) -> Variant:
    return lambda s, op: (_ground(s, pue=v), op)


def _opex(v: float) -> Variant:
    return lambda s, op: (_orbit(s, operations_usd_per_satellite_year=v), op)


def _bus(v: float) -> Variant:
    return lambda s, op: (_orbit(s, satellite_usd=v), op)


def _bars(
    study: Study, ops: Operations, bus_usd: float | None
) -> list[tuple[str, str, str, Variant, Variant]]:
    p, y, u = study.orbit.launch_usd_per_kg, study.years, ops.utilisation
    opex = study.orbit.operations_usd_per_satellite_year
    short = max(1.0, y - 2)
    bars = [
        ("launch price", f"${p / 4:,.0f}/kg", f"${p * 2:,.0f}/kg", _price(p / 4), _price(p * 2)),
        ("lifetime", f"{short:g} y", f"{y + 2:g} y", _life(short), _life(y + 2)),
        ("utilisation (orbit)", f"{u * 0.5:.0%}", f"{min(1.0, u * 1.5):.0%}", _use(u * 0.5),
         _use(min(1.0, u * 1.5))),
        ("attrition (orbit)", "3 %/y", "20 %/y", _attr(0.03), _attr(0.20)),
        ("electricity (ground)", "$0.04/kWh", "$0.25/kWh", _power(0.04), _power(0.25)),
        ("PUE (ground)", "1.09", "1.4", _pue(1.09), _pue(1.4)),
        ("operations (orbit)", f"${opex / 2:,.0f}/sat-y", f"${opex * 2:,.0f}/sat-y",
         _opex(opex / 2), _opex(opex * 2)),
    ]
    if bus_usd is not None:
        bars.append(("satellite bus cost", f"{_k(bus_usd / 4)}", f"{_k(bus_usd * 2)}",
                     _bus(bus_usd / 4), _bus(bus_usd * 2)))
    return bars


def _k(usd: float) -> str:
    return f"${usd / 1e3:,.0f}k/sat"


def tornado(study: Study, profile: HardwareProfile, ops: Operations) -> list[Bar]:
    """Bars sorted by swing, widest first."""
    out = []
    bus = study.orbit.satellite_usd
    if bus is None and profile.cost is not None:
        bus = profile.cost.satellite_usd
    for name, lo_label, hi_label, lo, hi in _bars(study, ops, bus):
        s_lo, o_lo = lo(study, ops)
        s_hi, o_hi = hi(study, ops)
        out.append(Bar(name, lo_label, hi_label, evaluate(s_lo, profile, o_lo).ratio,
                       evaluate(s_hi, profile, o_hi).ratio))
    return sorted(out, key=lambda b: -b.swing)


def break_even_curve(
    study: Study,
    profile: HardwareProfile,
    ops: Operations,
    years: Sequence[float] | None = None,
) -> list[CurvePoint]:
    """The ratio at each of the study's launch prices, for a few lifetimes."""
    lives = list(years) if years is not None else sorted({max(1.0, study.years - 2),
                                                          study.years, study.years + 2})
    points = []
    for life in lives:
        s = study.model_copy(update={"years": life})
        for price in study.launch_prices:
            points.append(CurvePoint(life, price,
                                     evaluate(s, profile, ops, launch_usd_per_kg=price).ratio))
    return points
