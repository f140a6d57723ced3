"""Data-parallel training in simulation: step time, throughput and straggling against the
number of members, the ISL rate and the geometry, next to bench/cluster_jobs.py --train's
analytic model of the same case.

    .venv/bin/python bench/cluster_train_sim.py --json
    .venv/bin/python bench/cluster_train_sim.py --json --members 1,9 --isl-gbps 10,800

Sweep (``rows``): the training class of examples/scenarios/train-suncatcher.toml (a 1.2B
dense model, 16,384 tokens per member a step, 2.4 GB of bf16 gradients, ring all-reduce,
a step deadline that leaves the core the full mode) run for ``--steps`` steps on each of
``--members`` members, with every node's ISL rate set to each of ``--isl-gbps``, on the
Suncatcher-like formation (train-suncatcher.toml: 81 satellites within ~1 km, 8 terminals,
always in sunlight) and on the Walker shell of train-walker.toml (53:81/9/1, 4 terminals to
5,000 km, links that come and go). The simulator (flightsw/sim/training.py) runs each step
on every member's node core, waits for the slowest, then all-reduces over the chain the
shared chain rule picked. Row keys: ``geometry``, ``members``, ``isl_gbps``,
``steps_done``, ``step_s_mean``, ``step_s_p95``, ``items_per_s`` (tokens of the steps
kept per second of the run), ``speedup_vs_one_node`` (over one member of the same
geometry and rate), ``comm_share``, ``straggler_share``, ``replans``, ``redone_steps``,
``no_group`` (plans that found no chain: none when the run never started), ``wall_s``, and
``analytic``: bench/cluster_jobs.py's training() figures for the same members, rate,
profile and model (formation: no straggling; Walker: every member as slow as the
eclipse mode).

Straggler cost (``straggle``): nine members on a line along one orbit (Walker node,
3 deg apart) placed all in sunlight or five in the Earth's shadow (the trailing ones, near
the shadow's exit) when the run is launched, with the
batteries at 90 % or at 45 % (below the core's comfort level: 65 %), with no step
deadline (the core picks the mode and may hold a step for sunlight, energy-aware timing);
and the first nine satellites of the formation (one column) as the nine members, one of
them a node with a tenth of the heat capacity and a 0.3 m2 radiator starting at 60 C (it
passes its 65 C throttle within a minute at full mode, and is a member because all nine
are). Keys: ``case``,
``step_s_mean``, ``items_per_s``, ``straggler_share``, ``cost_vs_baseline`` (1 - items_per_s
over the baseline case's).
"""

from __future__ import annotations

import dataclasses
import sys
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, parser
from cluster_jobs import training as analytic

from flightsw.clock import VirtualClock
from flightsw.physics import sun
from flightsw.physics.orbit import CircularOrbits
from flightsw.sim import Simulation, build_world, collect_metrics, parse_scenario
from flightsw.timeutil import parse_iso

SCEN = ROOT / "examples" / "scenarios"
PARAMS = 1.2e9
TOKENS = 16384


def _data(name: str) -> dict[str, Any]:
    data = tomllib.loads((SCEN / name).read_text())
    data["name"] = Path(name).stem
    return data


def _run(data: dict[str, Any], *, isl_gbps: float | None = None, soc: float | None = None,
         hot: set[int] | None = None) -> tuple[dict[str, Any], float]:
    """The training block of one run (no tail after the mission: a run not done by then
    counts what it kept), and its wall seconds."""
    world = build_world(parse_scenario(data, source=data["name"], base_dir=SCEN))
    profs: dict[tuple[int, bool], Any] = {}
    out = []
    for i, p in enumerate(world.profiles):
        key = (id(p), i in (hot or set()))
        if key not in profs:
            q = p
            if isl_gbps is not None:
                q = q.model_copy(update={"links": q.links.model_copy(
                    update={"isl_rate_bps": isl_gbps * 1e9})})
            if soc is not None:
                q = q.model_copy(update={"bus": q.bus.model_copy(update={"initial_soc": soc})})
            if key[1]:
                q = q.model_copy(update={"thermal": q.thermal.model_copy(update={
                    "heat_capacity_j_per_k": q.thermal.heat_capacity_j_per_k / 10,
                    "radiator_area_m2": 0.3, "initial_c": 60.0})})
            profs[key] = q
        out.append(profs[key])
    world = dataclasses.replace(world, profiles=out)
    clock = VirtualClock(0.0)
    t0 = clock.perf_counter()
    sim = Simulation(world)
    sim.tail_max_s = 0.0
    sim.run()
    block = collect_metrics(sim)["training"]
    return next(iter(block.values())), clock.perf_counter() - t0


def _job(data: dict[str, Any], members: int, steps: int, **extra: Any) -> None:
    j = data["jobs"][0]
    j.update({"members": members, "train_steps": steps, **extra})
    j.pop("checkpoint_every", None)  # a re-plan restarts the short run


def sweep(members: list[int], rates: list[float], steps: int) -> list[dict[str, Any]]:
    rows = []
    for geometry, name in (("suncatcher", "train-suncatcher.toml"),
                           ("walker", "train-walker.toml")):
        prof = "suncatcher-tpu-v6e" if geometry == "suncatcher" else str(
            SCEN / "profiles" / "tpu-v6e-walker.toml")
        for g in rates:
            one: float | None = None
            for k in members:
                data = _data(name)
                _job(data, k, steps, step_deadline_s=0.6)
                # long enough for the slowest case (1 s a step + the all-reduce)
                per = 0.6 + 2 * 8 * 2.4e9 / (g * 1e9) + 2 * k * 0.02
                data.pop("duration_orbits", None)
                data["duration_hours"] = (60.0 + 1.5 * steps * per) / 3600.0
                tr, wall = _run(data, isl_gbps=g)
                ips = tr["items_per_s"]
                if k == 1:
                    one = ips
                an = analytic([k], [g], prof, PARAMS, TOKENS, geometry == "suncatcher",
                              "cap100")[0]
                rows.append({
                    "geometry": geometry, "members": k, "isl_gbps": g,
                    "steps_done": tr["steps_done"], "step_s_mean": tr["step_s_mean"],
                    "step_s_p95": tr["step_s_p95"], "items_per_s": ips,
                    "speedup_vs_one_node": (ips / one if ips and one else None),
                    "comm_share": tr["comm_share"], "straggler_share": tr["straggler_share"],
                    "replans": tr["replans"], "redone_steps": tr["redone_steps"],
                    "no_group": tr["no_group"], "wall_s": round(wall, 2),
                    "analytic": {x: an[x] for x in ("items_per_s", "speedup_vs_one_node",
                                                    "comm_share", "straggler_share")},
                })
                print(f"{geometry} K={k} {g} Gbps: {ips} items/s ({wall:.1f} s)",
                      file=sys.stderr)
    return rows


def _line_u0(start: str, after_s: float, shadowed: int) -> float:
    """The argument of latitude of the first of nine satellites 3 deg apart (53 deg, RAAN
    0, 650 km) at which ``shadowed`` of them are in the Earth's shadow ``after_s`` after
    ``start`` (the run's launch; for 0, the next 20 deg of the orbit too)."""
    t0 = parse_iso(start)
    orbit_t0 = t0
    t0 += after_s
    for u0 in np.arange(0.0, 360.0, 0.5):
        us = [float(u0) + 3.0 * k for k in range(9 + (7 if shadowed == 0 else 0))]
        orb = CircularOrbits([650.0] * len(us), [53.0] * len(us), [0.0] * len(us), us,
                             orbit_t0)
        lit = sun.illumination(orb.positions(t0), sun.sun_position_km(t0))
        if shadowed == 0 and np.all(lit > 0.5):
            return float(u0)
        if shadowed and int(np.sum(lit[:9] < 0.5)) == shadowed and lit[0] < 0.5:
            return float(u0)  # the leading ones in shadow: they stay there for the run
    raise SystemExit(f"no placement with {shadowed} of 9 in shadow")


def straggle(steps: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    walker = _data("train-walker.toml")
    start = walker["start"]
    launch = float(walker["jobs"][0]["times_s"][0])
    for shadowed in (0, 5):
        u0 = _line_u0(start, launch, shadowed)
        for soc in (0.9, 0.45):
            data = _data("train-walker.toml")
            data["constellation"] = {"isl_terminals": 4, "satellites": [
                {"name": f"L{k}", "altitude_km": 650.0, "inclination_deg": 53.0,
                 "raan_deg": 0.0, "arg_latitude_deg": u0 + 3.0 * k} for k in range(9)]}
            data["jobs"][0]["nodes"] = ["L0"]
            _job(data, 9, steps)
            data.pop("duration_orbits", None)
            data["duration_hours"] = 0.5
            tr, wall = _run(data, isl_gbps=100.0, soc=soc)
            rows.append({"case": f"line, {shadowed} of 9 in shadow, battery {soc:.0%}",
                         **_pick(tr), "wall_s": round(wall, 2)})
    data = _data("train-suncatcher.toml")
    sats = data["constellation"]["satellites"]
    data["constellation"]["satellites"] = sats[:9]  # the first column: all nine are members
    _job(data, 9, steps * 10, step_deadline_s=0.6)
    data["duration_hours"] = 0.3
    for hot in (set(), {1}):
        tr, wall = _run(data, hot=hot)
        rows.append({"case": "formation, 9 members" + (", one throttling" if hot else ""),
                     **_pick(tr), "wall_s": round(wall, 2)})
    for base, others in ((rows[0], rows[1:4]), (rows[4], rows[5:])):
        base["cost_vs_baseline"] = 0.0
        for r in others:
            a, b = r["items_per_s"], base["items_per_s"]
            r["cost_vs_baseline"] = round(1.0 - a / b, 4) if a and b else None
    return rows


def _pick(tr: dict[str, Any]) -> dict[str, Any]:
    return {k: tr[k] for k in ("steps_done", "step_s_mean", "step_s_p95", "items_per_s",
                                "straggler_share", "comm_share", "replans")}


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--members", default="1,3,9,27,81")
    p.add_argument("--isl-gbps", default="10,100,800,10000,40000")
    p.add_argument("--steps", type=int, default=20, help="steps per run in the sweep")
    p.add_argument("--straggle-steps", type=int, default=60,
                   help="steps per run of the straggler cases")
    p.add_argument("--no-sweep", action="store_true")
    p.add_argument("--no-straggle", action="store_true")
    a = p.parse_args()
    out: dict[str, Any] = {"params": PARAMS, "tokens_per_member_step": TOKENS}
    if not a.no_sweep:
        out["rows"] = sweep([int(x) for x in a.members.split(",")],
                            [float(x) for x in a.isl_gbps.split(",")], a.steps)
    if not a.no_straggle:
        out["straggle"] = straggle(a.straggle_steps)
    emit(out, a.json)


if __name__ == "__main__":
    main()
