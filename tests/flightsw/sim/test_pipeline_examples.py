"""examples/scenarios/pipeline-*.toml: the Walker shell's profile differs from the packaged
Suncatcher-like one only in its terminal; both scenarios carry the same pipeline class and a
short run of each completes its pipeline jobs, losing none, each job that was never
re-planned on nine distinct members."""

from __future__ import annotations

from pathlib import Path

from flightsw.sim import build_world, collect_metrics, load_scenario
from flightsw.sim.engine import Simulation
from hardware_profiles import load_profile

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "scenarios"


def test_the_walker_profile_changes_only_the_terminal() -> None:
    walker = load_profile(EXAMPLES / "profiles" / "tpu-v6e-walker.toml")
    base = load_profile("suncatcher-tpu-v6e")
    assert walker.links.isl_max_range_km == 5000.0 > base.links.isl_max_range_km
    assert walker.links.isl_rate_bps == 10e9 < base.links.isl_rate_bps
    same = {"name": base.name, "description": base.description, "links": base.links}
    assert walker.model_copy(update=same) == base


def test_both_geometries_run_the_same_pipeline_class() -> None:
    classes = []
    for name in ("pipeline-suncatcher.toml", "pipeline-walker.toml"):
        sc = load_scenario(EXAMPLES / name)
        (job,) = sc.jobs
        assert job.stages == 9
        classes.append(job)
        # ten minutes of arrivals: every job done once, on nine distinct members
        short = sc.model_copy(update={"duration_orbits": None, "duration_hours": 1 / 6})
        sim = Simulation(build_world(short))
        sim.run()
        m = collect_metrics(sim)
        p = m["pipeline"][job.name]
        assert p["jobs_completed"] == p["jobs_submitted"] > 100
        # every job that ran on one chain (no re-plan) ran on nine distinct members; a
        # chain re-planned from the stage left may start where the last stage ran
        done = [j for j in sim.ledger.jobs.values() if j.outcome == "done"]
        single = [sim.pipes.finals[(j.jid, j.epoch)] for j in done
                  if sim.pipes.finals[(j.jid, j.epoch)][3] == 0]
        assert len(single) > 100
        assert all(len(set(members)) == 9 == len(members) for _, _, members, _ in single)
        assert p["distinct_members_unreplanned"] is True
        assert p["jobs_replanned"] == len(done) - len(single)
        assert m["jobs_lost"] == 0 and m["duplicate_results"] == 0
    assert classes[0] == classes[1]
