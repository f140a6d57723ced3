"""Simulation mode: every node of a constellation in one process, on virtual time.

A scenario file (:mod:`flightsw.sim.scenario`, ``docs/scenarios.md``) is resolved into a
:class:`World`, simulated by :class:`Simulation` (a discrete-event kernel over vectorised
physics, with the same onboard scheduler, placement policies and job protocol as the
emulated nodes), and measured by :func:`collect_metrics`; :func:`run_scenario` does it all
and writes ``metrics.json`` and a telemetry archive in the ground station's format.
"""

from flightsw.sim.engine import RunStats, Simulation
from flightsw.sim.metrics import HOST_KEYS, collect_metrics, dumps_metrics, without_wall
from flightsw.sim.run import ARCHIVE_SUBDIR, run_scenario
from flightsw.sim.scenario import Scenario, load_scenario, parse_scenario
from flightsw.sim.world import World, build_world

__all__ = [
    "ARCHIVE_SUBDIR",
    "HOST_KEYS",
    "RunStats",
    "Scenario",
    "Simulation",
    "World",
    "build_world",
    "collect_metrics",
    "dumps_metrics",
    "load_scenario",
    "parse_scenario",
    "run_scenario",
    "without_wall",
]
