"""Multi-year fluid simulation of a fleet's ageing: capacity, energy and inferences over time.

``load_lifetime_scenario`` reads a lifetime scenario TOML file, ``run_lifetime`` runs it;
:mod:`.budget` holds the orbit-averaged physics of one step. See ``docs/economics.md``.
"""

from flightsw.sim.lifetime.run import (
    LifetimeResult,
    LifetimeSeries,
    LifetimeSummary,
    aged_lifetime,
    run_lifetime,
)
from flightsw.sim.lifetime.scenario import (
    LifetimeScenario,
    load_lifetime_scenario,
    parse_lifetime_scenario,
)

__all__ = [
    "LifetimeResult",
    "LifetimeScenario",
    "LifetimeSeries",
    "LifetimeSummary",
    "aged_lifetime",
    "load_lifetime_scenario",
    "parse_lifetime_scenario",
    "run_lifetime",
]
