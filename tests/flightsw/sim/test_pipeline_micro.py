"""Pipeline jobs in the simulator with ``micro_batches = M``: GPipe-style streaming whose
latency is the bubble's (M + K - 1) stage slots plus the hops, one job in the ledger, bad
counts refused naming the field; and re-plans from the stage left (a give-back) rather than
from stage 0, while a crashed member's micro-batches start again."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any

import pytest
from sim_cases import T0, run_case, scenario

from flightsw.exceptions import ScenarioError
from flightsw.sim import Simulation, build_world, collect_metrics
from flightsw.sim.pipeline import micro_items
from hardware_profiles import profile_path

sys.path.insert(0, str(Path(__file__).parent))
from test_pipeline import NAMES, _hops, _line

K = 3


def _one_mode(tmp_path: Path) -> Path:
    """The H100 profile with every power mode as fast as the fastest: every stage run of a
    job takes the same time, whichever mode the core picks for it (it picks per run)."""
    text = profile_path("starcloud-h100").read_text()
    for a, b in {'name = "starcloud-h100"': 'name = "h100-one-speed"',
                 "throughput = 0.83": "throughput = 1.0",
                 "throughput = 0.67": "throughput = 1.0",
                 "throughput = 0.45": "throughput = 1.0"}.items():
        assert a in text, a
        text = text.replace(a, b)
    path = tmp_path / "h100-one-speed.toml"
    path.write_text(text)
    return path


def _job(m: int, **over: Any) -> dict[str, Any]:
    job = {"name": "pipe", "flops_per_item": 1e12, "items": 1000, "stages": K,
           "micro_batches": m, "activation_bytes_per_item": 1e3,
           "input_bytes_per_item": 1e3, "times_s": [100.0], "nodes": ["S0"]}
    job.update(over)
    return job


def test_micro_items_split_evenly_and_refuse_more_parts_than_items() -> None:
    assert micro_items(10, 4) == [3, 3, 2, 2]
    assert micro_items(8, 8) == [1] * 8
    assert micro_items(5, 1) == [5]
    with pytest.raises(ValueError, match="micro_batches: 6 parts of 5 items"):
        micro_items(5, 6)


@pytest.mark.parametrize("m", [1, 2, 4, 8])
def test_the_bubble_is_m_plus_k_minus_1_stage_slots_plus_the_hops(tmp_path: Path,
                                                                   m: int) -> None:
    """K equal stages on one idle chain at one power mode: micro-batch m leaves stage k at
    (m + 1 + k) slots plus k hops, so the job takes (M + K - 1) x (stage time / M) plus
    K - 1 hops of one micro-batch's activations (constant range: one orbit, fixed spacing)."""
    data = _line(profiles={"default": str(_one_mode(tmp_path))})
    data["jobs"] = [_job(m)]
    sim, met = run_case(data)
    job = sim.ledger.jobs["j0000001"]
    assert job.outcome == "done"
    assert sim.ledger.recorded[job.jid] == 1  # one job, one result, whatever M
    stage_s, hop_s, members, _ = sim.pipes.finals[(job.jid, job.epoch)]
    assert len(set(members)) == K
    spec = sim.nodes[0].spec
    stage = spec.seconds(spec.work(1e12 / K, 0.0, 0.0, 1000))  # a whole stage, one run
    assert stage_s == pytest.approx(K * stage, rel=1e-9)  # the work is split, not grown
    hops = _hops(sim, job.jid)
    assert len(hops) == (K - 1) * m
    one = hops[0][5] - hops[0][4]
    assert all(h[6] == 1e3 * 1000 / m for h in hops)  # each hop ships its micro-batch only
    assert all(h[5] - h[4] == pytest.approx(one, abs=1e-9) for h in hops)
    assert hop_s == pytest.approx((K - 1) * m * one, rel=1e-9)
    latency = job.finished_at - job.submitted_at
    # exact up to the rounding of absolute times (~1.75e9 s: 2.4e-7 s a step, M + K steps)
    assert latency == pytest.approx((m + K - 1) * stage / m + (K - 1) * one, abs=5e-6)
    p = met["pipeline"]["pipe"]
    assert p["micro_batches"] == m
    assert p["jobs_completed"] == 1


def test_streaming_overlaps_the_hops_with_the_next_micro_batch(tmp_path: Path) -> None:
    """Slow links (the hop longer than a micro-batch's stage): the hops on one ordered
    pair queue behind each other, and the job still ends sooner than with M = 1."""
    prof = str(_one_mode(tmp_path))
    ends = {}
    for m in (1, 4):
        data = _line(profiles={"default": prof})
        data["jobs"] = [_job(m, activation_bytes_per_item=1e7)]  # 10 GB a cut: 0.8 s
        sim, _ = run_case(data)
        job = sim.ledger.jobs["j0000001"]
        assert job.outcome == "done"
        hops = _hops(sim, job.jid)
        for pair in {(h[2], h[3]) for h in hops}:
            on = sorted((h[4], 8.0 * h[6] / h[7]) for h in hops if (h[2], h[3]) == pair)
            # serialisation never overlaps on one ordered pair: each waits for the last
            for (start, send), (nxt, _) in itertools.pairwise(on):
                assert nxt >= start + send - 1e-9
        ends[m] = job.finished_at - job.submitted_at
    assert ends[4] < ends[1]


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"micro_batches": 0}, "jobs[0].micro_batches"),
        ({"micro_batches": -3}, "jobs[0].micro_batches"),
        ({"micro_batches": 2.5}, "jobs[0].micro_batches"),
        ({"micro_batches": 4, "stages": 1, "activation_bytes_per_item": None},
         "micro_batches: 4 micro-batches are only for a pipeline class"),
        ({"micro_batches": 1001}, "micro_batches: 1001 is more than the class's items (1000)"),
        ({"micro_batches": 300, "items": [200, 2000]},
         "micro_batches: 300 is more than the class's items (200)"),
    ],
)
def test_bad_micro_batch_counts_are_refused_naming_the_field(fields: dict[str, Any],
                                                             says: str) -> None:
    data = _line()
    job = _job(1)
    job.update(fields)
    data["jobs"] = [{k: v for k, v in job.items() if v is not None}]
    with pytest.raises(ScenarioError) as err:
        scenario(data)
    assert says in str(err.value)


def test_m_micro_batches_stream_many_jobs_once_each() -> None:
    data = _line()
    data["jobs"][0]["micro_batches"] = 4
    sim, m = run_case(data)
    assert m["jobs_completed"] == 10
    assert m["duplicate_results"] == 0 and m["jobs_lost"] == 0
    assert m["pipeline"]["totals"]["hops"] == 10 * 2 * 4
    for job in sim.ledger.jobs.values():
        assert sim.ledger.recorded[job.jid] == 1


def _stage_window(sim: Simulation, jid: str, k: int) -> tuple[int, float, float]:
    """Stage k's member of ``jid`` (M = 1), when its inputs arrived and its outputs left."""
    hops = _hops(sim, jid)
    return hops[k - 1][3], hops[k - 1][5], hops[k][4]


def test_a_broken_hop_gives_an_onboard_micro_batch_back_at_the_stage_left() -> None:
    """The link to stage 2's member is down when stage 1 ends: stage 1's member places
    stage 2 on a new chain from itself under epoch + 1; no stage runs twice."""
    sim, _ = run_case(_line())
    src, _, left = _stage_window(sim, "j0000001", 1)
    nxt = _hops(sim, "j0000001")[1][3]
    data = _line(faults=[{"kind": "isl_outage", "node": NAMES[src], "peer": NAMES[nxt],
                          "start_s": left - T0 - 0.5, "end_s": left - T0 + 600.0}])
    sim, m = run_case(data)
    assert m["jobs_completed"] == 10 and m["jobs_lost"] == 0
    tot = m["pipeline"]["totals"]
    assert tot["hops_broken"] == 1 and tot["replans"] == 1
    assert tot["stale_stages"] == 0
    job = sim.ledger.jobs["j0000001"]
    assert sim.ledger.recorded[job.jid] == 1
    _, _, ran, _ = sim.pipes.finals[(job.jid, job.epoch)]
    assert len(ran) == K  # each stage ran once: stages 0 and 1 were kept
    assert ran[1] == src == ran[2]  # stage 2 runs where stage 1's outputs are
    assert len(_hops(sim, job.jid)) == 1  # only the hop before the break
    assert job.epoch == 2  # epoch 1 at stage 1, + 1 for the new chain


def test_a_broken_hop_gives_a_ground_job_back_through_a_contact_window() -> None:
    """A ground job: stage 1's member sends its outputs down when a station sees it (or a
    linked neighbour does), and the ground uplinks stage 2 to a member in view."""
    data = _line(duration_hours=3.0)
    data["jobs"] = [{"name": "gpipe", "flops_per_item": 1e12, "items": 1000, "stages": K,
                     "activation_bytes_per_item": 1e5, "origin": "ground",
                     "times_s": [300.0], "deadline_s": 9000.0}]
    sim, m = run_case(data)
    assert m["jobs_completed"] == 1
    job = sim.ledger.jobs["j0000001"]
    _, h2 = _hops(sim, job.jid)
    src, nxt, left = h2[2], h2[3], h2[4]
    data["faults"] = [{"kind": "isl_outage", "node": NAMES[src], "peer": NAMES[nxt],
                       "start_s": left - T0 - 0.5, "end_s": left - T0 + 9000.0}]
    sim, m = run_case(data)
    assert m["jobs_completed"] == 1 and m["duplicate_results"] == 0
    tot = m["pipeline"]["totals"]
    assert tot["hops_broken"] == 1 and tot["returns"] == 1 and tot["replans"] == 1
    job = sim.ledger.jobs["j0000001"]
    _, _, ran, _ = sim.pipes.finals[(job.jid, job.epoch)]
    assert len(ran) == K and ran[1] == src
    assert len(_hops(sim, job.jid)) == 1  # stage 2 came up from the ground
    assert m["reruns"] == 0  # nothing ran again


def test_a_crashed_member_restarts_only_its_micro_batches_from_stage_0() -> None:
    data = _line()
    data["jobs"][0]["micro_batches"] = 4
    data["jobs"][0]["times_s"] = [100.0]
    sim, _ = run_case(data)
    job = sim.ledger.jobs["j0000001"]
    hops = _hops(sim, job.jid)
    last = hops[-1][3]  # the last stage's member
    # while it runs the first micro-batches of the last stage, after the first arrived
    at = hops[-4][5] - T0 + 0.01
    data["faults"] = [{"kind": "crash", "node": NAMES[last], "at_s": at,
                       "restart_s": 3000.0}]
    sim, m = run_case(data)
    assert m["jobs_completed"] == 1 and m["duplicate_results"] == 0
    tot = m["pipeline"]["totals"]
    assert 1 <= tot["lapses"] < 4  # those it held, from stage 0; the others went on
    # the micro-batches behind them found it gone after stage 1: given back at stage 2
    assert tot["hops_broken"] == 4 - tot["lapses"]
    assert tot["replans"] == tot["lapses"] + tot["hops_broken"]
    # the re-plans count micro-batches: four of them, one job
    assert tot["replans"] == 4 and tot["jobs_replanned"] == 1
    assert m["pipeline"]["pipe"]["jobs_replanned"] == 1
    assert tot["stale_stages"] == 0
    job = sim.ledger.jobs["j0000001"]
    _, _, ran, replans = sim.pipes.finals[(job.jid, job.epoch)]
    assert replans == 4
    assert last not in ran and len(ran) == K
    assert job.finished_at >= T0 + at + 60.0  # the lease's lapse


@pytest.mark.parametrize("count", [False, True])
def test_stages_planned_but_not_arrived_count_in_a_members_backlog(count: bool) -> None:
    """Two 2-stage jobs captured at S2 at the same instant: without the planned stages in
    the backlog both send stage 1 to the same idle-looking neighbour; with them the second
    takes another."""
    data = _line()
    data["jobs"] = [_job(1, stages=2, times_s=[100.0, 100.0], nodes=["S2"])]
    sim = Simulation(build_world(scenario(data)))
    sim.pipes.count_planned = count
    sim.run()
    m = collect_metrics(sim)
    assert m["jobs_completed"] == 2
    (a,), (b,) = _hops(sim, "j0000001"), _hops(sim, "j0000002")
    assert a[2] == b[2] == 2  # stage 0 where the inputs were captured
    assert (a[3] != b[3]) is count
    assert sum(sim.pipes.owed_s) == pytest.approx(0.0, abs=1e-9)  # nothing left owed


def test_a_micro_batch_expiring_in_a_queue_fails_its_job_once() -> None:
    """Two streamed jobs captured at one instant with a deadline shorter than both together:
    the second's micro-batches wait behind the first's and expire; the ledger fails the job
    once, at its own epoch (its micro-batches' copies run at theirs), and nothing is left
    owed or in flight."""
    data = _line()
    data["jobs"] = [_job(4, times_s=[100.0, 100.0], deadline_s=2.0)]
    sim, m = run_case(data)
    assert m["jobs_lost"] == 0 and m["duplicate_results"] == 0
    jobs = sorted(sim.ledger.jobs.values(), key=lambda j: j.jid)
    assert [j.outcome for j in jobs].count("failed") >= 1
    for j in jobs:
        assert sim.ledger.recorded[j.jid] == 1
        assert j.outcome == "done" or j.reason == "deadline expired before start"
    assert sim.ledger.stale_failures == 0  # each failure recorded at the job's epoch
    assert not sim.pipes.flows and not sim.pipes.hops and not sim.pipes.away
    assert sum(sim.pipes.owed_s) == pytest.approx(0.0, abs=1e-9)
