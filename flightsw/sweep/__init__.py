"""Sweeps: a grid of simulation runs (scenarios x policies x seeds x overridden fields).

``flightsw sweep SWEEP.toml --out DIR`` (``docs/sweeps.md``): the sweep file
(:mod:`~flightsw.sweep.spec`) is expanded into runs (:mod:`~flightsw.sweep.grid`), each a
:func:`flightsw.sim.run_scenario` on a worker (:mod:`~flightsw.sweep.work`): local
processes or a Dask cluster (:mod:`~flightsw.sweep.executors`). Results are stored one file
per run (:mod:`~flightsw.sweep.store`), so a re-run skips what is done, and the tables are
rebuilt from them (:mod:`~flightsw.sweep.table`, :mod:`~flightsw.sweep.stats`), identical
whichever executor ran the runs.
"""

from flightsw.sweep.executors import DaskBackend, LocalBackend
from flightsw.sweep.grid import Run, expand
from flightsw.sweep.spec import SweepSpec, load_sweep, parse_sweep
from flightsw.sweep.sweep import SweepReport, make_backend, run_sweep

__all__ = [
    "DaskBackend",
    "LocalBackend",
    "Run",
    "SweepReport",
    "SweepSpec",
    "expand",
    "load_sweep",
    "make_backend",
    "parse_sweep",
    "run_sweep",
]
