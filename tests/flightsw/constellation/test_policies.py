"""Migration policies on hand-built situations."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest

from flightsw.constellation import (
    POLICIES,
    Candidate,
    MigrationRules,
    Peer,
    Policy,
    make_policy,
    transfer_time_s,
)
from flightsw.exceptions import ConfigError

NOW = 1_000_000.0
RATE = 1e9  # bps: inputs (1 MB) take 8 ms, the model (100 MB) 0.8 s
SLOW = 1e7  # bps: the model takes 80 s


def _peer(node: str, **over: Any) -> Peer:
    """A healthy node running a 1e13-FLOP job in 10 s at 25 W (250 J, 0.069 Wh)."""
    fields: dict[str, Any] = {
        "node": node, "soc": 0.8, "margin_wh": 50.0, "temperature_c": 20.0,
        "throttle_c": 60.0, "queued_work_s": 0.0, "queue_depth": 0, "sunlit": 1.0,
        "next_eclipse_s": 3_000.0, "eclipse_s": 2_100.0, "ops_per_s": 1e12, "watts": 25.0,
        "heat_capacity_j_per_k": 14_400.0, "models": frozenset({"m"}),
        "link_rate_bps": RATE, "link_latency_s": 0.01,
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


def _choose(policy: Policy, job: Candidate, here: Peer, peers: list[Peer], seed: int = 0) -> Any:
    return policy.choose(job, here, peers, NOW, np.random.default_rng(seed))


# -- registry and shared rules -----------------------------------------------------------


def test_make_policy_by_name() -> None:
    assert sorted(POLICIES) == [
        "equinox", "forecast", "greedy-energy", "least-loaded", "local", "priority", "random",
        "round-robin",
    ]
    for name in POLICIES:
        policy = make_policy(name)
        assert policy.name == name and policy.rules == MigrationRules()
    rules = MigrationRules(max_migrations=5, min_gain_s=1.0)
    assert make_policy("forecast", rules).rules is rules


def test_unknown_policy_lists_the_valid_names() -> None:
    want = "policy: 'best' is not one of " + str(sorted(POLICIES))
    with pytest.raises(ConfigError, match=re.escape(want)):
        make_policy("best")


def test_transfer_time_counts_the_model_only_if_the_peer_lacks_it() -> None:
    job = _job()
    has = _peer("a", link_rate_bps=SLOW, link_latency_s=0.05)
    lacks = has._replace(models=frozenset({"other"}))
    assert transfer_time_s(job, has) == pytest.approx(0.05 + 8 * 1e6 / SLOW)
    assert transfer_time_s(job, lacks) == pytest.approx(0.05 + 8 * (1e6 + 1e8) / SLOW)
    assert transfer_time_s(job, has._replace(link_rate_bps=0.0)) == math.inf


def test_should_consider_trigger() -> None:
    policy = make_policy("forecast")
    idle = _here()
    assert not policy.should_consider(_job(), idle, NOW)
    assert policy.should_consider(_job(), _here(queued_work_s=31.0), NOW)  # waits long
    assert not policy.should_consider(_job(), _here(queued_work_s=29.0), NOW)
    assert policy.should_consider(_job(deadline=NOW + 5.0), idle, NOW)  # late (needs 10 s)
    assert not policy.should_consider(_job(deadline=NOW + 11.0), idle, NOW)
    assert policy.should_consider(_job(), _here(margin_wh=0.01), NOW)  # cannot pay here
    assert policy.should_consider(_job(), _here(temperature_c=59.99), NOW)  # too hot here
    assert policy.should_consider(_job(), _here(safe_mode=True), NOW)
    # a job that has moved max_migrations times stays put, whatever happens
    assert not policy.should_consider(_job(migrations=2, deadline=NOW), _here(margin_wh=0), NOW)
    assert not make_policy("local").should_consider(_job(deadline=NOW), _here(), NOW)


# -- baselines ---------------------------------------------------------------------------


def _mixed_peers() -> list[Peer]:
    return [
        _peer("a"), _peer("b"),
        _peer("unlinked", link_rate_bps=0.0),
        _peer("safe", safe_mode=True, soc=1.0, queued_work_s=0.0),
    ]


def test_local_never_moves() -> None:
    policy = make_policy("local")
    here = _here(queued_work_s=1e6, margin_wh=0.0)
    assert _choose(policy, _job(deadline=NOW + 1), here, _mixed_peers()) is None


def test_random_picks_linked_peers_only() -> None:
    policy = make_policy("random")
    rng = np.random.default_rng(3)
    picks = [policy.choose(_job(), _here(), _mixed_peers(), NOW, rng) for _ in range(200)]
    assert set(picks) == {"a", "b"}
    again = np.random.default_rng(3)
    assert picks == [policy.choose(_job(), _here(), _mixed_peers(), NOW, again)
                     for _ in range(200)]
    assert _choose(policy, _job(), _here(), _mixed_peers()[2:]) is None


def test_round_robin_cycles_linked_peers_per_node() -> None:
    policy = make_policy("round-robin")
    peers = [_peer("c"), *_mixed_peers()]
    got = [_choose(policy, _job(), _here(), peers) for _ in range(5)]
    assert got == ["a", "b", "c", "a", "b"]
    other = _peer("other", link_rate_bps=0.0)
    assert _choose(policy, _job(), other, peers) == "a"  # its own counter
    assert _choose(policy, _job(), _here(), _mixed_peers()[2:]) is None


def test_least_loaded_never_moves_to_a_more_loaded_peer() -> None:
    policy = make_policy("least-loaded")
    here = _here(queued_work_s=100.0)
    peers = [_peer(f"p{w}", queued_work_s=float(w)) for w in (10, 50, 100, 200, 300)]
    load = {p.node: p.queued_work_s for p in peers}
    rng = np.random.default_rng(1)
    picks = [policy.choose(_job(), here, peers, NOW, rng) for _ in range(300)]
    moved = [p for p in picks if p is not None]
    assert moved and all(load[p] < 100.0 for p in moved)
    assert set(moved) == {"p10", "p50"} and None in picks
    heavy = [p for p in peers if p.queued_work_s >= 100.0]
    assert all(_choose(policy, _job(), here, heavy, seed=s) is None for s in range(50))
    assert _choose(policy, _job(), here, [_peer("x", queued_work_s=1.0)]) == "x"
    assert _choose(policy, _job(), here, [_peer("x", link_rate_bps=0.0)]) is None


def test_greedy_energy_prefers_sunlit_then_charge() -> None:
    policy = make_policy("greedy-energy")
    dark_full = _peer("dark-full", sunlit=0.0, soc=0.99)
    lit_half = _peer("lit-half", sunlit=1.0, soc=0.5)
    lit_high = _peer("lit-high", sunlit=1.0, soc=0.95)
    safe_best = _peer("safe", sunlit=1.0, soc=1.0, safe_mode=True)
    here_dark = _here(sunlit=0.0, soc=0.9)
    assert _choose(policy, _job(), here_dark, [dark_full, lit_half]) == "lit-half"
    here_lit = _here(sunlit=1.0, soc=0.9)
    assert _choose(policy, _job(), here_lit, [dark_full, lit_half, safe_best]) is None
    assert _choose(policy, _job(), here_lit, [dark_full, lit_half, lit_high]) == "lit-high"
    assert _choose(policy, _job(), here_dark, [dark_full._replace(soc=0.5)]) is None


# -- forecast ------------------------------------------------------------------------------


def test_forecast_moves_a_job_that_would_be_late_here() -> None:
    policy = make_policy("forecast")
    here = _here(queued_work_s=100.0)  # would finish at +110 s
    job = _job(deadline=NOW + 60.0)
    fast = _peer("fast")  # ~10.02 s
    busy = _peer("busy", queued_work_s=55.0)  # ~65 s: late there too
    assert _choose(policy, job, here, [busy, fast]) == "fast"
    assert _choose(policy, job, here, [busy]) is None  # no peer meets the deadline


def test_forecast_refuses_peers_that_cannot_afford_the_job() -> None:
    policy = make_policy("forecast")
    here = _here(queued_work_s=100.0)
    job = _job(deadline=NOW + 60.0)
    poor = _peer("poor", margin_wh=0.05)  # the job needs 0.069 Wh
    hot = _peer("hot", temperature_c=59.99)  # +0.017 K passes the throttle
    safe = _peer("safe", safe_mode=True)
    far = _peer("far", link_rate_bps=0.0)
    assert _choose(policy, job, here, [poor, hot, safe, far]) is None
    ok = _peer("ok", queued_work_s=20.0)
    assert _choose(policy, job, here, [poor, hot, safe, far, ok]) == "ok"


def test_forecast_counts_the_model_transfer() -> None:
    policy = make_policy("forecast")
    here = _here(queued_work_s=100.0)
    lacks = _peer("lacks", models=frozenset(), link_rate_bps=SLOW)  # 80.8 s transfer + 10 s
    has = _peer("has", queued_work_s=30.0, link_rate_bps=SLOW)  # 0.8 s + 30 s + 10 s
    job = _job(deadline=NOW + 60.0)
    assert _choose(policy, job, here, [lacks, has]) == "has"
    assert _choose(policy, job, here, [lacks]) is None
    # without a deadline: 90.8 s there against 110 s here is under the 20 % hysteresis, while
    # the same peer holding the model (10.8 s) is a clear gain
    assert _choose(policy, _job(), here, [lacks]) is None
    assert _choose(policy, _job(), here, [lacks._replace(models=frozenset({"m"}))]) \
        == "lacks"


@pytest.mark.parametrize(
    ("here_queue", "peer_queue", "moves"),
    [
        (40.0, 38.0, False),  # 50 s vs 48 s: gain 2 s < 5 s
        (40.0, 30.0, False),  # 50 s vs 40 s: gain 10 s, just under 20 % of 50 s
        (40.0, 25.0, True),  # gain 15 s
        (10.0, 6.0, False),  # 20 s vs 16 s: 20 % but under 5 s
        (990.0, 840.0, False),  # gain 150 s < 20 % of 1000 s
        (990.0, 780.0, True),  # gain 210 s
    ],
)
def test_forecast_hysteresis(here_queue: float, peer_queue: float, moves: bool) -> None:
    policy = make_policy("forecast")
    got = _choose(policy, _job(), _here(queued_work_s=here_queue),
                  [_peer("p", queued_work_s=peer_queue)])
    assert got == ("p" if moves else None)


def test_forecast_keeps_an_on_time_job_with_slack() -> None:
    policy = make_policy("forecast")
    here = _here(queued_work_s=40.0)  # finishes at +50 s
    fast = _peer("fast")
    assert _choose(policy, _job(deadline=NOW + 1_000.0), here, [fast]) is None  # 950 s spare
    assert _choose(policy, _job(deadline=NOW + 60.0), here, [fast]) == "fast"  # 10 s < 15 s


def test_forecast_moves_anything_here_cannot_pay_for() -> None:
    policy = make_policy("forecast")
    here = _here(margin_wh=0.0)  # idle but broke: would finish in 10 s if it could run
    slower = _peer("slower", queued_work_s=100.0)
    assert _choose(policy, _job(), here, [slower]) == "slower"
    assert _choose(policy, _job(), _here(), [slower]) is None


def test_forecast_avoids_a_peer_entering_eclipse_with_little_margin() -> None:
    policy = make_policy("forecast")
    here = _here(queued_work_s=100.0)
    job = _job(deadline=NOW + 60.0)
    # the job would end after this peer's eclipse starts, and needs over half its margin
    dusk = _peer("dusk", next_eclipse_s=5.0, margin_wh=0.1)
    assert _choose(policy, job, here, [dusk]) is None
    assert _choose(policy, job, here, [dusk._replace(margin_wh=1.0)]) == "dusk"
    assert _choose(policy, job, here, [dusk._replace(next_eclipse_s=30.0)]) == "dusk"


def test_forecast_waits_only_for_work_of_at_least_the_jobs_priority() -> None:
    policy = make_policy("forecast")
    here = _here(queued_work_s=100.0)
    job = _job(deadline=NOW + 60.0, priority=5)
    low_backlog = (0.0, 400.0, 0.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0, 0.0)
    detailed = _peer("detailed", queued_work_s=405.0, running_s=3.0, work_by_priority=low_backlog)
    opaque = _peer("opaque", queued_work_s=405.0)
    assert _choose(policy, job, here, [opaque]) is None
    assert _choose(policy, job, here, [opaque, detailed]) == "detailed"  # 3 + 5 + 10 s
    urgent = detailed._replace(running_s=50.0)
    assert _choose(policy, job, here, [urgent]) is None


def test_forecast_uses_the_jobs_own_place_in_the_queue() -> None:
    policy = make_policy("forecast")
    here = _here(queued_work_s=100.0)  # but this job is at the head of it
    assert _choose(policy, _job(ahead_s=0.0), here, [_peer("p")]) is None
    assert _choose(policy, _job(), here, [_peer("p")]) == "p"


def test_forecast_breaks_ties_by_name() -> None:
    policy = make_policy("forecast")
    here = _here(queued_work_s=100.0)
    assert _choose(policy, _job(), here, [_peer("zeta"), _peer("alpha")]) == "alpha"


def test_forecast_moves_work_here_cannot_pay_for_behind_its_queue_to_the_most_spare() -> None:
    policy = make_policy("forecast")
    job = _job(deadline=NOW + 10_000.0)  # 10 s at 25 W: 0.069 Wh; on time anywhere
    # here can pay for the job alone but not for the 1,000 s of work ahead of it (6.9 Wh)
    here = _here(queued_work_s=1_000.0, margin_wh=1.0)
    rich, richer = _peer("rich", margin_wh=20.0), _peer("richer", margin_wh=40.0)
    poor = _peer("poor", margin_wh=40.0, queued_work_s=6_000.0)  # its own queue needs 41.7
    assert _choose(policy, job, here, [rich, richer, poor]) == "richer"
    assert _choose(policy, job, here, [poor]) is None  # nobody can pay: stay
    # with energy enough here for its queue, a job with room to spare stays
    assert _choose(policy, job, here._replace(margin_wh=10.0), [richer]) is None
