"""Lifetime events acted on by the engine through the node core: a lost accelerator stops
its node for good and its jobs finish elsewhere exactly once; a manoeuvre pauses compute for
its window and draws propulsion power; a seed repeats; with the events off nothing changes."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from sim_cases import T0, scenario, small

from flightsw.archive import ArchiveReader
from flightsw.node.effects import Effect, Started
from flightsw.node.lifetime import MANOEUVRE_REASON, LifetimeDraw
from flightsw.physics.eclipse import eclipse_intervals
from flightsw.protocol import JobEvent, JobResult, parse
from flightsw.sim import Simulation, build_world, collect_metrics, run_scenario
from flightsw.sim.metrics import MeteredSimulation, without_wall
from flightsw.sim.world import World
from hardware_profiles import profile_path

LONG_PRIORITY = 2  # the ground class "long" of sim_cases.small


def _world(**over: Any) -> World:
    return build_world(scenario(small(duration_hours=2.0, **over)))


class _Starts(Simulation):
    """A simulation that notes every run it starts: (t, node, job, latency, priority)."""

    def __init__(self, world: World, **kw: Any) -> None:
        super().__init__(world, **kw)
        self.starts: list[tuple[float, int, str, float, int]] = []

    def _carry(self, i: int, effects: list[Effect], t: float) -> None:
        for e in effects:
            if isinstance(e, Started):
                r = e.run
                self.starts.append((r.start, i, r.q.job_id, r.d.latency_s, r.q.priority))
        super()._carry(i, effects, t)


def _first_long_run() -> tuple[float, int, str, float, int]:
    """The first run of a ground job long enough to be cut by an event (without events)."""
    sim = _Starts(_world())
    sim.run()
    return next(s for s in sim.starts if s[4] == LONG_PRIORITY and s[3] > 200.0)


def _messages(out: Path) -> tuple[list[JobEvent], list[JobResult]]:
    events: list[JobEvent] = []
    results: list[JobResult] = []
    with ArchiveReader(out) as reader:
        for rec in reader.records():
            leaf = rec.topic.rsplit("/", 1)[-1]
            if leaf == "event":
                events.append(parse(JobEvent, rec.payload))
            elif leaf == "result":
                results.append(parse(JobResult, rec.payload))
    return events, results


def test_a_lost_accelerator_stops_the_node_for_good_and_its_jobs_finish_elsewhere_once(
    tmp_path: Path,
) -> None:
    start, i, jid, latency, _ = _first_long_run()
    t_fail = start + 0.5 * latency  # in the middle of that run
    draw = LifetimeDraw()
    draw.failures[i] = t_fail
    world = dataclasses.replace(_world(), lifetime=draw)
    sim = _Starts(world, archive_dir=tmp_path / "a")
    sim.run()
    m = collect_metrics(sim)
    assert m["jobs_lost"] == 0 and m["duplicate_results"] == 0
    assert m["lifetime"]["nodes_failed"] == 1 and m["lifetime"]["accelerators_lost"] == 1
    assert m["reruns"] >= 1  # the ground re-ran what the node held once its lease lapsed
    assert not sim.alive[i]
    # the node does no more work after its failure: no run started, nothing finished there
    assert all(t < t_fail for t, n, *_ in sim.starts if n == i)
    name = sim.nodes[i].name
    _, results = _messages(tmp_path / "a")
    assert all(r.finished_at is None or r.finished_at <= t_fail
               for r in results if r.node == name)
    # the job it was running finished on another node, exactly once, with a higher epoch
    done = [r for r in results if r.job_id == jid and r.status == "done"]
    assert len(done) == 1 and done[0].node != name and done[0].epoch >= 1
    assert any(s[2] == jid and s[1] != i and s[0] > t_fail for s in sim.starts)
    assert sim.ledger.jobs[jid].outcome == "done"
    # a node that failed stays down even if a fault would restart it
    sim2 = Simulation(dataclasses.replace(
        world, faults=[*world.faults, *build_world(scenario(small(
            duration_hours=2.0,
            faults=[{"kind": "crash", "node": name, "at_s": t_fail - T0 + 10.0,
                     "restart_s": t_fail - T0 + 20.0}]))).faults]))
    sim2.run()
    assert not sim2.alive[i]


def test_a_manoeuvre_pauses_compute_for_its_window_and_draws_propulsion(
    tmp_path: Path,
) -> None:
    start, i, jid, latency, _ = _first_long_run()
    a = start + 0.3 * latency
    b = a + 900.0
    draw = LifetimeDraw()
    draw.manoeuvres[i] = [(a, b)]
    world = dataclasses.replace(_world(), lifetime=draw)
    sim = _Starts(world, archive_dir=tmp_path / "m")
    sim.run()
    m = collect_metrics(sim)
    assert m["jobs_lost"] == 0 and m["duplicate_results"] == 0
    life = m["lifetime"]
    assert life["manoeuvres"] == 1 and life["nodes_failed"] == 0
    assert life["manoeuvre_paused_s"] == pytest.approx(900.0)
    prof = sim.nodes[i].spec.profile.lifetime
    assert prof is not None
    assert life["propulsion_energy_j"] == pytest.approx(prof.propulsion_w * 900.0)
    assert sim.alive[i]
    # nothing starts on the node inside its window; the run it cut was queued again
    assert not [s for s in sim.starts if s[1] == i and a <= s[0] < b]
    events, _ = _messages(tmp_path / "m")
    name = sim.nodes[i].name
    cut = [e for e in events if e.node == name and e.job_id == jid and e.state == "queued"
           and e.detail == MANOEUVRE_REASON]
    assert len(cut) == 1 and cut[0].t == pytest.approx(a)
    assert sim.ledger.jobs[jid].outcome == "done"
    assert m["stopped_runs"] >= 1  # the run the manoeuvre cut


class _Battery(Simulation):
    """A simulation that notes node 0's battery after every physics step."""

    def __init__(self, world: World) -> None:
        super().__init__(world)
        self.wh: dict[float, float] = {}

    def _physics(self, t: float, dt: float) -> None:
        super()._physics(t, dt)
        self.wh[t] = float(self.budget.battery_wh[0])


def test_the_propulsion_energy_comes_out_of_the_battery() -> None:
    # no work runs: the only difference between the two runs is the thruster, fired in
    # eclipse so the battery pays all of it
    quiet = {"jobs": [{"name": "none", "flops_per_item": 1e9, "items": 1, "origin": "ground",
                       "times_s": [7000.0], "deadline_s": 100.0}]}
    w = _world(**quiet)
    (dark, _), *_ = eclipse_intervals(w.orbits, w.t0, w.t0 + 7200.0)[0]
    a = w.t0 + 10.0 * (int((dark - w.t0) / 10.0) + 2)  # on the step grid, in the dark
    b = a + 600.0
    draw = LifetimeDraw()
    draw.manoeuvres[0] = [(a, b)]
    base = _Battery(w)
    base.run()
    man = _Battery(dataclasses.replace(w, lifetime=draw))
    man.run()
    prof = man.nodes[0].spec.profile
    assert prof.lifetime is not None
    want_wh = prof.lifetime.propulsion_w * 600.0 / 3600.0 / prof.bus.discharge_efficiency
    assert base.wh[a] == man.wh[a]
    assert base.wh[b] - man.wh[b] == pytest.approx(want_wh, rel=1e-6)
    assert base.budget.battery_wh[1:].tolist() == man.budget.battery_wh[1:].tolist()


def _eventful(tmp_path: Path) -> Path:
    """The H100 profile with manoeuvres every few hours and a short-lived accelerator, so a
    2-hour run of 6 nodes has events of both kinds."""
    text = profile_path("starcloud-h100").read_text()
    for a, b in {'name = "starcloud-h100"': 'name = "h100-eventful"',
                 "manoeuvres_per_year = 33.0": "manoeuvres_per_year = 4000.0",
                 "manoeuvre_pause_s = 5700.0": "manoeuvre_pause_s = 900.0",
                 # a constant dose hazard of ~4,200 per year: most modules fail within hours
                 "hard_failure_dose_rad = 30000.0": "hard_failure_dose_rad = 0.1",
                 "hard_failure_shape = 4.0": "hard_failure_shape = 1.0"}.items():
        assert a in text, a
        text = text.replace(a, b)
    path = tmp_path / "h100-eventful.toml"
    path.write_text(text)
    return path


def test_a_seed_repeats_its_lifetime_events(tmp_path: Path) -> None:
    data = small(duration_hours=2.0, mission_year=4.0, lifetime_events=True,
                 profiles={"default": str(_eventful(tmp_path))})
    a = run_scenario(scenario(data), archive=False)
    b = run_scenario(scenario(data), archive=False)
    assert without_wall(a) == without_wall(b)
    life = a["lifetime"]
    assert life["manoeuvres"] > 0 and life["nodes_failed"] > 0
    assert life["accelerators_lost"] == life["nodes_failed"]  # one module per H100 node
    assert a["jobs_lost"] == 0 and a["duplicate_results"] == 0
    other = run_scenario(scenario({**data, "seed": 4}), archive=False)
    assert other["lifetime"] != life


def test_switching_the_events_off_changes_nothing() -> None:
    data = small(duration_hours=2.0, mission_year=4.0)
    off = run_scenario(scenario(data), archive=False)
    assert "lifetime" not in off
    # on, with nothing drawn: the wiring alone changes no figure of the run
    world = dataclasses.replace(build_world(scenario({**data, "lifetime_events": True})),
                                lifetime=LifetimeDraw())
    sim = MeteredSimulation(world)  # as run_scenario runs it
    sim.run()
    on = collect_metrics(sim)
    assert on.pop("lifetime") == {"nodes_failed": 0, "accelerators_lost": 0, "manoeuvres": 0,
                                  "manoeuvre_paused_s": 0.0, "propulsion_energy_j": 0.0}
    assert without_wall(on) == without_wall(off)
