"""Pipeline jobs in simulation: throughput and latency against ISL rate and geometry.

    .venv/bin/python bench/cluster_sim.py --json
    .venv/bin/python bench/cluster_sim.py --json --isl-gbps 1,10 --hours 0.5
    .venv/bin/python bench/cluster_sim.py --json --isl-gbps 1,10 --hours 0.25 --micro-batches 1,8

Runs examples/scenarios/pipeline-suncatcher.toml (81 TPU v6e satellites within ~1 km,
dawn-dusk SSO, 8 terminals) and pipeline-walker.toml (the same node and load on a Walker
53:81/9/1 shell at 650 km, 4 terminals to 5,000 km) with every node's ISL rate set to each
of ``--isl-gbps`` (range and everything else as in the scenario). The load is one
9-stage pipeline class of a 405B-class decoder (flightsw/sim/pipeline.py), arriving at
every node at about 60 % of the cluster's compute, for one orbit; then the run goes on
until admitted work is done or the deadline has passed. No telemetry archive.

``--start`` moves the mission (and the orbits' epoch) to another date, e.g. out of the
dawn-dusk orbit's eclipse season; ``--power-x F`` multiplies every node's battery and array
by F (energy then never holds work back: what the eclipse costs is the difference).
Chains are chosen by the ground's rule (flightsw/constellation/chain.py, the one function the
ground station and the simulator use). ``--no-predict`` gives it no tracks, so it plans on
links up now only (otherwise chains whose links the orbits predict to stay up over twice
the job's run time come first). ``--micro-batches 1,8`` runs each case once per count M
(``micro_batches`` of the class: each stage streams M micro-batches, GPipe-style);
``--no-count-planned`` leaves the stages planned on a node that have not reached it out of
its backlog as the chain rule sees it (the simulator's rule before 00437e8);
``--preload-stages`` gives every node every stage model from the start.

``--stages K`` cuts the class into K stages instead, its 126 layers split as
bench/cluster_jobs.py splits them (the first 126 mod K stages one layer more; weights and
work per stage as in that model, the same 32 KiB per item across each cut), and
``--rate-per-hour`` sets its arrivals.

Row keys: ``scenario``, ``isl_gbps``, ``predict``, ``count_planned``, ``preload_stages``,
``micro_batches``, ``stages``, ``rate_per_hour``,
``start``, ``power_x``, ``jobs_submitted``, ``jobs_completed``, ``jobs_per_hour`` and
``items_per_s`` (over the arrival window plus tail),
``latency_mean_s``, ``latency_p50_s``, ``latency_p95_s``, ``stage_s_mean`` and
``hop_s_mean`` (per job, summed over its micro-batches' stages and hops), ``wait_s_mean`` (the
rest of the latency: queues, energy deferrals; with M > 1 the streaming's overlap of
stages and hops comes off it, so it can fall below 0), ``stage_slowdown`` (stage seconds over the
same stages at the full mode: power modes below full), ``comm_share`` (hop over stage + hop
seconds), ``deadline_miss_rate``, ``replans`` (chains found again, one per micro-batch
re-planned), ``jobs_replanned`` (jobs with at least one), ``no_chain``, ``hops_broken``,
``returns``, ``sunlit_share`` (mean illumination of the nodes over the run's physics
steps), ``wall_s``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from flightsw.clock import VirtualClock
from flightsw.sim import Simulation, build_world, collect_metrics, load_scenario
from flightsw.sim.pipeline import stage_key

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = {
    "suncatcher-cluster": ROOT / "examples" / "scenarios" / "pipeline-suncatcher.toml",
    "walker-shell": ROOT / "examples" / "scenarios" / "pipeline-walker.toml",
}


LAYERS = 126  # dense-405b's layers (bench/cluster_jobs.py)


class _Lit(Simulation):
    """Also integrates the nodes' mean illumination over the physics steps."""

    lit_s = 0.0
    lit_dt = 0.0

    def _physics(self, t: float, dt: float) -> None:
        super()._physics(t, dt)
        if dt > 0:
            self.lit_s += dt * float(np.mean(self.budget.illum))
            self.lit_dt += dt


def layer_fractions(k: int, layers: int = LAYERS) -> list[float]:
    """Each of ``k`` stages' share of ``layers`` equal layers, the first ``layers % k`` one
    layer more (bench/cluster_jobs.py's split of dense-405b)."""
    if not 2 <= k <= layers:
        raise ValueError(f"--stages: {k} stages of {layers} layers (need 2..{layers})")
    return [(layers // k + (1 if i < layers % k else 0)) / layers for i in range(k)]


def run(path: Path, isl_gbps: float, hours: float | None, seed: int | None,
        predict: bool = True, start: str | None = None, power_x: float = 1.0,
        micro_batches: int | None = None, count_planned: bool = True,
        preload_stages: bool = False, stages: int | None = None,
        rate_per_hour: float | None = None) -> dict[str, Any]:
    sc = load_scenario(path)
    if stages is not None:  # the 126 layers split as bench/cluster_jobs.py splits them
        sc = sc.model_copy(update={"jobs": [
            j.model_copy(update={"stages": stages, "stage_fractions": layer_fractions(stages)})
            if j.stages > 1 else j for j in sc.jobs]})
    if rate_per_hour is not None:
        sc = sc.model_copy(update={"jobs": [
            j.model_copy(update={"rate_per_hour": rate_per_hour}) if j.stages > 1 else j
            for j in sc.jobs]})
    if micro_batches is not None:
        sc = sc.model_copy(update={"jobs": [
            j.model_copy(update={"micro_batches": micro_batches}) if j.stages > 1 else j
            for j in sc.jobs]})
    if start is not None:
        sc = sc.model_copy(update={"start": start})
    if hours is not None:
        sc = sc.model_copy(update={"duration_orbits": None, "duration_hours": hours})
    world = build_world(sc, seed=seed)
    profs: dict[int, Any] = {}
    for p in world.profiles:
        if id(p) not in profs:
            links = p.links.model_copy(update={"isl_rate_bps": isl_gbps * 1e9})
            bus = p.bus.model_copy(update={"battery_wh": p.bus.battery_wh * power_x,
                                           "array_area_m2": p.bus.array_area_m2 * power_x})
            profs[id(p)] = p.model_copy(update={"links": links, "bus": bus})
    world = dataclasses.replace(world, profiles=[profs[id(p)] for p in world.profiles])
    clock = VirtualClock(0.0)
    t0 = clock.perf_counter()
    sim = _Lit(world)
    sim.pipes.predict = predict
    sim.pipes.count_planned = count_planned
    if preload_stages:  # every node holds every stage model from the start
        for c in world.classes:
            for node in sim.nodes:
                for k in range(c.stages if c.stages > 1 else 0):
                    node.add_model(stage_key(c, k))
    sim.run()
    m = collect_metrics(sim)
    wall = clock.perf_counter() - t0
    (name,) = [c.name for c in world.classes if c.stages > 1]
    c = next(c for c in world.classes if c.stages > 1)
    p = m["pipeline"][name]
    tot = m["pipeline"]["totals"]
    # the same stages at the full mode of the first node (every node has the same profile)
    spec = sim.nodes[0].spec
    ideal = sum(spec.seconds(spec.work(c.flops_per_item * f, c.bytes_per_item * f,
                                       c.weight_bytes * f, round(c.mean_items())))
                for f in c.stage_fractions)
    done = p["jobs_completed"]
    return {
        "scenario": path.stem,
        "isl_gbps": isl_gbps,
        "predict": predict,
        "count_planned": count_planned,
        "preload_stages": preload_stages,
        "micro_batches": c.micro_batches,
        "stages": c.stages,
        "rate_per_hour": sc.jobs[0].rate_per_hour if len(sc.jobs) == 1 else None,
        "start": sc.start,
        "power_x": power_x,
        "jobs_submitted": p["jobs_submitted"],
        "jobs_completed": done,
        "jobs_per_hour": p["jobs_per_hour"],
        "items_per_s": p["items_per_s"],
        "latency_mean_s": p["latency_mean_s"],
        "latency_p50_s": p["latency_p50_s"],
        "latency_p95_s": p["latency_p95_s"],
        "stage_s_mean": p["stage_s_mean"],
        "hop_s_mean": p["hop_s_mean"],
        "wait_s_mean": (p["latency_mean_s"] - p["stage_s_mean"] - p["hop_s_mean"]
                        if done else None),
        "stage_slowdown": p["stage_s_mean"] / ideal if done else None,
        "comm_share": p["comm_share"],
        "deadline_miss_rate": m["per_class"][name]["deadline_miss_rate"],
        "replans": tot["replans"],
        "jobs_replanned": tot["jobs_replanned"],
        "no_chain": tot["no_chain"],
        "hops_broken": tot["hops_broken"],
        "returns": tot["returns"],
        "sunlit_share": sim.lit_s / sim.lit_dt if sim.lit_dt > 0 else None,
        "wall_s": wall,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--isl-gbps", default="1,10,100,800",
                    help="comma-separated ISL rates in Gbps (default 1,10,100,800)")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS),
                    help=f"comma-separated, of {', '.join(SCENARIOS)}")
    ap.add_argument("--hours", type=float, default=None,
                    help="arrival window in hours (default: the scenario's, one orbit)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--start", default=None,
                    help="mission start, ISO 8601 UTC (default: the scenario's, 21 June 2025)")
    ap.add_argument("--power-x", type=float, default=1.0,
                    help="multiply every node's battery and array by this (energy no limit)")
    ap.add_argument("--no-predict", action="store_true",
                    help="plan chains on links up now only (no prediction of breaks)")
    ap.add_argument("--micro-batches", default="",
                    help="comma-separated micro-batch counts M to run each case at "
                         "(default: the scenario's)")
    ap.add_argument("--no-count-planned", action="store_true",
                    help="leave the stages planned on a node but not arrived out of its "
                         "backlog as the chain rule sees it (the rule before)")
    ap.add_argument("--preload-stages", action="store_true",
                    help="every node holds every stage model from the start (the chain "
                         "rule then never prefers a member for the model it holds)")
    ap.add_argument("--stages", type=int, default=None,
                    help="cut the pipeline class into this many stages, its 126 layers "
                         "split as bench/cluster_jobs.py splits them (default: the "
                         "scenario's 9 equal stages)")
    ap.add_argument("--rate-per-hour", type=float, default=None,
                    help="the pipeline class's arrivals per hour (default: the scenario's)")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    args = ap.parse_args(argv)
    try:
        rates = [float(x) for x in args.isl_gbps.split(",") if x.strip()]
    except ValueError:
        ap.error(f"--isl-gbps: not a list of numbers: {args.isl_gbps!r}")
    if not args.power_x > 0:
        ap.error("--power-x: must be above 0")
    if not rates or any(r <= 0 for r in rates):
        ap.error("--isl-gbps: give one or more rates above 0")
    try:
        micro: list[int | None] = [int(x) for x in args.micro_batches.split(",")
                                   if x.strip()] or [None]
    except ValueError:
        ap.error(f"--micro-batches: not a list of integers: {args.micro_batches!r}")
    if any(m is not None and m < 1 for m in micro):
        ap.error("--micro-batches: give counts of 1 or more")
    if args.stages is not None and not 2 <= args.stages <= LAYERS:
        ap.error(f"--stages: give 2..{LAYERS} (one layer or more per stage)")
    if args.rate_per_hour is not None and not args.rate_per_hour > 0:
        ap.error("--rate-per-hour: must be above 0")
    names = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    bad = [s for s in names if s not in SCENARIOS]
    if bad:
        ap.error(f"--scenarios: unknown {bad}; have {', '.join(SCENARIOS)}")
    rows = []
    for name in names:
        for r in rates:
            for mb in micro:
                row = run(SCENARIOS[name], r, args.hours, args.seed, not args.no_predict,
                          args.start, args.power_x, mb, not args.no_count_planned,
                          args.preload_stages, args.stages, args.rate_per_hour)
                rows.append(row)
                print(json.dumps(row), file=sys.stderr if args.json else sys.stdout,
                      flush=True)
    if args.json:
        print(json.dumps({"rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
