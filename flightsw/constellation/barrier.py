"""Equinox-style scheduling: one barrier cost of execution per node (a baseline).

After Equinox (Erol and Mahajan, arXiv 2604.19958), implemented from the paper's
description, not its code: a node compresses its battery charge, thermal headroom and queue
backlog into one state-dependent marginal cost of execution, built from barrier functions
that rise without bound as the state nears a safety limit. The cost does two things:

* a task executes only when its value exceeds the current cost (value-ordered shedding, with
  no priority rule of its own): here, a queued job waits while its value per second of work,
  relative to the node's typical job, is below the cost (:meth:`EquinoxPolicy.gate`);
* a task moves over an inter-satellite link when a neighbour's cost is below the local one
  (load balancing with no queue exchange): here, the linked peer of lowest cost takes a
  considered job when its cost, plus a hysteresis, is below the local cost.

Everything else is shared with the other policies (the trigger, the receiving node's
admission, the floor, the migration protocol), so the comparison stays honest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from flightsw.constellation.policies import (
    Candidate,
    Peer,
    Policy,
    affordable,
    finish_time_s,
    transfer_time_s,
)

__all__ = ["BACKLOG_SCALE_S", "DOD_FLOOR", "VALUE_PER_COST", "EquinoxPolicy", "barrier_cost"]

DOD_FLOOR = 0.3  # the floor the barrier guards (every profile shipped uses 30 %)
BACKLOG_SCALE_S = 600.0  # queued seconds worth one unit of cost
THERMAL_REF_C = 0.0  # temperature at which the thermal term is zero headroom cost
_HYSTERESIS = 0.25  # a move needs the peer's cost this much below the local cost
#: the gate's exchange rate between cost and value: at half the battery headroom (cost ln 2)
#: a job runs if its value per second is at least 0.17 of the node's typical job's
VALUE_PER_COST = 0.25


def _barrier(headroom: float) -> float:
    """-ln of the remaining share of a resource (0 when all of it is left, unbounded at 0)."""
    return -math.log(max(headroom, 1e-12)) if headroom < 1.0 else 0.0


def barrier_cost(soc: float, temperature_c: float, throttle_c: float, backlog_s: float) -> float:
    """The node's marginal cost of execution: battery barrier + thermal barrier + backlog."""
    battery = _barrier((soc - DOD_FLOOR) / (1.0 - DOD_FLOOR))
    thermal = _barrier((throttle_c - temperature_c) / max(throttle_c - THERMAL_REF_C, 1e-6))
    return battery + thermal + backlog_s / BACKLOG_SCALE_S


def peer_cost(p: Peer) -> float:
    return barrier_cost(p.soc, p.temperature_c, p.throttle_c, p.queued_work_s)


class EquinoxPolicy(Policy):
    """Lowest barrier cost wins; a job runs only when its value beats the local cost."""

    name = "equinox"

    def choose(self, job: Candidate, here: Peer, peers: Sequence[Peer], now: float,
               rng: np.random.Generator) -> str | None:
        local = peer_cost(here)
        best: tuple[float, str] | None = None
        for p in self.linked(peers):
            if job.deadline is not None and now + finish_time_s(job, p, here=False) > job.deadline:
                continue
            if not affordable(job, p):
                continue
            c = peer_cost(p) + transfer_time_s(job, p) / BACKLOG_SCALE_S
            if best is None or (c, p.node) < best:
                best = (c, p.node)
        if best is None or best[0] > local - _HYSTERESIS:
            return None
        return best[1]

    @staticmethod
    def gate(value_per_s: float, typical_value_per_s: float, soc: float, temperature_c: float,
             throttle_c: float) -> bool:
        """Run a job now? Its value per second of work, relative to the node's typical job,
        must exceed the node's barrier cost from battery and heat (the queue is what the job
        waits in, so it does not price the job itself)."""
        cost = barrier_cost(soc, temperature_c, throttle_c, 0.0)
        return value_per_s >= typical_value_per_s * VALUE_PER_COST * cost
