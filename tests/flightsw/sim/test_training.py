"""Data-parallel training job classes in the simulator (``train_steps = N``): a step is the
slowest member's core time plus the modelled all-reduce, the ring and tree formulas, a lost
member re-plans from the checkpoint with the redone steps counted, a throttled member
straggles, and bad fields are refused naming the field."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sim_cases import T0, run_case, scenario, small

from flightsw.exceptions import ScenarioError
from flightsw.physics import sun
from flightsw.physics.constants import C_KM_S
from flightsw.physics.orbit import CircularOrbits
from flightsw.sim import Simulation, build_world, load_scenario
from flightsw.sim.metrics import dumps_metrics, without_wall
from flightsw.sim.training import allreduce_s

PROFILES = Path(__file__).resolve().parents[3] / "hardware_profiles"
# suncatcher-tpu-v6e figures (hardware_profiles/suncatcher-tpu-v6e.toml)
FULL_OPS = 918e12 * 0.45  # bf16 peak x efficiency, full mode
LOW_OPS = FULL_OPS * 0.58  # cap100
HBM_BPS = 1.638e12
DUAL = 2.0  # dual_execution runs the work twice
ISL_BPS = 800e9
PROC_S = 0.001

FLOPS = 7.2e9  # 6 x 1.2e9 parameters per token
WEIGHTS = 2.4e9
ITEMS = 16384
GRAD = 2.4e9


def _formation(n: int, **job: Any) -> dict[str, Any]:
    """``n`` TPU v6e satellites 0.6 km apart along one dawn-dusk orbit (each within the
    2 km terminal range of the next two), no ground station, one training run at 3 s."""
    sats = [{"name": f"S{k}", "altitude_km": 650.0, "inclination_deg": "sso",
             "raan_deg": "dawn-dusk", "arg_latitude_deg": 0.005 * k} for k in range(n)]
    data = small(constellation={"satellites": sats, "isl_terminals": 4},
                 profiles={"default": "suncatcher-tpu-v6e"}, ground_stations=[],
                 duration_hours=0.1, step_s=1.0)
    data["jobs"] = [{"name": "train", "flops_per_item": FLOPS, "weight_bytes": WEIGHTS,
                     "items": ITEMS, "times_s": [3.0], "nodes": ["S0"], "train_steps": 6,
                     "members": 3, "gradient_bytes": GRAD, "step_deadline_s": 0.6, **job}]
    return data


def _core_s(ops: float) -> float:
    return max(DUAL * FLOPS * ITEMS / ops, DUAL * WEIGHTS / HBM_BPS)


def _links(sim: Simulation, members: tuple[int, ...], t: float) -> tuple[list[float], float]:
    """Each chain link's latency at ``t`` from the orbits, and the closing link's."""
    pos = sim.w.orbits.positions(t)

    def lat(a: int, b: int) -> float:
        return float(np.linalg.norm(pos[b] - pos[a])) / C_KM_S + PROC_S

    return [lat(a, b) for a, b in itertools.pairwise(members)], lat(
        members[-1], members[0])


@pytest.mark.parametrize("kind", ["ring", "tree"])
def test_a_step_is_the_slowest_core_time_plus_the_modelled_allreduce(kind: str) -> None:
    sim, m = run_case(_formation(4, members=3, allreduce=kind))
    log = list(sim.trains.log)
    assert [r.step for r in log] == list(range(6))
    core = _core_s(FULL_OPS)  # the deadline of 0.6 s leaves only full mode (0.571 s)
    for r in log:
        assert len(set(r.members)) == 3
        assert r.member_s == pytest.approx((core,) * 3, abs=1e-6)
        lats, close = _links(sim, r.members, r.barrier)
        if kind == "ring":  # 2 (K-1) chunks of G/K, the longest ring edge's latency each:
            # the chain closed by its direct link (up: 1.2 km) or folded (0 -> 2 -> 1 -> 0)
            ring = min(max(*lats, close), sum(lats))
            want = 4 * (8 * GRAD / 3 / ISL_BPS + ring)
        else:  # 2 ceil(log2 3) = 4 transfers of G; level 1 spans both links
            want = 2 * (8 * GRAD / ISL_BPS + max(lats)) + 2 * (8 * GRAD / ISL_BPS + sum(lats))
        assert r.allreduce_s == pytest.approx(want, rel=1e-9)
        assert r.end - r.start == pytest.approx(core + want, abs=1e-6)
    for a, b in itertools.pairwise(log):
        assert b.start == a.end  # the next step starts when the all-reduce ends
    tr = m["training"]["train"]
    assert tr["steps_done"] == 6
    assert tr["runs_completed"] == 1
    assert tr["straggler_share"] == pytest.approx(0.0, abs=1e-6)
    step = core + log[0].allreduce_s
    assert tr["comm_share"] == pytest.approx(log[0].allreduce_s / step, rel=1e-4)
    assert tr["items_per_s"] == pytest.approx(3 * ITEMS / step, rel=1e-4)
    job = sim.ledger.jobs["j0000001"]
    assert job.outcome == "done"
    assert job.finished_at == pytest.approx(log[-1].end)
    assert m["jobs_lost"] == 0
    assert m["duplicate_results"] == 0


def test_ring_and_tree_formulas() -> None:
    g = 1e9
    rates = [10e9, 5e9, 10e9]
    lats = [0.001, 0.002, 0.003]
    # ring over 4: 6 chunks of g / 4 at the slowest 5 Gbps; folded onto the chain (0 -> 2
    # -> 3 -> 1 -> 0) its longest edge is 3 -> 1 over links 2 and 1 (0.005 s); closed by a
    # direct link of 0.5 ms, the longest is link 2 (0.003 s)
    assert allreduce_s("ring", g, rates, lats) == pytest.approx(6 * (8 * g / 4 / 5e9 + 0.005))
    assert allreduce_s("ring", g, rates, lats, 0.0005, 10e9) == pytest.approx(
        6 * (8 * g / 4 / 5e9 + 0.003))
    # a direct closing link of long latency: the folded ring is better
    assert allreduce_s("ring", g, rates, lats, 0.5, 10e9) == pytest.approx(
        6 * (8 * g / 4 / 5e9 + 0.005))
    # a closing link of short latency but slower than every chain link: the closed ring
    # runs at its 4 Gbps (6 x (0.5 + 0.003) s), slower than the folded ring at 5 Gbps
    assert allreduce_s("ring", g, rates, lats, 0.0005, 4e9) == pytest.approx(
        6 * (8 * g / 4 / 5e9 + 0.005))
    # ... and taken when it is still the faster ring: long chain hops, a 4.9 Gbps closure
    far = [0.01, 0.02, 0.03]  # folded: 0.05 s an edge; closed: 0.03 s
    assert allreduce_s("ring", g, rates, far, 0.0005, 4.9e9) == pytest.approx(
        6 * (8 * g / 4 / 4.9e9 + 0.03))
    with pytest.raises(ValueError, match="closing_rate_bps"):
        allreduce_s("ring", g, rates, lats, 0.0005)
    # folded over 5 (0 -> 2 -> 4 -> 3 -> 1 -> 0): edges span links 0+1, 2+3, 3, 2+1, 0
    assert allreduce_s("ring", g, [1e9] * 4, [0.01, 0.02, 0.03, 0.04]) == pytest.approx(
        8 * (8 * g / 5 / 1e9 + 0.07))
    assert allreduce_s("ring", g, [1e9], [0.01]) == pytest.approx(2 * (8 * g / 2 / 1e9 + 0.01))
    # tree over 4: level 0 pairs (0,1), (2,3) (worst latency 0.003), level 1 pairs (0,2)
    # over links 0 and 1 (0.003); each level up and down with the whole gradient
    assert allreduce_s("tree", g, rates, lats) == pytest.approx(
        2 * (8 * g / 5e9 + 0.003) + 2 * (8 * g / 5e9 + 0.003))
    # tree over 5: 3 levels; level 0 pairs (0,1), (2,3) (member 4 waits: 0.03), level 1
    # (0,2) over links 0 and 1 (0.03), level 2 (0,4) over all four links (0.1)
    five = [1e9] * 4
    assert allreduce_s("tree", g, five, [0.01, 0.02, 0.03, 0.04]) == pytest.approx(
        2 * (8.0 + 0.03) + 2 * (8.0 + 0.03) + 2 * (8.0 + 0.1))
    assert allreduce_s("ring", g, [], []) == 0.0
    assert allreduce_s("tree", g, [], []) == 0.0
    # the bandwidth term of the ring is the analytic model's (bench/cluster_jobs.py --train)
    k = 81
    ring = allreduce_s("ring", g, [1e9] * (k - 1), [0.0] * (k - 1))
    assert ring == pytest.approx(2 * (k - 1) / k * 8 * g / 1e9)
    with pytest.raises(ValueError, match="kind"):
        allreduce_s("mesh", g, rates, lats)


def test_a_member_crash_replans_from_the_checkpoint_and_the_job_is_done_once() -> None:
    data = _formation(5, members=3, spares=1, train_steps=12, checkpoint_every=4)
    sim, _ = run_case(data)
    log = list(sim.trains.log)
    step6 = log[6]
    victim = step6.members[1]
    crash_s = (step6.start + step6.barrier) / 2 - T0  # while its step 6 runs
    data["faults"] = [{"kind": "crash", "node": f"S{victim}", "at_s": crash_s}]
    sim, m = run_case(data)
    tr = m["training"]["train"]
    assert tr["replans"] == 1
    assert tr["members_lost"] == 1
    assert tr["redone_steps"] == 2  # steps 4 and 5 after the checkpoint at 4
    assert tr["steps_done"] == 12 + 2
    assert tr["runs_completed"] == 1
    log = list(sim.trains.log)
    assert [r.step for r in log] == [*range(6), *range(4, 12)]
    assert all(victim not in r.members for r in log[6:])
    assert all(len(set(r.members)) == 3 for r in log)  # the spare took its place
    assert log[6].plan_no > log[5].plan_no
    # found lost at the next check (every step_s = 1 s) after the crash
    assert T0 + crash_s < log[6].start <= T0 + crash_s + 1.0 + 1e-6
    job = sim.ledger.jobs["j0000001"]
    assert job.outcome == "done"
    assert sim.ledger.recorded[job.jid] == 1
    assert m["jobs_completed"] == 1
    assert m["jobs_lost"] == 0
    assert m["duplicate_results"] == 0


def test_with_no_spare_the_run_goes_on_with_fewer_members() -> None:
    data = _formation(3, members=3, train_steps=8, checkpoint_every=2)
    sim, _ = run_case(data)
    s3 = sim.trains.log[3]
    crash_s = (s3.start + s3.barrier) / 2 - T0
    data["faults"] = [{"kind": "crash", "node": f"S{s3.members[0]}", "at_s": crash_s}]
    sim, m = run_case(data)
    tr = m["training"]["train"]
    assert tr["redone_steps"] == 1  # step 2, after the checkpoint at 2
    assert [len(r.members) for r in sim.trains.log] == [3, 3, 3, 2, 2, 2, 2, 2, 2]
    assert tr["runs_completed"] == 1


def test_every_member_lost_fails_the_run_once() -> None:
    data = _formation(1, members=1, train_steps=8)
    sim, _ = run_case(data)
    s2 = sim.trains.log[2]
    data["faults"] = [{"kind": "crash", "node": "S0",
                       "at_s": (s2.start + s2.barrier) / 2 - T0}]
    sim, m = run_case(data)
    job = sim.ledger.jobs["j0000001"]
    assert job.outcome == "failed"
    assert "every member lost" in job.reason
    assert m["jobs_lost"] == 0
    assert m["duplicate_results"] == 0


def _hot_profile(tmp_path: Path, max_c: float | None = None) -> Path:
    """The TPU v6e node starting at 60 C with a tenth of its heat capacity and a radiator
    too small for full mode: it passes its throttle temperature (65 C) within a minute of
    full-mode steps."""
    text = (PROFILES / "suncatcher-tpu-v6e.toml").read_text()
    text = text.replace('name = "suncatcher-tpu-v6e"', 'name = "hot-tpu-v6e"')
    text = text.replace("heat_capacity_j_per_k = 32000.0", "heat_capacity_j_per_k = 3200.0")
    text = text.replace("initial_c = 20.0", "initial_c = 60.0")
    text = text.replace("radiator_area_m2 = 0.8", "radiator_area_m2 = 0.3")
    if max_c is not None:  # safe mode (over-temperature) soon after the throttle
        text = text.replace("throttle_c = 65.0", f"throttle_c = {max_c - 2.0}")
        text = text.replace("max_c = 80.0", f"max_c = {max_c}")
    out = tmp_path / "hot-tpu-v6e.toml"
    out.write_text(text)
    return out


def test_a_throttled_member_straggles(tmp_path: Path) -> None:
    hot = _hot_profile(tmp_path)
    data = _formation(3, members=3, train_steps=400)
    data["duration_hours"] = 0.2
    _, mc = run_case(data)
    data["profiles"] = {"default": "suncatcher-tpu-v6e", "nodes": {"S1": str(hot)}}
    sim, m = run_case(data)
    assert mc["training"]["train"]["straggler_share"] == pytest.approx(0.0, abs=1e-6)
    tr = m["training"]["train"]
    assert tr["runs_completed"] == 1
    # steps the hot member ran throttled (cap100) are the slowest: the barrier waits. The
    # step it throttled in was stopped and re-run at cap100 (longer still); a step started
    # throttled takes the cap100 time exactly
    slow = [r for r in sim.trains.log if max(r.member_s) > 1.01 * min(r.member_s)]
    assert slow
    low = _core_s(LOW_OPS)
    for r in slow:
        assert r.members[int(np.argmax(r.member_s))] == 1
        assert max(r.member_s) >= low - 1e-6
        assert sorted(r.member_s)[:2] == pytest.approx([_core_s(FULL_OPS)] * 2, abs=1e-6)
    assert any(max(r.member_s) == pytest.approx(low, abs=1e-6) for r in slow)
    assert tr["straggler_share"] > 0.0
    assert tr["step_s_mean"] > mc["training"]["train"]["step_s_mean"]
    assert tr["items_per_s"] < mc["training"]["train"]["items_per_s"]


@pytest.mark.parametrize(
    ("fields", "where", "says"),
    [
        ({"train_steps": 0, "members": 3}, "jobs[0]", "members: only for a training class"),
        ({"train_steps": 0, "allreduce": "ring"}, "jobs[0]",
         "allreduce: only for a training class"),
        ({"train_steps": -1}, "jobs[0].train_steps", "greater than or equal to 0"),
        ({"members": 0}, "jobs[0].members", "greater than or equal to 1"),
        ({"members": 2.5}, "jobs[0].members", "integer"),
        ({"allreduce": "mesh"}, "jobs[0].allreduce", "'ring' or 'tree'"),
        ({"gradient_bytes": -1.0}, "jobs[0].gradient_bytes", "greater than or equal to 0"),
        ({"checkpoint_every": 0}, "jobs[0].checkpoint_every", "greater than or equal to 1"),
        ({"checkpoint_every": 7}, "jobs[0]", "checkpoint_every: 7 is more than train_steps"),
        ({"spares": -1}, "jobs[0].spares", "greater than or equal to 0"),
        ({"step_deadline_s": 0.0}, "jobs[0].step_deadline_s", "greater than 0"),
        ({"stages": 2}, "jobs[0]", "train_steps: a training class cannot also be a pipeline"),
        ({"deadline_s": 60.0}, "jobs[0]", "deadline_s: not for a training class"),
    ],
)
def test_bad_training_fields_are_refused_naming_the_field(fields: dict[str, Any], where: str,
                                                           says: str) -> None:
    data = _formation(4)
    data["jobs"][0].update(fields)
    if fields.get("train_steps") == 0:
        for f in ("members", "gradient_bytes", "step_deadline_s"):
            if f not in fields:
                data["jobs"][0].pop(f)
    with pytest.raises(ScenarioError) as err:
        scenario(data)
    assert f"test: {where}" in str(err.value)
    assert says in str(err.value)


def test_more_members_than_satellites_is_refused() -> None:
    with pytest.raises(ScenarioError, match=r"jobs\[0\]\.members: 5 members need as many "
                                            r"satellites; the constellation has 4"):
        build_world(scenario(_formation(4, members=5)))


def test_infinite_gradient_bytes_are_refused() -> None:
    with pytest.raises(ScenarioError, match=r"jobs\[0\]\.gradient_bytes: must be finite"):
        scenario(_formation(4, gradient_bytes=math.inf))


@pytest.mark.parametrize("at", [20, 23])
def test_a_chain_link_down_past_the_lease_replans_the_run_from_the_current_step(
        at: int) -> None:
    """No member is lost, so the run keeps its steps: only the step under way is done again
    (at 20 a checkpoint was just taken, at 23 it is three steps old)."""
    data = _formation(4, members=3, train_steps=40, checkpoint_every=10)
    data["scheduler"] = {"policy": "local", "lease_s": 5.0}
    sim, _ = run_case(data)
    s20 = sim.trains.log[at]
    a, b = s20.members[0], s20.members[1]
    start = (s20.start + s20.barrier) / 2 - T0  # during step 20's compute
    data["faults"] = [{"kind": "isl_outage", "node": f"S{a}", "peer": f"S{b}",
                       "start_s": start, "end_s": start + 30.0}]
    sim, m = run_case(data)
    tr = m["training"]["train"]
    assert tr["link_timeouts"] == 1
    assert tr["replans"] == 1
    assert tr["members_lost"] == 0
    assert tr["redone_steps"] == 0
    assert tr["steps_done"] == 40
    log = list(sim.trains.log)
    assert [r.step for r in log] == list(range(40))
    # the step waited for the link past the 5 s lease (looked at every 1 s), then ran
    # again on a chain without that link
    redo = log[at]
    assert log[at - 1].plan_no == s20.plan_no
    assert redo.plan_no > s20.plan_no
    assert redo.start - T0 > start + 5.0
    pairs = set(itertools.pairwise(redo.members))
    assert (a, b) not in pairs and (b, a) not in pairs
    assert tr["runs_completed"] == 1


def _walker_profile(tmp_path: Path, soc: float) -> Path:
    src = Path(__file__).resolve().parents[3] / "examples/scenarios/profiles/tpu-v6e-walker.toml"
    text = src.read_text().replace("initial_soc = 0.9", f"initial_soc = {soc}")
    assert f"initial_soc = {soc}" in text
    out = tmp_path / "tpu-v6e-walker.toml"
    out.write_text(text)
    return out


def test_members_in_shadow_below_comfort_hold_the_step_for_sunlight(tmp_path: Path) -> None:
    """Nine satellites 3 deg apart on one orbit, the five trailing ones in the Earth's
    shadow near its exit when the run starts; no step deadline, so a core whose battery is
    below its comfort level holds its step for sunlight (energy-aware timing)."""
    launch = 60.0
    u0 = None
    for u in np.arange(0.0, 360.0, 0.5):
        us = [float(u) + 3.0 * k for k in range(9)]
        orb = CircularOrbits([650.0] * 9, [53.0] * 9, [0.0] * 9, us, T0)
        lit = sun.illumination(orb.positions(T0 + launch), sun.sun_position_km(T0 + launch))
        if int(np.sum(lit < 0.5)) == 5 and lit[0] < 0.5:
            u0 = float(u)
            break
    assert u0 is not None
    sats = [{"name": f"L{k}", "altitude_km": 650.0, "inclination_deg": 53.0, "raan_deg": 0.0,
             "arg_latitude_deg": u0 + 3.0 * k} for k in range(9)]
    out = {}
    for soc in (0.9, 0.45):
        data = small(constellation={"satellites": sats, "isl_terminals": 4},
                     profiles={"default": str(_walker_profile(tmp_path, soc))},
                     ground_stations=[], duration_hours=0.2, step_s=5.0)
        data["jobs"] = [{"name": "train", "flops_per_item": FLOPS, "weight_bytes": WEIGHTS,
                         "items": ITEMS, "times_s": [launch], "nodes": ["L0"],
                         "train_steps": 20, "members": 9, "gradient_bytes": GRAD}]
        sim, m = run_case(data)
        out[soc] = (sim, m["training"]["train"])
    assert out[0.9][1]["straggler_share"] == pytest.approx(0.0, abs=1e-6)
    sim, tr = out[0.45]
    assert tr["runs_completed"] == 1
    assert tr["straggler_share"] > 0.3
    held = max(sim.trains.log, key=lambda r: max(r.member_s))
    slowest = held.members[int(np.argmax(held.member_s))]
    assert slowest in range(5)  # one of the five in shadow
    assert max(held.member_s) > 60.0  # held for sunlight, not a slower mode
    assert tr["step_s_mean"] > out[0.9][1]["step_s_mean"]


def test_the_example_scenarios_hold_the_documented_training_classes() -> None:
    scen = Path(__file__).resolve().parents[3] / "examples/scenarios"
    sun_w = build_world(load_scenario(scen / "train-suncatcher.toml"))
    (c,) = sun_w.classes
    assert (c.train_steps, c.members, c.allreduce, c.checkpoint_every) == (300, 81, "ring", 50)
    assert c.gradient_bytes == 2.4e9 and c.step_deadline_s == 0.6
    assert sun_w.n == 81
    walk = build_world(load_scenario(scen / "train-walker.toml"))
    (c,) = walk.classes
    assert (c.train_steps, c.members, c.spares, c.checkpoint_every) == (1200, 9, 4, 25)
    assert walk.n == 81


def test_a_seed_gives_the_same_training_metrics() -> None:
    data = _formation(5, members=3, spares=1, train_steps=10, checkpoint_every=4)
    a = dumps_metrics(without_wall(run_case(data)[1]))
    b = dumps_metrics(without_wall(run_case(data)[1]))
    assert a == b
    assert '"training"' in a


def test_a_member_in_safe_mode_is_lost_and_the_run_goes_on_without_it(tmp_path: Path) -> None:
    hot = _hot_profile(tmp_path, max_c=66.0)
    data = _formation(3, members=3, train_steps=200, checkpoint_every=10)
    data["profiles"] = {"default": "suncatcher-tpu-v6e", "nodes": {"S1": str(hot)}}
    sim, m = run_case(data)
    assert sim.nodes[1].safe_mode  # over-temperature: it stays there
    tr = m["training"]["train"]
    assert tr["members_lost"] == 1
    assert tr["replans"] == 1
    log = list(sim.trains.log)
    cut = next(k for k, r in enumerate(log) if len(r.members) == 2)
    assert all(1 in r.members for r in log[:cut])
    assert all(set(r.members) == {0, 2} for r in log[cut:])
    assert log[cut].step % 10 == 0  # from the last checkpoint
    assert tr["redone_steps"] == log[cut - 1].step + 1 - log[cut].step
    assert tr["steps_done"] == 200 + tr["redone_steps"]
    assert tr["runs_completed"] == 1
    assert m["jobs_lost"] == 0


def test_the_step_log_keeps_only_the_last_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """``Trainings.log`` is bounded (``log_steps``): a long run does not grow it."""
    monkeypatch.setattr("flightsw.sim.training.Trainings.log_steps", 4)
    sim, m = run_case(_formation(4, members=3, train_steps=10))
    assert m["training"]["train"]["steps_done"] == 10
    assert [r.step for r in sim.trains.log] == [6, 7, 8, 9]
