"""Every placement policy by name (the CLI's and the scenario's ``policy``)."""

from __future__ import annotations

from collections.abc import Callable

from flightsw.constellation.barrier import EquinoxPolicy
from flightsw.constellation.policies import (
    ForecastPolicy,
    GreedyEnergyPolicy,
    LeastLoadedPolicy,
    LocalPolicy,
    MigrationRules,
    Policy,
    RandomPolicy,
    RoundRobinPolicy,
)
from flightsw.constellation.priority import PriorityPolicy
from flightsw.exceptions import ConfigError

__all__ = ["POLICIES", "make_policy"]

POLICIES: dict[str, Callable[[MigrationRules | None], Policy]] = {
    "local": LocalPolicy,
    "random": RandomPolicy,
    "round-robin": RoundRobinPolicy,
    "least-loaded": LeastLoadedPolicy,
    "greedy-energy": GreedyEnergyPolicy,
    "priority": PriorityPolicy,
    "equinox": EquinoxPolicy,
    "forecast": ForecastPolicy,
}


def make_policy(name: str, rules: MigrationRules | None = None) -> Policy:
    """A policy by name; :class:`ConfigError` lists the valid names."""
    try:
        return POLICIES[name](rules)
    except KeyError:
        raise ConfigError(f"policy: {name!r} is not one of {sorted(POLICIES)}") from None
