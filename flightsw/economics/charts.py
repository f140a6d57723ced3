"""PNG charts of a study and of a lifetime run (matplotlib's Agg canvas, no global state).

* the tornado: how far each input moves the orbit/ground cost ratio;
* the break-even curve: the ratio against the launch price, one line per lifetime;
* the capacity decay of a lifetime run: capacity, working accelerators, battery and
  array over the years, and the manoeuvres and failures per month.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from flightsw.economics.sensitivity import Bar, CurvePoint
from flightsw.sim.lifetime import LifetimeResult

__all__ = ["draw_break_even", "draw_lifetime", "draw_tornado"]


def _save(fig: Figure, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(out, format="png")
    return out


def draw_tornado(bars: Sequence[Bar], base_ratio: float, title: str, path: str | Path) -> Path:
    """Horizontal bars around the base ratio, widest swing on top."""
    fig = Figure(figsize=(8.0, 0.6 * len(bars) + 1.6), dpi=110)
    ax = fig.add_subplot()
    ys = np.arange(len(bars))[::-1]
    for y, bar in zip(ys, bars, strict=True):
        for value, label, colour in ((bar.low_ratio, bar.low_label, "#4c72b0"),
                                     (bar.high_ratio, bar.high_label, "#dd8452")):
            ax.barh(y, value - base_ratio, left=base_ratio, color=colour, height=0.6)
            ax.text(value, y, f" {label} ", va="center",
                    ha="left" if value >= base_ratio else "right", fontsize=8)
    ax.axvline(base_ratio, color="k", lw=1)
    ax.axvline(1.0, color="green", lw=1, ls="--", label="parity (orbit = ground)")
    ax.set_yticks(ys, [b.name for b in bars])
    ax.set_xlabel("orbit / ground cost per million inferences")
    ax.set_title(f"{title}\nbase ratio {base_ratio:.2f}", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def draw_break_even(points: Sequence[CurvePoint], title: str, path: str | Path) -> Path:
    """Ratio against launch price (log axis), one line per lifetime, parity marked."""
    fig = Figure(figsize=(7.5, 4.5), dpi=110)
    ax = fig.add_subplot()
    for life in sorted({p.years for p in points}):
        pts = sorted((p for p in points if p.years == life), key=lambda p: p.launch_usd_per_kg)
        ax.plot([p.launch_usd_per_kg for p in pts], [p.ratio for p in pts], marker="o",
                label=f"{life:g}-year life")
    ax.axhline(1.0, color="green", ls="--", lw=1, label="parity")
    ax.set_xscale("log")
    ax.set_xlabel("launch price, $/kg")
    ax.set_ylabel("orbit / ground cost per million inferences")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def draw_lifetime(result: LifetimeResult, path: str | Path) -> Path:
    """The capacity decay of a lifetime run, with what drove it."""
    s, summ = result.series, result.summary
    t = np.asarray(s.t_years)
    fig = Figure(figsize=(9.0, 6.5), dpi=110)
    top, bottom = fig.subplots(2, 1, sharex=True)
    n_acc = summ.satellites * result.lifetime.accelerators
    top.plot(t, np.asarray(s.capacity_ops) / summ.initial_capacity_ops, label="capacity")
    top.plot(t, np.asarray(s.delivered_ops) / summ.initial_capacity_ops, label="delivered")
    top.plot(t, np.asarray(s.accelerators_alive) / n_acc, label="accelerators working")
    top.plot(t, s.battery_fraction, label="battery capacity (mean)")
    top.plot(t, s.array_fraction, label="array power (mean)")
    top.set_ylabel("fraction of the new fleet")
    top.set_ylim(0.0, 1.05)
    top.grid(alpha=0.3)
    top.legend(fontsize=8, loc="lower left")
    top.set_title(
        f"{result.scenario.name}: {summ.satellites} x {result.profile.name}, "
        f"{summ.years:.1f} years", fontsize=10
    )
    # per ~30-day bins
    step = max(1, round(30.0 / (result.scenario.step_hours / 24.0)))
    edges = np.arange(0, len(t), step)
    man = np.add.reduceat(np.asarray(s.manoeuvres), edges)
    fails = np.add.reduceat(np.asarray(s.failures), edges)
    bottom.bar(t[edges], man, width=step * result.scenario.step_hours / 8766, alpha=0.6,
               label="debris manoeuvres / month")
    ax2 = bottom.twinx()
    ax2.plot(t[edges], fails, color="#c44e52", marker=".", label="accelerator failures / month")
    bottom.set_xlabel("years")
    bottom.set_ylabel("manoeuvres")
    ax2.set_ylabel("failures")
    bottom.legend(fontsize=8, loc="upper left")
    ax2.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return _save(fig, path)
