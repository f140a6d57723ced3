"""The two anchors of issue #12 on hand-built situations: the static priority-based
baseline and the Equinox-style barrier cost."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from flightsw.constellation import Candidate, Peer, make_policy
from flightsw.constellation.barrier import DOD_FLOOR, EquinoxPolicy, barrier_cost
from flightsw.constellation.priority import BACKLOG_HIGH_S, SOC_LOW

NOW = 1_000_000.0


def _peer(node: str, **over: Any) -> Peer:
    fields: dict[str, Any] = {
        "node": node, "soc": 0.8, "margin_wh": 50.0, "temperature_c": 20.0,
        "throttle_c": 60.0, "queued_work_s": 0.0, "queue_depth": 0, "sunlit": 1.0,
        "next_eclipse_s": 3_000.0, "eclipse_s": 2_100.0, "ops_per_s": 1e12, "watts": 25.0,
        "heat_capacity_j_per_k": 14_400.0, "models": frozenset({"m"}),
        "link_rate_bps": 1e9, "link_latency_s": 0.01,
    }
    return Peer(**{**fields, **over})


def _here(**over: Any) -> Peer:
    return _peer("here", link_rate_bps=0.0, link_latency_s=0.0, **over)


def _job(**over: Any) -> Candidate:
    fields: dict[str, Any] = {
        "job_id": "j", "flops": 1e13, "input_bytes": 1_000_000, "model": "m",
        "model_bytes": 100_000_000, "deadline": None, "value": 1.0, "priority": 5,
        "migrations": 0,
    }
    return Candidate(**{**fields, **over})


def _choose(name: str, job: Candidate, here: Peer, peers: list[Peer]) -> str | None:
    return make_policy(name).choose(job, here, peers, NOW, np.random.default_rng(0))


# -- priority-based static ------------------------------------------------------------------


def test_priority_keeps_work_while_under_both_thresholds() -> None:
    here = _here(soc=SOC_LOW + 0.01, queued_work_s=BACKLOG_HIGH_S)
    assert _choose("priority", _job(), here, [_peer("idle")]) is None


def test_priority_sheds_past_a_threshold_to_the_least_loaded_peer_under_both() -> None:
    job = _job()
    low = _here(soc=SOC_LOW - 0.01)
    busy = _here(queued_work_s=BACKLOG_HIGH_S + 1.0)
    peers = [_peer("b", queued_work_s=100.0), _peer("a", queued_work_s=50.0),
             _peer("drained", soc=0.2), _peer("full", queued_work_s=BACKLOG_HIGH_S + 5.0)]
    assert _choose("priority", job, low, peers) == "a"
    assert _choose("priority", job, busy, peers) == "a"
    assert _choose("priority", job, low, peers[2:]) is None  # nobody under both thresholds


def test_priority_counts_only_work_at_the_jobs_priority_or_above() -> None:
    lower = (BACKLOG_HIGH_S * 2,) + (0.0,) * 9  # all of it priority 0: runs after the job
    here = _here(queued_work_s=BACKLOG_HIGH_S * 2, work_by_priority=lower)
    assert _choose("priority", _job(priority=5), here, [_peer("idle")]) is None


# -- Equinox-style barrier cost -----------------------------------------------------------


def test_barrier_cost_is_zero_when_full_and_cool_and_unbounded_at_the_limits() -> None:
    assert barrier_cost(1.0, 0.0, 60.0, 0.0) == 0.0
    assert barrier_cost(0.65, 0.0, 60.0, 0.0) == pytest.approx(-math.log(0.5))
    assert barrier_cost(DOD_FLOOR, 0.0, 60.0, 0.0) > 10.0
    assert barrier_cost(1.0, 59.999, 60.0, 0.0) > 10.0
    assert barrier_cost(1.0, 0.0, 60.0, 1200.0) == pytest.approx(2.0)  # 600 s per unit
    # monotone in each pressure
    assert barrier_cost(0.5, 30.0, 60.0, 0.0) > barrier_cost(0.6, 30.0, 60.0, 0.0)
    assert barrier_cost(0.6, 40.0, 60.0, 0.0) > barrier_cost(0.6, 30.0, 60.0, 0.0)


def test_equinox_moves_to_the_cheapest_peer_only_for_a_clear_gain() -> None:
    job = _job()
    here = _here(soc=0.45)  # battery -ln(0.214) = 1.54, plus heat -ln(40/60) = 0.41
    cheap, dear = _peer("cheap", soc=0.95), _peer("dear", soc=0.47)
    assert _choose("equinox", job, here, [dear, cheap]) == "cheap"
    assert _choose("equinox", job, here, [dear]) is None  # 1.82 is not 0.25 below 1.95
    assert _choose("equinox", job, _here(soc=0.95), [cheap]) is None


def test_equinox_never_moves_a_job_to_a_peer_that_would_make_it_late() -> None:
    job = _job(deadline=NOW + 5.0)  # 10 s of work at the peer
    assert _choose("equinox", job, _here(soc=0.4), [_peer("cheap", soc=1.0)]) is None


def test_equinox_gate_sheds_low_value_work_first_as_the_battery_drains() -> None:
    gate = EquinoxPolicy.gate
    typical = 0.05
    assert gate(0.01, typical, 0.95, 20.0, 60.0)  # plenty of charge: everything runs
    assert not gate(0.01, typical, 0.4, 20.0, 60.0)  # near the floor: low value waits ...
    assert gate(0.2, typical, 0.4, 20.0, 60.0)  # ... high value still runs
    assert not gate(0.2, typical, DOD_FLOOR + 1e-9, 20.0, 60.0)  # at the floor nothing does
    assert not gate(0.05, typical, 0.95, 59.99, 60.0)  # at the throttle point neither
