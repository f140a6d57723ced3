"""Pipeline job classes in the simulator (``stages = K``): K distinct linked members, hops at
the link's rate, one result per job, re-planned under a new epoch when a member is lost
(from stage 0 after a crash, from the stage left after a broken hop), bad fields refused,
and the same metrics for the same seed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sim_cases import T0, run_case, scenario, small, subpoint

from flightsw.archive import ArchiveReader
from flightsw.exceptions import ScenarioError
from flightsw.physics.constants import C_KM_S
from flightsw.physics.orbit import CircularOrbits
from flightsw.protocol import JobEvent, parse
from flightsw.sim import ARCHIVE_SUBDIR, Simulation, build_world, run_scenario
from flightsw.sim.metrics import dumps_metrics, without_wall

N = 6
NAMES = [f"S{k}" for k in range(N)]
SPACING_DEG = 2.0  # ~240 km apart in one orbit: each linked to its neighbours


def _line(profile: str = "starcloud-h100", **over: Any) -> dict[str, Any]:
    """Six satellites in a line along one orbit, a station under the third at 10 min."""
    sats = [{"name": n, "altitude_km": 550.0, "inclination_deg": 53.0,
             "arg_latitude_deg": SPACING_DEG * k} for k, n in enumerate(NAMES)]
    orb = CircularOrbits([550.0] * N, [53.0] * N, [0.0] * N,
                         [SPACING_DEG * k for k in range(N)], T0, NAMES)
    lat, lon = subpoint(orb, T0 + 600.0, 2)
    data = small(constellation={"satellites": sats}, profiles={"default": profile},
                 ground_stations=[{"name": "under", "lat_deg": lat, "lon_deg": lon}],
                 duration_hours=1.0)
    data["jobs"] = [
        {"name": "pipe", "flops_per_item": 1e12, "items": 1000, "stages": 3,
         "activation_bytes_per_item": 1e6, "input_bytes_per_item": 1e3,
         "times_s": [100.0 + 50.0 * k for k in range(10)], "nodes": ["S0"],
         "deadline_s": 3000.0},
    ]
    data.update(over)
    return data


def _hops(sim: Simulation, jid: str) -> list[tuple[Any, ...]]:
    return [h for h in sim.pipes.log if h[0] == jid]


def test_each_job_runs_once_over_k_distinct_linked_members_at_the_link_rate() -> None:
    for profile, rate in (("starcloud-h100", 100e9), ("jetson-agx-orin", 10e9)):
        sim, m = run_case(_line(profile))
        assert m["jobs_submitted"] == 10
        assert m["jobs_completed"] == 10
        assert m["jobs_lost"] == 0
        assert m["duplicate_results"] == 0
        p = m["pipeline"]["pipe"]
        assert p["jobs_completed"] == 10
        assert p["distinct_members"] is True
        assert m["pipeline"]["totals"]["hops"] == 20
        proc = sim.w.profiles[0].links.processing_latency_s
        reach = sim.w.profiles[0].links.isl_max_range_km
        for job in sim.ledger.jobs.values():
            assert sim.ledger.recorded[job.jid] == 1
            stage_s, hop_s, members, _ = sim.pipes.finals[(job.jid, job.epoch)]
            assert len(set(members)) == 3
            assert job.epoch == 2  # one epoch per hop, as a migration
            hops = _hops(sim, job.jid)
            assert [(h[2], h[3]) for h in hops] == [(members[0], members[1]),
                                                     (members[1], members[2])]
            for _, _, src, dst, start, end, size, hop_rate, latency in hops:
                assert hop_rate == rate
                assert size == 1e6 * 1000
                # serialisation at the link's rate plus range / c and the processing
                assert end - start == pytest.approx(8.0 * size / rate + latency, abs=1e-6)
                pos = sim.w.orbits.positions_at(np.array([start, start]),
                                                np.array([src, dst]))
                d = float(np.linalg.norm(pos[0] - pos[1]))
                assert d <= reach  # linked: within range
                assert latency == pytest.approx(d / C_KM_S + proc, abs=2e-4)
            assert hop_s == pytest.approx(sum(h[5] - h[4] for h in hops), abs=1e-6)
            assert job.finished_at - job.submitted_at >= stage_s + hop_s - 1e-6
        if rate == 10e9:
            slow = p
        else:
            fast = p
    # the same 1 GB per cut: ten times the serialisation at a tenth of the rate (the
    # chains may differ by a few hundred km: light time is checked per hop above)
    assert slow["hop_s_mean"] == pytest.approx(2 * 0.8 + fast["hop_s_mean"] - 2 * 0.08,
                                               abs=5e-3)


def test_stages_are_not_moved_by_migration_rounds() -> None:
    data = _line(scheduler={"policy": "least-loaded", "consider_wait_s": 0.0,
                            "min_gain_s": 0.0, "min_gain_frac": 0.0})
    data["jobs"][0]["times_s"] = [100.0] * 10  # a queue at the head: rounds would move it
    sim, m = run_case(data)
    assert m["jobs_completed"] == 10
    assert m["migrations"] == 0
    for job in sim.ledger.jobs.values():
        _, _, members, _ = sim.pipes.finals[(job.jid, job.epoch)]
        assert members[0] == 0  # stage 0 stayed where the inputs were captured


def _stage_window(sim: Simulation, jid: str, k: int) -> tuple[int, float, float]:
    """Member, arrival and departure of stage ``k`` of ``jid`` in a finished run."""
    hops = _hops(sim, jid)
    return hops[k - 1][3], hops[k - 1][5], hops[k][4]


def test_a_member_crashing_mid_job_replans_under_a_new_epoch_and_completes_once() -> None:
    sim, _ = run_case(_line())
    member, arrived, left = _stage_window(sim, "j0000001", 1)
    crash_s = (arrived + left) / 2 - T0  # while stage 1 runs there
    data = _line(faults=[{"kind": "crash", "node": NAMES[member], "at_s": crash_s,
                          "restart_s": 3000.0}],
                 scheduler={"lease_s": 60.0})
    sim, m = run_case(data)
    assert m["jobs_completed"] == 10
    assert m["jobs_lost"] == 0
    assert m["duplicate_results"] == 0
    assert m["pipeline"]["totals"]["replans"] == 1
    assert m["pipeline"]["totals"]["jobs_replanned"] == 1
    job = sim.ledger.jobs["j0000001"]
    assert job.outcome == "done"
    assert sim.ledger.recorded[job.jid] == 1
    _, _, members, replans = sim.pipes.finals[(job.jid, job.epoch)]
    assert replans == 1
    # the other nine ran on one chain each, on three distinct members
    p = m["pipeline"]["pipe"]
    assert p["jobs_replanned"] == 1 and p["distinct_members_unreplanned"] is True
    assert member not in members  # the new chain leaves the dead node out
    assert len(set(members)) == 3
    # re-planned from stage 0 at the lease's lapse: epoch 1 (at the crash) + 1, then 2 hops
    assert job.epoch == 4
    assert job.finished_at >= T0 + crash_s + 60.0
    # the stale copy never ran: the dead member's stage was lost with it
    assert m["pipeline"]["totals"]["stale_stages"] == 0


def test_a_ground_pipeline_job_is_uplinked_to_a_chain_head_and_rerun_after_a_crash() -> None:
    data = _line(duration_hours=3.0)
    data["jobs"] = [{"name": "gpipe", "flops_per_item": 1e12, "items": 1000, "stages": 2,
                     "activation_bytes_per_item": 1e5, "origin": "ground",
                     "times_s": [300.0], "deadline_s": 9000.0}]
    sim, m = run_case(data)
    assert m["jobs_completed"] == 1
    job = sim.ledger.jobs["j0000001"]
    (hop,) = _hops(sim, job.jid)
    member, arrived = hop[3], hop[5]
    # the same run with the second member crashing while it runs stage 1
    at = (arrived + job.finished_at) / 2 - T0
    data["faults"] = [{"kind": "crash", "node": NAMES[member], "at_s": at}]
    sim, m = run_case(data)
    assert m["jobs_completed"] == 1
    assert m["reruns"] == 1  # the ground re-runs it when the member's lease lapses
    assert m["pipeline"]["totals"]["replans"] == 1
    assert m["duplicate_results"] == 0
    job = sim.ledger.jobs["j0000001"]
    _, _, members, _ = sim.pipes.finals[(job.jid, job.epoch)]
    assert member not in members
    assert m["stale_results_ignored"] == 0


def test_an_onboard_pipeline_job_fails_when_its_origin_crashes_before_the_replan() -> None:
    sim, _ = run_case(_line())
    member, arrived, left = _stage_window(sim, "j0000001", 1)
    at = (arrived + left) / 2 - T0
    data = _line(faults=[{"kind": "crash", "node": NAMES[member], "at_s": at},
                         {"kind": "crash", "node": "S0", "at_s": at + 1.0}])
    data["jobs"][0]["times_s"] = [100.0]
    sim, m = run_case(data)
    assert m["jobs_lost"] == 0
    assert m["failed_by_reason"] == {"node_crash": 1}
    assert "lost the captured inputs" in sim.ledger.jobs["j0000001"].reason


def test_an_ended_job_leaves_nothing_behind_in_the_pipelines() -> None:
    # ten onboard jobs done, and one failed when its origin crashed before its re-plan
    sim, m = run_case(_line())
    assert m["jobs_completed"] == 10
    member, arrived, left = _stage_window(sim, "j0000001", 1)
    at = (arrived + left) / 2 - T0
    data = _line(faults=[{"kind": "crash", "node": NAMES[member], "at_s": at},
                         {"kind": "crash", "node": "S0", "at_s": at + 1.0}])
    data["jobs"][0]["times_s"] = [100.0]
    failed, fm = run_case(data)
    assert fm["failed_by_reason"] == {"node_crash": 1}
    for s in (sim, failed):
        p = s.pipes
        assert p.captured == {} and p.flows == {} and p.away == {} and p.held == {}
        assert p.hops == {} and p.planned == {}
        assert all(x == 0.0 for x in p.owed_s)


def test_a_hop_whose_link_is_down_replans_the_stages_left_at_once() -> None:
    sim, _ = run_case(_line())
    src, _, left = _stage_window(sim, "j0000001", 1)
    nxt = _hops(sim, "j0000001")[1][3]
    data = _line(faults=[{"kind": "isl_outage", "node": NAMES[src], "peer": NAMES[nxt],
                          "start_s": left - T0 - 0.5, "end_s": left - T0 + 600.0}])
    sim, m = run_case(data)
    assert m["jobs_completed"] == 10
    assert m["jobs_lost"] == 0
    assert m["pipeline"]["totals"]["hops_broken"] == 1
    assert m["pipeline"]["totals"]["replans"] == 1
    job = sim.ledger.jobs["j0000001"]
    assert sim.ledger.recorded[job.jid] == 1
    assert job.epoch == 2  # stage 1 held epoch 1 when the hop failed; the stage left 2
    _, _, members, _ = sim.pipes.finals[(job.jid, job.epoch)]
    assert members[2] != nxt and members[1] == src  # stages 0 and 1 were not run again
    assert job.finished_at > left


@pytest.mark.parametrize(
    ("fields", "where", "says"),
    [
        ({"stages": 0}, "jobs[0].stages", "greater than or equal to 1"),
        ({"stages": -2}, "jobs[0].stages", "greater than or equal to 1"),
        ({"stages": 2.5}, "jobs[0].stages", "valid integer"),
        ({"stages": "3"}, "jobs[0].stages", "valid integer"),
        ({"stages": True}, "jobs[0].stages", "valid integer"),
        ({"stages": 1000}, "jobs[0].stages", "less than or equal to 256"),
        ({"stages": 1, "activation_bytes_per_item": 10.0},
         "jobs[0]", "activation_bytes_per_item: only for a pipeline class"),
        ({"stages": 3, "activation_bytes_per_item": -1.0},
         "jobs[0].activation_bytes_per_item", "greater than or equal to 0"),
        ({"stages": 3, "stage_fractions": [0.5, 0.5]}, "jobs[0]",
         "stage_fractions: give one per stage (3), got 2"),
        ({"stages": 2, "stage_fractions": [0.5, 0.6]}, "jobs[0]",
         "stage_fractions: must add up to 1"),
        ({"stages": 2, "stage_fractions": [1.0, 0.0]}, "jobs[0].stage_fractions[1]",
         "greater than 0"),
    ],
)
def test_bad_pipeline_fields_are_refused_naming_the_field(fields: dict[str, Any], where: str,
                                                           says: str) -> None:
    data = _line()
    data["jobs"][0].pop("activation_bytes_per_item")
    data["jobs"][0].pop("stages")
    data["jobs"][0].update(fields)
    with pytest.raises(ScenarioError) as err:
        scenario(data)
    assert f"test: {where}" in str(err.value)
    assert says in str(err.value)


def test_more_stages_than_satellites_is_refused() -> None:
    data = _line()
    data["jobs"][0]["stages"] = 7
    with pytest.raises(ScenarioError, match=r"jobs\[0\]\.stages: 7 stages need as many "
                                            r"satellites; the constellation has 6"):
        build_world(scenario(data))


def test_a_seed_gives_the_same_metrics_byte_for_byte() -> None:
    data = _line(duration_hours=2.0, seed=5)
    data["jobs"] = [
        {"name": "pipe", "flops_per_item": 1e12, "items": [200, 2000], "stages": 3,
         "activation_bytes_per_item": 1e6, "rate_per_hour": 60.0, "deadline_s": 1800.0,
         "stage_fractions": [0.5, 0.25, 0.25], "micro_batches": 4},
        {"name": "gpipe", "flops_per_item": 1e12, "items": 1000, "stages": 2,
         "origin": "ground", "rate_per_hour": 6.0, "deadline_s": 3600.0},
        {"name": "plain", "flops_per_item": 1e12, "items": 500, "rate_per_hour": 30.0},
    ]
    data["faults"] = [{"kind": "crash", "node": "S2", "at_s": 1800.0, "restart_s": 3000.0}]
    runs = []
    for _ in range(2):
        _, m = run_case(data)
        runs.append(dumps_metrics(without_wall(m)))
    assert runs[0] == runs[1]
    m = json.loads(runs[0])
    assert m["pipeline"]["pipe"]["jobs_completed"] > 30
    assert m["pipeline"]["gpipe"]["jobs_submitted"] > 0
    assert m["jobs_lost"] == 0
    assert m["duplicate_results"] == 0


def test_stage_fractions_split_the_work() -> None:
    data = _line()
    job = data["jobs"][0]
    job["times_s"] = [100.0]
    job["stage_fractions"] = [0.5, 0.25, 0.25]
    del job["deadline_s"]  # every stage alike: the same power mode for each
    sim, m = run_case(data)
    assert m["jobs_completed"] == 1
    j = sim.ledger.jobs["j0000001"]
    h1, h2 = _hops(sim, j.jid)
    runs = [h1[4] - j.started_at, h2[4] - h1[5], j.finished_at - h2[5]]
    assert runs[0] == pytest.approx(2 * runs[1], rel=1e-6)
    assert runs[1] == pytest.approx(runs[2], rel=1e-6)
    stage_s, _, _, _ = sim.pipes.finals[(j.jid, j.epoch)]
    assert stage_s == pytest.approx(sum(runs), rel=1e-6)


def test_an_archived_run_tells_each_hop(tmp_path: Path) -> None:
    out = tmp_path / "run"
    m = run_scenario(scenario(_line()), out_dir=out)
    assert m["jobs_completed"] == 10
    hops = []
    with ArchiveReader(out / ARCHIVE_SUBDIR) as reader:
        for rec in reader.records():
            if rec.topic.rsplit("/", 1)[-1] == "event":
                ev = parse(JobEvent, rec.payload)
                if ev.state == "handed_over":
                    hops.append(ev)
    assert len(hops) == m["pipeline"]["totals"]["hops"] == 20
    assert all(ev.target is not None and ev.target != ev.node for ev in hops)
    assert all("stage" in (ev.detail or "") and "s hop" in (ev.detail or "") for ev in hops)
