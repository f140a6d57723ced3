"""Constellation scheduling: what nodes know of each other and where work should go."""

from flightsw.constellation.policies import (
    POLICIES,
    Candidate,
    MigrationRules,
    Peer,
    Policy,
    make_policy,
    transfer_time_s,
)

__all__ = [
    "POLICIES",
    "Candidate",
    "MigrationRules",
    "Peer",
    "Policy",
    "make_policy",
    "transfer_time_s",
]
