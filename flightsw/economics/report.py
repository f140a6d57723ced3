"""A study's verdict as a readable table and as JSON (the same figures in both)."""

from __future__ import annotations

from typing import Any

from flightsw.economics.model import Side, Verdict
from flightsw.economics.reproductions import Figure
from flightsw.economics.sensitivity import Bar, CurvePoint
from flightsw.sim.lifetime import LifetimeResult

__all__ = ["format_lifetime", "format_reproductions", "format_verdict", "verdict_dict"]


def _money(x: float) -> str:
    for factor, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= factor:
            return f"${x / factor:,.2f}{suffix}"
    return f"${x:,.2f}"


def format_verdict(v: Verdict) -> str:
    """Line items side by side, unit costs, operations and the verdict."""
    o, g = v.orbit, v.ground
    names = list(dict.fromkeys([*o.items, *g.items]))
    lines = [
        v.title,
        f"profile {v.profile}, {v.years:g} years, launch ${v.launch_usd_per_kg:,.0f}/kg",
        "",
        f"{'line item':<22}{'orbit':>16}{'ground':>16}",
    ]
    for name in names:
        a = _money(o.items[name]) if name in o.items else "-"
        b = _money(g.items[name]) if name in g.items else "-"
        lines.append(f"{name:<22}{a:>16}{b:>16}")
    lines += [
        f"{'total':<22}{_money(o.total_usd):>16}{_money(g.total_usd):>16}",
        f"{'inferences':<22}{o.inferences:>16.3e}{g.inferences:>16.3e}",
        f"{'compute energy, kWh':<22}{o.compute_kwh:>16.3e}{g.compute_kwh:>16.3e}",
        f"{'$ / M inferences':<22}{o.usd_per_million_inferences:>16.3f}"
        f"{g.usd_per_million_inferences:>16.3f}",
        f"{'$ / kWh of compute':<22}{o.usd_per_kwh:>16.3f}{g.usd_per_kwh:>16.3f}",
        "",
    ]
    ops = v.operations
    lines += [
        f"operations ({ops.source}): capacity kept {ops.capacity_fraction:.1%}, "
        f"availability {ops.availability:.2%}, utilisation {ops.utilisation:.1%}, "
        f"attrition {ops.attrition_per_year:.1%}/y, replacements {ops.replacement_launches}",
        f"verdict: {v.cheaper} is cheaper; orbit/ground cost per inference = {v.ratio:.2f}",
    ]
    be = v.break_even_launch_usd_per_kg
    lines.append(
        f"break-even launch price: ${be:,.0f}/kg" if be >= 0 else
        "break-even launch price: none (the orbit costs more than the ground even with "
        f"free launch: its other costs exceed parity by {_money(v.free_launch_gap_usd)})"
    )
    return "\n".join(lines)


def _side(s: Side) -> dict[str, Any]:
    return {
        "items_usd": s.items,
        "total_usd": s.total_usd,
        "inferences": s.inferences,
        "compute_kwh": s.compute_kwh,
        "usd_per_million_inferences": s.usd_per_million_inferences,
        "usd_per_kwh": s.usd_per_kwh,
    }


def verdict_dict(
    v: Verdict, bars: list[Bar] | None = None, curve: list[CurvePoint] | None = None
) -> dict[str, Any]:
    """Everything of :func:`format_verdict`, plus the sensitivity, as plain JSON types."""
    out: dict[str, Any] = {
        "title": v.title,
        "profile": v.profile,
        "years": v.years,
        "launch_usd_per_kg": v.launch_usd_per_kg,
        "operations": v.operations._asdict(),
        "orbit": _side(v.orbit),
        "ground": _side(v.ground),
        "ratio": v.ratio,
        "cheaper": v.cheaper,
        "launched_mass_kg": v.launched_mass_kg,
        "break_even_launch_usd_per_kg": v.break_even_launch_usd_per_kg,
        "free_launch_gap_usd": v.free_launch_gap_usd,
    }
    if bars is not None:
        out["tornado"] = [b._asdict() for b in bars]
    if curve is not None:
        out["break_even_curve"] = [p._asdict() for p in curve]
    return out


def format_reproductions(figures: list[Figure]) -> str:
    """One line per published figure: published, ours, error."""
    lines = [f"{'study':<32}{'figure':<56}{'published':>14}{'ours':>14}{'error':>8}"]
    for f in figures:
        lines.append(f"{f.study:<32}{f.quantity:<56}{f.published:>14.4g}{f.computed:>14.4g}"
                     f"{f.error:>8.1%}")
    worst = max(f.error for f in figures)
    lines.append(f"{len(figures)} figures, worst error {worst:.1%}")
    return "\n".join(lines)


def format_lifetime(result: LifetimeResult) -> str:
    """The run's summary and, year by year, capacity, energy and inferences delivered."""
    s, summ = result.series, result.summary
    lines = [f"{result.scenario.name}: {summ.satellites} x {result.profile.name}, "
             f"{summ.years:.2f} years"]
    for key, value in summ.as_dict().items():
        lines.append(f"  {key:<32} {value:.6g}" if isinstance(value, float)
                     else f"  {key:<32} {value}")
    lines.append(f"{'year':>5}{'capacity':>10}{'sats':>7}{'accel.':>8}{'battery':>9}"
                 f"{'array':>7}{'manoeuvres':>12}{'failures':>10}{'launches':>10}"
                 f"{'compute MWh':>13}{'inferences':>12}")
    years = int(max(s.t_years)) + 1 if s.t_years else 0
    for y in range(years):
        idx = [i for i, t in enumerate(s.t_years) if y <= t < y + 1]
        if not idx:
            continue
        cap = sum(s.capacity_ops[i] for i in idx) / len(idx) / summ.initial_capacity_ops
        last = idx[-1]
        lines.append(
            f"{y + 1:>5}{cap:>10.1%}{s.satellites_alive[last]:>7}{s.accelerators_alive[last]:>8}"
            f"{s.battery_fraction[last]:>9.1%}{s.array_fraction[last]:>7.1%}"
            f"{sum(s.manoeuvres[i] for i in idx):>12}{sum(s.failures[i] for i in idx):>10}"
            f"{sum(s.launches[i] for i in idx):>10}"
            f"{sum(s.compute_kwh[i] for i in idx) / 1e3:>13.4g}"
            f"{sum(s.inferences[i] for i in idx):>12.4g}"
        )
    return "\n".join(lines)
