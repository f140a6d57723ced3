"""What a worker does with one run: simulate it and return its result as plain data.

This is the only function shipped to a worker (a local process or a Dask worker), so a
worker needs the ``flightsw`` package and the files the scenario names, nothing else. A run
that raises becomes a result with status ``failed`` and the error's type and text: it is
reported in the table, never lost, and (being a function of its inputs) not retried.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from flightsw.clock import VirtualClock
from flightsw.sim import HOST_KEYS, dumps_metrics, run_scenario, without_wall
from flightsw.sweep.grid import Run

__all__ = ["run_one"]


def run_one(run: Run) -> dict[str, Any]:
    """The result of ``run``: ids, status, error, metrics (host-measured keys set apart
    under ``host``, with the worker that ran it)."""
    clock = VirtualClock(0.0)  # host time of the run: measured, not part of the result
    t0 = clock.perf_counter()
    metrics: dict[str, Any] | None = None
    error = None
    try:
        metrics = run_scenario(run.sc, archive=False)
    except Exception as exc:  # a failed run is a result, reported in the table
        error = f"{type(exc).__name__}: {exc}"
    host: dict[str, Any] = {"worker": f"{socket.gethostname()}:{os.getpid()}",
                            "run_wall_s": clock.perf_counter() - t0}
    if metrics is not None:
        host.update({k: metrics[k] for k in HOST_KEYS if k in metrics})
    return {
        "run_id": run.run_id,
        "cell_id": run.cell_id,
        "status": "failed" if metrics is None else "ok",
        "error": error,
        # the stable form (sorted keys, 9 significant digits) travels as text
        "metrics": None if metrics is None else dumps_metrics(without_wall(metrics)),
        "host": host,
    }
