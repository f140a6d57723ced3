"""Constellation scheduling: what nodes know of each other and where work should go."""

from flightsw.constellation.policies import (
    Candidate,
    MigrationRules,
    Peer,
    Policy,
    transfer_time_s,
)
from flightsw.constellation.registry import POLICIES, make_policy

__all__ = [
    "POLICIES",
    "Candidate",
    "MigrationRules",
    "Peer",
    "Policy",
    "make_policy",
    "transfer_time_s",
]
