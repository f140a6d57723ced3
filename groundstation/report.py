"""One PNG that shows how each node's mission went: battery, heat, power mode and jobs.

One row per node (title: node id and hardware profile), four panels sharing one time axis
in hours from the first sample: battery state of charge (with the profile's floor),
temperature (with its throttle and maximum), power mode (with its watts) and jobs completed
(the node's ``jobs_done`` counter, the results the ground archived, failed results marked).
Eclipses (telemetry ``sunlit`` < 0.5) are shaded grey in every panel and ground contact
(telemetry ``in_contact``) is a bar along the bottom. Like panels share one y-scale across
the rows. The drain (from the last job submission to the end of the run: no new work, the
queues empty) is shaded yellow when the ground's job table (``jobs.sqlite``, beside the
``telemetry`` archive as ``groundstation serve --archive DIR`` keeps them) says when the
last job was submitted; the archive alone cannot tell (it holds only jobs uplinked), so
without the table :attr:`ReportSummary.drain_note` says it is not determinable. Drawn with
matplotlib's Agg canvas directly (no pyplot, no global backend state).
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from flightsw.archive import ArchiveReader, node_of
from flightsw.exceptions import FlightSwError, ProtocolError
from flightsw.protocol.codec import decode
from flightsw.timeutil import format_iso
from groundstation.exceptions import ReplayError
from hardware_profiles import load_profile

__all__ = ["ReportSummary", "build_report", "last_submission", "write_report"]

ECLIPSE_COLOR = "#9aa0a6"
CONTACT_COLOR = "#8e24aa"
DRAIN_COLOR = "#f9ab00"
SAFE_MODE = "SAFE"


@dataclass
class _Series:
    node: str
    profile: str | None = None
    t: list[float] = field(default_factory=list)
    soc: list[float] = field(default_factory=list)
    temp: list[float] = field(default_factory=list)
    sunlit: list[float] = field(default_factory=list)
    mode: list[str] = field(default_factory=list)
    load: list[float] = field(default_factory=list)
    jobs_done: list[float] = field(default_factory=list)
    contact: list[float] = field(default_factory=list)  # 1 in contact, 0 not, nan unknown
    results: list[float] = field(default_factory=list)  # finish times of done results
    failed: list[float] = field(default_factory=list)  # finish times of failed results


@dataclass(frozen=True, slots=True)
class ReportSummary:
    path: Path
    nodes: list[str]
    samples: int
    results: int
    omitted_nodes: int
    drain_from: float | None = None  # the last job submission, if known and in the span
    drain_note: str = ""  # what the figure says of the drain, or why it cannot


def last_submission(archive_dir: Path) -> tuple[float | None, str]:
    """When the last job was submitted, from the ground's job table beside the archive
    (``DIR/jobs.sqlite`` for the archive ``DIR/telemetry``), and a note naming the source
    or why there is none."""
    table = archive_dir.parent / "jobs.sqlite"
    if not table.is_file():
        return None, (f"drain not determinable: no job table {table} (the archive holds "
                      "only the jobs uplinked, not when the last one was submitted)")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{table}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT max(submitted_at), count(*) FROM jobs").fetchone()
    except sqlite3.Error as exc:
        return None, f"drain not determinable: job table {table}: {exc}"
    if row is None or row[0] is None:
        return None, f"drain not determinable: no job submitted ({table})"
    return float(row[0]), f"last of {row[1]} jobs submitted at {format_iso(float(row[0]))}"


def _num(msg: dict[str, Any], key: str) -> float:
    value = msg.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return math.nan


def _collect(reader: ArchiveReader, nodes: Iterable[str] | None, start: float | None,
             end: float | None) -> dict[str, _Series]:
    series: dict[str, _Series] = {}
    topics = ["odc/sat/+/telemetry", "odc/sat/+/result", "odc/sat/+/status"]
    for rec in reader.records(start, end, topics=topics, nodes=nodes):
        try:
            msg = decode(rec.payload)
        except ProtocolError:
            continue
        if not isinstance(msg, dict):
            continue
        node = rec.node or "?"
        s = series.get(node)
        if s is None:
            s = series[node] = _Series(node)
        kind = msg.get("kind")
        if kind == "telemetry":
            t = _num(msg, "t")
            s.t.append(rec.t if math.isnan(t) else t)
            s.soc.append(_num(msg, "soc") * 100.0)
            s.temp.append(_num(msg, "temperature_c"))
            s.sunlit.append(_num(msg, "sunlit"))
            s.mode.append(SAFE_MODE if msg.get("safe_mode") is True
                          else str(msg.get("power_mode", "?")))
            s.jobs_done.append(_num(msg, "jobs_done"))
            s.load.append(_num(msg, "load_w"))
            c = msg.get("in_contact")
            s.contact.append(float(c) if isinstance(c, bool) else math.nan)
            if isinstance(msg.get("profile"), str):
                s.profile = msg["profile"]
        elif kind == "result" and msg.get("status") in ("done", "failed"):
            finished = _num(msg, "finished_at")
            when = rec.t if math.isnan(finished) or finished <= 0 else finished
            (s.results if msg["status"] == "done" else s.failed).append(when)
        elif kind == "status" and s.profile is None and isinstance(msg.get("profile"), str):
            s.profile = msg["profile"]
    return {n: s for n, s in sorted(series.items()) if s.t or s.results}


def _eclipses(t: npt.NDArray[np.float64], sunlit: npt.NDArray[np.float64]
              ) -> list[tuple[float, float]]:
    """``(start, end)`` hours of each eclipse: a sample in shadow shades until the next."""
    dark = sunlit < 0.5
    if not dark.any():
        return []
    edges = np.diff(np.concatenate([[0], dark.astype(np.int8), [0]]))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)  # index after the last dark sample
    ends = np.append(t, t[-1])  # the last dark sample shades to itself
    return [(float(t[a]), float(ends[b])) for a, b in zip(starts, stops, strict=True)]


def _limits(profile: str | None) -> tuple[float, float, float] | None:
    """(SoC floor %, throttle °C, max °C) of a packaged profile, None if unknown."""
    if not profile:
        return None
    try:
        prof = load_profile(profile)
    except FlightSwError:
        return None
    return prof.bus.dod_floor * 100.0, prof.thermal.throttle_c, prof.thermal.max_c


def _contacts(t: npt.NDArray[np.float64], contact: npt.NDArray[np.float64]
              ) -> list[tuple[float, float]]:
    """``(start, width)`` hours of each stretch in contact (a sample holds until the next)."""
    on = contact > 0.5
    if not on.any():
        return []
    edges = np.diff(np.concatenate([[0], on.astype(np.int8), [0]]))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    ends = np.append(t, t[-1])
    return [(float(t[a]), float(ends[b] - t[a])) for a, b in zip(starts, stops, strict=True)]


def _profile_watts(profile: str | None) -> dict[str, float]:
    """Compute watts of each power mode of a packaged profile ({} if unknown)."""
    if not profile:
        return {}
    try:
        prof = load_profile(profile)
    except FlightSwError:
        return {}
    return {m.name: m.watts for m in prof.compute.power_modes}


def _rank_modes(
    modes: npt.NDArray[np.str_], load: npt.NDArray[np.float64], profile: str | None = None
) -> list[str]:
    """Power modes from lowest to highest watts (the profile's, else the median load seen
    while in that mode); safe mode first."""
    watts = _profile_watts(profile)

    def key(mode: str) -> tuple[int, float, str]:
        if mode in watts:
            return (1, watts[mode], mode)
        sel = load[modes == mode]
        sel = sel[np.isfinite(sel)]
        return (0 if mode == SAFE_MODE else 1, float(np.median(sel)) if sel.size else 0.0,
                mode)

    return sorted(dict.fromkeys(modes.tolist()), key=key)


def _shade(ax: Axes, spans: list[tuple[float, float]]) -> None:
    for a, b in spans:
        ax.axvspan(a, b, color=ECLIPSE_COLOR, alpha=0.28, lw=0, zorder=0)


@dataclass(frozen=True, slots=True)
class _Bands:
    """Per time bin (hours since t0): 10th, 50th and 90th percentile over every node."""

    h: npt.NDArray[np.float64]
    soc: npt.NDArray[np.float64]  # (3, bins)
    temp: npt.NDArray[np.float64]


def _fleet_bands(reader: ArchiveReader, nodes: list[str], start: float | None,
                 end: float | None, t0: float, t1: float, bins: int = 120) -> _Bands:
    """Percentile bands of SoC and temperature over all ``nodes`` (more than the rows)."""
    edges = np.linspace(t0, max(t1, t0 + 1e-3), bins + 1)
    ts: list[float] = []
    soc: list[float] = []
    temp: list[float] = []
    for s in _collect(reader, nodes, start, end).values():
        ts += s.t
        soc += s.soc
        temp += s.temp
    t = np.asarray(ts)
    idx = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, bins - 1)
    out_soc = np.full((3, bins), np.nan)
    out_temp = np.full((3, bins), np.nan)
    soc_a, temp_a = np.asarray(soc), np.asarray(temp)
    for b in range(bins):
        sel = idx == b
        if sel.any():
            out_soc[:, b] = np.nanpercentile(soc_a[sel], [10, 50, 90])
            out_temp[:, b] = np.nanpercentile(temp_a[sel], [10, 50, 90])
    mid = (edges[:-1] + edges[1:]) / 2.0
    return _Bands((mid - t0) / 3600.0, out_soc, out_temp)


def _draw_fleet(sub: Any, bands: _Bands, n_nodes: int, t0: float) -> None:
    sub.suptitle(f"Fleet: all {n_nodes} nodes with telemetry (median, 10th-90th percentile)",
                 fontsize=12, fontweight="bold", x=0.01, ha="left")
    ax_soc, ax_temp = sub.subplots(1, 2)
    for ax, q, color, label in ((ax_soc, bands.soc, "#1a73e8", "SoC [%]"),
                                (ax_temp, bands.temp, "#d93025", "Temperature [°C]")):
        ax.fill_between(bands.h, q[0], q[2], color=color, alpha=0.25, lw=0, label="p10-p90")
        ax.plot(bands.h, q[1], color=color, lw=1.4, label="median")
        ax.set_ylabel(label)
        ax.set_xlabel(f"hours since {format_iso(t0)}")
        ax.grid(True, alpha=0.3)
    ax_soc.set_ylim(0, 100)
    ax_soc.legend(loc="lower left", fontsize=9)


def _same_scale(axes: list[Axes]) -> None:
    """One y-range for like panels of every row, so rows compare at a glance."""
    if len(axes) < 2:
        return
    lows, highs = zip(*(ax.get_ylim() for ax in axes), strict=True)
    lo, hi = min(lows), max(highs)
    for ax in axes:
        ax.set_ylim(lo, hi)


def write_report(
    reader: ArchiveReader,
    out_png: str | os.PathLike[str],
    *,
    nodes: Iterable[str] | None = None,
    start: float | None = None,
    end: float | None = None,
    max_nodes: int = 12,
    dpi: int = 110,
) -> ReportSummary:
    """Draw the report of the selected nodes (at most ``max_nodes`` rows) to ``out_png``."""
    fig, summary = build_report(reader, nodes=nodes, start=start, end=end,
                                max_nodes=max_nodes, dpi=dpi)
    out = Path(out_png)
    FigureCanvasAgg(fig)
    try:
        fig.savefig(out, format="png")
    except OSError as exc:
        raise ReplayError(f"-o {out}: cannot write: {exc}") from exc
    return ReportSummary(path=out, nodes=summary.nodes, samples=summary.samples,
                         results=summary.results, omitted_nodes=summary.omitted_nodes,
                         drain_from=summary.drain_from, drain_note=summary.drain_note)


def build_report(
    reader: ArchiveReader,
    *,
    nodes: Iterable[str] | None = None,
    start: float | None = None,
    end: float | None = None,
    max_nodes: int = 12,
    dpi: int = 110,
) -> tuple[Figure, ReportSummary]:
    """The report figure (one subfigure per node row) and what it shows (``path`` empty)."""
    if max_nodes < 1:
        raise ReplayError(f"max_nodes: must be >= 1, got {max_nodes}")
    wanted = None if nodes is None else sorted(set(nodes))
    # only read the nodes that will be drawn (a constellation may have thousands)
    candidates = sorted({
        n for topic in reader.topics()
        if topic.endswith("/telemetry") and (n := node_of(topic)) is not None
        and (wanted is None or n in wanted)
    })
    shown: list[_Series] = []
    pos = 0
    while len(shown) < max_nodes and pos < len(candidates):
        batch = candidates[pos:pos + max_nodes - len(shown)]
        pos += len(batch)
        shown += [s for s in _collect(reader, batch, start, end).values() if s.t]
    if not shown:
        raise ReplayError(f"archive {reader.directory}: no telemetry to report"
                          + ("" if wanted is None else f" for nodes {wanted}"))
    omitted = len(candidates) - pos
    t0 = min(min(s.t) for s in shown)
    t_last = max(max(s.t) for s in shown)
    drain_from, drain_note = last_submission(Path(reader.directory))
    if drain_from is not None and not t0 <= drain_from < t_last:
        drain_note += " (outside the span shown: no drain drawn)"
        drain_from = None
    elif drain_from is not None:
        drain_note += f"; drain {(t_last - drain_from) / 60:.0f} min to the end"

    mpl.rcParams["svg.fonttype"] = "none"
    rows = len(shown)
    fleet = _fleet_bands(reader, candidates, start, end, t0, t_last) if omitted else None
    # the Agg canvas is attached only to save: with it attached, every shared-axis limit
    # change would redraw the whole figure
    fig = Figure(figsize=(17.0, 1.4 + 2.75 * (rows + (fleet is not None))), dpi=dpi,
                 layout="constrained")
    fig.suptitle(
        f"Mission report: {len(shown)} node{'s' if rows > 1 else ''}, "
        f"{format_iso(t0)} to {format_iso(t_last)} ({(t_last - t0) / 3600:.1f} h)"
        + (f"; {omitted} more nodes with telemetry not shown (pick with --node)"
           if omitted else "")
        + (f"\nno job submitted after {format_iso(drain_from)}: drain "
           f"{(t_last - drain_from) / 60:.0f} min to the end (shaded yellow)"
           if drain_from is not None else ""),
        fontsize=14, fontweight="bold",
    )
    subfigs = list(fig.subfigures(rows + (fleet is not None), 1, squeeze=False)[:, 0])
    if fleet is not None:
        _draw_fleet(subfigs.pop(), fleet, len(candidates), t0)
    share: Axes | None = None
    n_results = 0
    temp_axes: list[Axes] = []
    jobs_axes: list[Axes] = []
    for i, (sub, s) in enumerate(zip(subfigs, shown, strict=True)):
        axes = sub.subplots(1, 4)
        share = share or axes[0]
        for ax in axes:
            if ax is not share:
                ax.sharex(share)
        h = (np.asarray(s.t) - t0) / 3600.0
        order = np.argsort(h, kind="stable")
        h = h[order]
        spans = _eclipses(h, np.asarray(s.sunlit)[order])
        sub.suptitle(f"{s.node}  ·  profile {s.profile or 'unknown'}  ·  {len(h)} samples",
                     fontsize=12, fontweight="bold", x=0.01, ha="left")
        sub.set_facecolor("#f7f7f9" if i % 2 else "white")

        ax_soc, ax_temp, ax_mode, ax_jobs = axes
        soc = np.asarray(s.soc)[order]
        ax_soc.plot(h, soc, color="#1a73e8", lw=1.4)
        limits = _limits(s.profile)
        if limits is not None:
            ax_soc.axhline(limits[0], color="#d93025", lw=1.0, ls="--", label="floor")
        ax_soc.set_ylim(0, 100)
        ax_soc.set_ylabel("SoC [%]")
        ax_soc.set_title(f"Battery state of charge (min {np.nanmin(soc):.0f} %)", fontsize=10)

        temp = np.asarray(s.temp)[order]
        ax_temp.plot(h, temp, color="#d93025", lw=1.4)
        if limits is not None:
            ax_temp.axhline(limits[1], color="#f29900", lw=1.0, ls="--", label="throttle")
            ax_temp.axhline(limits[2], color="#a50e0e", lw=1.0, ls="--", label="max")
        temp_axes.append(ax_temp)
        ax_temp.set_ylabel("Temperature [°C]")
        ax_temp.set_title(f"Temperature (max {np.nanmax(temp):.1f} °C)", fontsize=10)

        modes = np.asarray(s.mode)[order]
        ranked = _rank_modes(modes, np.asarray(s.load)[order], s.profile)
        levels = {m: k for k, m in enumerate(ranked)}
        ax_mode.step(h, [levels[m] for m in modes], where="post", color="#188038", lw=1.6)
        watts = _profile_watts(s.profile)
        ax_mode.set_yticks(range(len(ranked)),
                           [f"{m} ({watts[m]:g} W)" if m in watts else m for m in ranked])
        ax_mode.set_ylim(-0.5, len(ranked) - 0.5)
        ax_mode.set_ylabel("Power mode")
        ax_mode.set_title("Power mode (by watts, low to high)", fontsize=10)

        done = np.asarray(s.jobs_done)[order]
        if np.isfinite(done).any():
            ax_jobs.step(h, done, where="post", color="#9334e6", lw=1.6,
                         label="jobs_done (telemetry)")
        if s.results:
            r = np.sort((np.asarray(s.results) - t0) / 3600.0)
            ax_jobs.step(np.concatenate([[r[0]], r]), np.arange(len(r) + 1), where="post",
                         color="#e37400", lw=1.4, ls="--", label="results archived")
            n_results += len(r)
        if s.failed:
            fh = np.sort((np.asarray(s.failed) - t0) / 3600.0)
            ax_jobs.scatter(fh, np.zeros_like(fh), marker="x", color="#d93025", s=36,
                            zorder=3, clip_on=False, label="failed")
        jobs_axes.append(ax_jobs)
        contact = _contacts(h, np.asarray(s.contact)[order])
        ax_jobs.set_ylabel("Jobs completed")
        ax_jobs.set_title("Jobs completed (cumulative)", fontsize=10)
        ax_jobs.set_ylim(bottom=0)

        for ax in axes:
            _shade(ax, spans)
            if drain_from is not None:
                d = (drain_from - t0) / 3600.0
                ax.axvline(d, color=DRAIN_COLOR, lw=1.4, ls="-.", zorder=2)
                ax.axvspan(d, (t_last - t0) / 3600.0, color=DRAIN_COLOR, alpha=0.12, lw=0,
                           zorder=0, gid="drain")
            if contact:  # along the bottom, in axes coordinates: a collection, not a patch
                ax.broken_barh(contact, (0.0, 0.035), transform=ax.get_xaxis_transform(),
                               color=CONTACT_COLOR, lw=0, zorder=1)
            ax.grid(True, alpha=0.3)
            if i == rows - 1:
                ax.set_xlabel(f"hours since {format_iso(t0)}")
            else:
                ax.tick_params(labelbottom=False)
    _same_scale(temp_axes)
    _same_scale(jobs_axes)
    drain = ([Patch(color=DRAIN_COLOR, alpha=0.3, label="drain (after the last submission)")]
             if drain_from is not None else [])
    fig.legend(
        handles=[*drain,
                 Patch(color=ECLIPSE_COLOR, alpha=0.5, label="eclipse (sunlit < 0.5)"),
                 Patch(color=CONTACT_COLOR, label="ground contact"),
                 Line2D([], [], color="#d93025", lw=1.0, ls="--", label="SoC floor"),
                 Line2D([], [], color="#f29900", lw=1.0, ls="--", label="throttle"),
                 Line2D([], [], color="#a50e0e", lw=1.0, ls="--", label="max temperature"),
                 Line2D([], [], color="#9334e6", lw=1.6, label="jobs_done (telemetry)"),
                 Line2D([], [], color="#e37400", lw=1.4, ls="--", label="results archived"),
                 Line2D([], [], color="#d93025", marker="x", lw=0, label="failed job")],
        loc="outside lower center", ncols=8 + len(drain), fontsize=10, frameon=False,
    )
    if share is not None:
        share.set_xlim(0, max((t_last - t0) / 3600.0, 1e-3))
    return fig, ReportSummary(path=Path(), nodes=[s.node for s in shown],
                              samples=sum(len(s.t) for s in shown), results=n_results,
                              omitted_nodes=omitted, drain_from=drain_from,
                              drain_note=drain_note)
