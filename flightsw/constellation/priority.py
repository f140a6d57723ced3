"""A static priority-based baseline: the comparison Equinox and Phoenix measure against.

Static priorities and fixed resource thresholds, no forecast: the onboard queue runs by
priority (the shared core's order), and a considered job moves only when this node is past a
fixed threshold, either battery below ``SOC_LOW`` or more than ``BACKLOG_HIGH_S`` of work at
the job's priority or above, to the linked peer under both thresholds with the least work
at that priority (name order breaks ties). It shares the trigger, admission and floor with
every other policy; only the placement is static.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from flightsw.constellation.policies import Candidate, Peer, Policy, affordable

__all__ = ["BACKLOG_HIGH_S", "SOC_LOW", "PriorityPolicy"]

SOC_LOW = 0.5  # below this state of charge a node sheds work to its neighbours
BACKLOG_HIGH_S = 600.0  # above this much work at a job's priority a node sheds it


def _ahead_s(job: Candidate, p: Peer) -> float:
    """Work that runs before ``job`` at ``p`` (at its priority or above)."""
    if not p.work_by_priority:
        return p.queued_work_s
    return p.running_s + sum(p.work_by_priority[job.priority:])


class PriorityPolicy(Policy):
    """Fixed thresholds decide when to shed, and to whom (see the module docstring)."""

    name = "priority"

    def choose(self, job: Candidate, here: Peer, peers: Sequence[Peer], now: float,
               rng: np.random.Generator) -> str | None:
        if here.soc >= SOC_LOW and _ahead_s(job, here) <= BACKLOG_HIGH_S:
            return None
        ok = [p for p in self.linked(peers)
              if p.soc >= SOC_LOW and _ahead_s(job, p) <= BACKLOG_HIGH_S and affordable(job, p)]
        if not ok:
            return None
        return min(ok, key=lambda p: (_ahead_s(job, p), p.node)).node
