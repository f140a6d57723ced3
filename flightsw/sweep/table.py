"""The tables of a sweep: every run (``runs.parquet``) and every cell (``summary.*``).

Both are built from the stored run results in grid order, so they are a function of the
sweep file and the results alone: byte for byte the same whichever executor ran the runs.
Host-measured figures (``wall_s``, the worker, the run's wall time) are not in them; they
go to ``host.csv``.

``runs.parquet``: one row per run: ``run_id``, ``cell_id``, ``scenario`` (its name),
``scenario_file`` (as the sweep file gives it), ``policy``, one
``override.<path>`` column per overridden field, ``seed``, ``status`` (``ok``, ``failed``:
the run raised, ``not_run``: no worker returned it), ``error``, then every metric of
``metrics.json`` (nested tables flattened: ``failed_by_reason.node_crash``,
``per_class.digits.latency_p50_s``; a failure reason a run did not see counts 0).

``summary.*``: one row per cell with run counts and, for each headline metric, the mean
over the seeds whose run gave a value, its count and the two-sided Student-t interval.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flightsw.exceptions import ConfigError
from flightsw.sweep.grid import Run
from flightsw.sweep.stats import mean_interval
from flightsw.sweep.store import write_atomic

__all__ = ["HEAD", "run_rows", "summary_markdown", "summary_rows", "write_csv", "write_parquet"]

#: The leading columns of the run table, before the overrides.
HEAD = ("run_id", "cell_id", "scenario", "scenario_file", "policy")
#: Columns of text even when every value is null.
TEXT = ("error",)
_COUNTS = "failed_by_reason."


def _flatten(table: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten(value, f"{name}.", out)
        else:
            out[name] = value


def run_rows(runs: Sequence[Run], results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per run, in grid order; ``results`` maps run ids to stored results (or to
    ``{"status": "not_run", "error": ...}``)."""
    rows: list[dict[str, Any]] = []
    metric_names: set[str] = set()
    for run in runs:
        res = results[run.run_id]
        row: dict[str, Any] = {"run_id": run.run_id, "cell_id": run.cell_id,
                               "scenario": run.sc.name, "scenario_file": run.scenario,
                               "policy": run.policy}
        for path, value in run.overrides:
            row[f"override.{path}"] = value
        row.update(seed=run.seed, status=res["status"], error=res.get("error"))
        if res.get("metrics"):
            flat: dict[str, Any] = {}
            _flatten(json.loads(res["metrics"]), "", flat)
            for key in ("scenario", "policy", "seed"):  # the run's keys, already columns
                flat.pop(key, None)
            metric_names.update(flat)
            row["_metrics"] = flat
        rows.append(row)
    for row in rows:
        flat = row.pop("_metrics", None)
        for name in sorted(metric_names):
            if flat is None:
                row[name] = None
            else:
                row[name] = flat.get(name, 0 if name.startswith(_COUNTS) else None)
    return rows


def summary_rows(rows: Sequence[dict[str, Any]], metrics: Sequence[str],
                 confidence: float) -> list[dict[str, Any]]:
    """One row per cell (in grid order) over the run rows."""
    if rows and any(r["status"] == "ok" for r in rows):
        for i, m in enumerate(metrics):
            vals = [r.get(m) for r in rows if r.get(m) is not None]
            if m not in rows[0] or any(isinstance(v, bool) or not isinstance(v, (int, float))
                                       for v in vals):
                numeric = sorted(k for k, v in rows[0].items() if k not in HEAD
                                 and isinstance(v, (int, float)) and not isinstance(v, bool))
                raise ConfigError(f"summary.metrics[{i}]: {m!r} is not a numeric metric "
                                  f"(the runs are stored; fix the name and re-run; "
                                  f"metrics: {', '.join(numeric)})")
    cells: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        cells.setdefault(r["cell_id"], []).append(r)
    pct = f"ci{round(confidence * 100):d}"
    out: list[dict[str, Any]] = []
    for cell_id, members in cells.items():
        first = members[0]
        row = {k: v for k, v in first.items() if k in HEAD or k.startswith("override.")}
        del row["run_id"]
        row["cell_id"] = cell_id
        statuses = [m["status"] for m in members]
        row.update(runs=len(members), ok=statuses.count("ok"),
                   failed=statuses.count("failed"), not_run=statuses.count("not_run"))
        for m in metrics:
            got = (r.get(m) for r in members if r["status"] == "ok")
            values = [float(v) for v in got if v is not None and math.isfinite(v)]
            iv = mean_interval(values, confidence)
            row[f"{m}.n"] = iv.n
            row[f"{m}.mean"] = iv.mean
            row[f"{m}.{pct}_low"] = iv.low
            row[f"{m}.{pct}_high"] = iv.high
        out.append(row)
    return out


def _column(values: list[Any], text: bool = False) -> tuple[str, list[Any]]:
    """The Arrow type (by name) of a column and its values: a type from the set of its
    values, never their order: bool, int64, float64, or string (tables and lists as
    canonical JSON)."""
    present = [v for v in values if v is not None]
    if text and not present:
        return "string", values
    if present and all(isinstance(v, bool) for v in present):
        return "bool_", values
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "int64", values
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return "float64", [None if v is None else float(v) for v in values]
    return "string", [
        None if v is None else v if isinstance(v, str)
        else json.dumps(v, sort_keys=True, separators=(",", ":")) for v in values
    ]


def write_parquet(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Write ``rows`` (same keys, in order) to ``path`` atomically, as Parquet."""
    try:
        import pyarrow as pa  # noqa: PLC0415  (optional: the sweep extra)
        import pyarrow.parquet as pq  # noqa: PLC0415
    except ImportError as exc:
        raise ConfigError("out: writing Parquet needs pyarrow (pip install 'flightsw[sweep]')"
                          ) from exc
    names = list(rows[0]) if rows else []
    arrays = []
    for name in names:
        typ, vals = _column([r[name] for r in rows], text=name in TEXT)
        arrays.append(pa.array(vals, type=getattr(pa, typ)()))
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_arrays(arrays, names=names), buf)
    write_atomic(path, buf.getvalue())


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return v
    return json.dumps(v, sort_keys=True, separators=(",", ":"))


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if rows:
        w.writerow(list(rows[0]))
        for r in rows:
            w.writerow([_text(v) for v in r.values()])
    write_atomic(path, buf.getvalue().encode())


def summary_markdown(name: str, cells: Sequence[dict[str, Any]], metrics: Sequence[str],
                     confidence: float) -> str:
    """A readable table: each headline metric as ``mean ± half-width`` over the seeds."""
    pct = f"ci{round(confidence * 100):d}"
    keys = [k for k in (cells[0] if cells else {}) if k.startswith("override.")]
    head = ["scenario", "policy", *(k.removeprefix("override.") for k in keys), "ok/runs",
            *metrics]
    lines = [f"# Sweep {name}", "",
             f"Mean over seeds ± half-width of the {confidence:.0%} Student-t interval "
             "(runs that failed are left out of the mean).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in cells:
        cols = [c["scenario"], c["policy"], *(_text(c[k]) for k in keys),
                f"{c['ok']}/{c['runs']}"]
        for m in metrics:
            mean, low, high = c[f"{m}.mean"], c[f"{m}.{pct}_low"], c[f"{m}.{pct}_high"]
            if mean is None:
                cols.append("-")
            elif low is None or high is None:
                cols.append(f"{mean:.4g}")
            else:
                cols.append(f"{mean:.4g} ± {(high - low) / 2:.2g}")
        lines.append("| " + " | ".join(cols) + " |")
    return "\n".join(lines) + "\n"
