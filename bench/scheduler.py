"""Every placement policy on the same seeded scenarios, against an upper bound (the
scheduler benchmark).

    .venv/bin/python bench/scheduler.py --regime all --seeds 1,2 --json
    .venv/bin/python bench/scheduler.py --regime energy --seeds 1,2,3,4,5   # markdown tables
    .venv/bin/python bench/scheduler.py --seeds 1,2,3,4,5      # benchmark.toml, no bound
    .venv/bin/python bench/scheduler.py --regime energy --from-sweep DIR > runs.json

A regime is a scenario fixed before any tuning (``examples/scenarios/regime-*.toml``):
``compute`` (the benchmark: H100s, compute binds), ``energy`` (Equinox-like: 143 Orin Nano
CubeSats with small arrays), ``contact`` (OEC-like: imaging CubeSat trains, two stations).
Each runs once per policy and seed, all runs of a seed seeing the same arrivals, faults and
physics; only the placement decision differs. Per seed it also solves the fluid upper
bound on value (:mod:`flightsw.sim.bound`), and reports every policy's value as a share of
the gap between the best baseline (every policy but ``forecast``, the project's own) and
that bound: 0 is the best baseline, 1 the bound.

With --json prints one object per regime: ``policies`` (per policy the headline figures of
every seed and their means), ``bound`` (per seed), ``best_baseline`` and ``share_of_gap``
(per policy, per seed and mean). Without --regime it runs --scenario (default
benchmark.toml) without the bound, as before.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from flightsw.constellation import POLICIES
from flightsw.sim import build_world, load_scenario
from flightsw.sim.bound import value_bound
from flightsw.sim.metrics import MeteredSimulation, collect_metrics

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "examples" / "scenarios"
REGIMES = {
    "compute": SCENARIOS / "regime-compute.toml",
    "energy": SCENARIOS / "regime-energy.toml",
    "contact": SCENARIOS / "regime-contact.toml",
}
OWN = "forecast"  # the project's own policy; every other one is a baseline
BOUND_SLOT_S = 300.0  # slot of the fluid bound (smaller: tighter and slower)
HEADLINE = (
    "value_goodput", "value_submitted", "jobs_submitted", "jobs_completed", "jobs_lost",
    "duplicate_results", "deadline_miss_rate", "latency_p50_s", "latency_p95_s",
    "latency_p99_s", "energy_per_job_j", "battery_floor_violation_s", "thermal_violation_s",
    "migrations", "migrations_per_job", "migration_bytes", "preemptions",
    "battery_reserve_mean", "battery_soc_mean", "wall_s",
)


def _run(args: tuple[str, str, int]) -> tuple[str, str, int, dict[str, Any]]:
    scenario, policy, seed = args
    world = build_world(load_scenario(Path(scenario)), policy=policy, seed=seed)
    sim = MeteredSimulation(world)
    sim.run()
    return "run", policy, seed, collect_metrics(sim)


def _bound(args: tuple[str, int, float]) -> tuple[str, str, int, dict[str, Any]]:
    scenario, seed, slot_s = args
    t = time.perf_counter()
    world = build_world(load_scenario(Path(scenario)), seed=seed)
    b = value_bound(world, slot_s=slot_s)
    names = {c.index: c.name for c in world.classes}
    return "bound", "", seed, {
        "value": b.value, "value_submitted": b.value_submitted, "slot_s": b.slot_s,
        "per_class": {names[k]: v for k, v in b.per_class.items()},
        "variables": b.variables, "constraints": b.constraints, "solve_s": b.solve_s,
        "wall_s": time.perf_counter() - t,
    }


def _mean(values: list[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return sum(got) / len(got) if got else None


def _headline(m: dict[str, Any]) -> dict[str, Any]:
    out = {k: m.get(k) for k in HEADLINE}
    out["latency_p95_by_class_s"] = {c: f["latency_p95_s"] for c, f in m["per_class"].items()}
    out["miss_rate_by_class"] = {c: f["deadline_miss_rate"] for c, f in m["per_class"].items()}
    return out


def run(scenario: Path, policies: list[str], seeds: list[int], workers: int,
        bound_slot_s: float | None) -> dict[str, Any]:
    """Every policy on every seed of ``scenario`` (and the bound per seed unless None)."""
    tasks: list[Any] = []
    if bound_slot_s is not None:  # the slowest tasks first
        tasks += [(_bound, (str(scenario), s, bound_slot_s)) for s in seeds]
    tasks += [(_run, (str(scenario), p, s)) for s in seeds for p in policies]
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(fn, a) for fn, a in tasks]
            done = [f.result() for f in futures]
    else:
        done = [fn(a) for fn, a in tasks]
    by: dict[str, dict[int, dict[str, Any]]] = {p: {} for p in policies}
    bounds: dict[int, dict[str, Any]] = {}
    for kind, policy, seed, got in done:
        if kind == "bound":
            bounds[seed] = got
        else:
            by[policy][seed] = _headline(got)
    return assemble(scenario, seeds, policies, by, bounds)


def from_sweep(directory: Path, scenario: Path) -> dict[str, Any]:
    """One regime's result (as :func:`run` without the bound) from the runs a
    ``flightsw sweep`` stored under ``directory/runs`` (e.g. examples/sweeps/regime-energy.toml,
    which can be stopped and resumed); only seeds every policy has finished are used."""
    by: dict[str, dict[int, dict[str, Any]]] = {}
    for path in sorted((directory / "runs").glob("*.json")):
        rec = json.loads(path.read_text())
        if rec.get("status") != "ok":
            continue
        m = rec["metrics"]
        m = json.loads(m) if isinstance(m, str) else m
        m["wall_s"] = rec.get("host", {}).get("run_wall_s")
        by.setdefault(m["policy"], {})[int(m["seed"])] = _headline(m)
    if not by:
        raise SystemExit(f"from-sweep: no finished run under {directory / 'runs'}")
    seeds = sorted(set.intersection(*(set(r) for r in by.values())))
    if not seeds:
        raise SystemExit(f"from-sweep: no seed finished by every policy in {directory}")
    policies = [p for p in POLICIES if p in by] + [p for p in by if p not in POLICIES]
    return assemble(scenario, seeds, policies,
                    {p: {s: by[p][s] for s in seeds} for p in policies}, {})


def assemble(scenario: Path, seeds: list[int], policies: list[str],
             by: dict[str, dict[int, dict[str, Any]]],
             bounds: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """A regime's result from each policy's headline figures per seed (and bounds)."""
    out: dict[str, Any] = {"scenario": str(scenario.relative_to(ROOT) if scenario.is_relative_to(
        ROOT) else scenario), "seeds": seeds, "policies": {}}
    for p in policies:
        runs = by[p]
        means: dict[str, Any] = {k: _mean([runs[s][k] for s in seeds]) for k in HEADLINE
                 if all(isinstance(runs[s][k], int | float) or runs[s][k] is None
                        for s in seeds)}
        classes = runs[seeds[0]]["latency_p95_by_class_s"]
        means["latency_p95_by_class_s"] = {
            c: _mean([runs[s]["latency_p95_by_class_s"][c] for s in seeds]) for c in classes}
        means["miss_rate_by_class"] = {
            c: _mean([runs[s]["miss_rate_by_class"][c] for s in seeds]) for c in classes}
        out["policies"][p] = {"seeds": {str(s): runs[s] for s in seeds}, "mean": means}
    if bounds:
        out["bound"] = {str(s): bounds[s] for s in seeds}
    return summarise(out)


def summarise(out: dict[str, Any]) -> dict[str, Any]:
    """Add ``best_baseline`` and ``share_of_gap`` (per policy, per seed and mean) to one
    regime's result, from its ``policies`` and ``bound``."""
    bound = out.get("bound")
    if not bound or not out["policies"]:  # a bound-only run: nothing to compare yet
        return out
    seeds = [str(s) for s in out["seeds"]]
    pols = out["policies"]

    def value(p: str, s: str) -> float:
        return float(pols[p]["seeds"][s]["value_goodput"])

    baselines = [p for p in pols if p != OWN]
    best = {s: max(value(p, s) for p in baselines) for s in seeds}
    out["best_baseline"] = {s: max(baselines, key=lambda p: value(p, s)) for s in seeds}
    share: dict[str, dict[str, float | None]] = {}
    for p in pols:
        per: dict[str, float | None] = {}
        for s in seeds:
            gap = float(bound[s]["value"]) - best[s]
            per[s] = (value(p, s) - best[s]) / gap if gap > 1e-9 else None
        per["mean"] = _mean([per[s] for s in seeds])
        share[p] = per
    out["share_of_gap"] = share
    return out


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One regime's result from several runs of the same seeds (e.g. policies added later):
    the union of their policies, the bound of the first that has one, shares recomputed."""
    out = dict(parts[0])
    out["policies"] = {}
    for part in parts:
        if part["seeds"] != out["seeds"]:
            raise SystemExit(f"merge: seeds differ ({part['seeds']} vs {out['seeds']})")
        out["policies"].update(part["policies"])
        if "bound" not in out and "bound" in part:
            out["bound"] = part["bound"]
    out["bench_wall_s"] = sum(float(p.get("bench_wall_s", 0.0)) for p in parts)
    return summarise(out)


def _f(v: Any, fmt: str = ",.0f") -> str:
    return "-" if v is None else format(v, fmt)


def table(result: dict[str, Any]) -> str:
    """Markdown: the means over seeds per policy, then value per seed."""
    seeds = result["seeds"]
    got_pols = result["policies"]
    order = [p for p in POLICIES if p in got_pols] + [p for p in got_pols if p not in POLICIES]
    pols = {p: got_pols[p] for p in order}
    first = next(iter(pols.values()))["mean"]
    classes = list(first["latency_p95_by_class_s"])
    bound = result.get("bound")
    cols = ["policy", "value", "of bound", "share of gap", "reserve", "J/job",
            *(f"p95 {c} s" for c in classes), *(f"miss {c}" for c in classes),
            "mig/job", "preempt", "floor s", "thermal s", "lost", "dup"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    b_mean = _mean([bound[str(s)]["value"] for s in seeds]) if bound else None
    for p, got in pols.items():
        m = got["mean"]
        share = result.get("share_of_gap", {}).get(p, {}).get("mean")
        row = [p, _f(m["value_goodput"]),
               _f(m["value_goodput"] / b_mean, ".3f") if b_mean else "-",
               _f(share, "+.3f"), _f(m.get("battery_reserve_mean"), ".3f"),
               _f(m["energy_per_job_j"]),
               *(_f(m["latency_p95_by_class_s"][c]) for c in classes),
               *(_f(m["miss_rate_by_class"][c], ".3f") for c in classes),
               _f(m["migrations_per_job"], ".3f"), _f(m["preemptions"]),
               _f(m["battery_floor_violation_s"]), _f(m["thermal_violation_s"]),
               _f(m["jobs_lost"]), _f(m["duplicate_results"])]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "| value | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |",
              "|" + "---|" * (len(seeds) + 2)]
    for p, got in pols.items():
        vals = [got["seeds"][str(s)]["value_goodput"] for s in seeds]
        lines.append(f"| {p} | " + " | ".join(_f(v) for v in vals)
                     + f" | {_f(got['mean']['value_goodput'])} |")
    if bound:
        vals = [bound[str(s)]["value"] for s in seeds]
        lines.append("| *upper bound* | " + " | ".join(_f(v) for v in vals)
                     + f" | {_f(_mean(list(vals)))} |")
    sub = [next(iter(pols.values()))["seeds"][str(s)]["value_submitted"] for s in seeds]
    lines.append("| *submitted* | " + " | ".join(_f(v) for v in sub)
                 + f" | {_f(_mean(list(sub)))} |")
    if bound:
        lines += ["", "best baseline per seed: " + ", ".join(
            f"{s}: {result['best_baseline'][str(s)]}" for s in seeds),
            "bound solve s per seed: " + ", ".join(
            f"{s}: {bound[str(s)]['wall_s']:.0f}" for s in seeds)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regime", choices=[*REGIMES, "all"], default=None,
                        help="a fixed regime (with the upper bound), or all three")
    parser.add_argument("--scenario", type=Path, default=SCENARIOS / "benchmark.toml",
                        help="without --regime: the scenario (no bound unless --bound)")
    parser.add_argument("--bound", action="store_true", help="with --scenario: solve the bound")
    parser.add_argument("--bound-slot-s", type=float, default=BOUND_SLOT_S)
    parser.add_argument("--no-bound", action="store_true",
                        help="with --regime: skip the bound (to --merge with a run that has it)")
    parser.add_argument("--seeds", default=None,
                        help="comma-separated seeds (default: the scenario's)")
    parser.add_argument("--policies", default=",".join(POLICIES),
                        help="comma-separated policies (default: all)")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--merge", nargs="+", type=Path, default=None, metavar="JSON",
                        help="print the tables of earlier --json outputs, merged per regime")
    parser.add_argument("--from-sweep", type=Path, default=None, metavar="DIR",
                        help="with --regime R: the policies' runs stored by `flightsw sweep` "
                             "in DIR, as --json output (merge it with a bound-only run: "
                             "--regime R --policies '' --json)")
    args = parser.parse_args(argv)
    if args.from_sweep is not None:
        if args.regime not in REGIMES:
            parser.error("--from-sweep needs --regime compute, energy or contact")
        got = {args.regime: from_sweep(args.from_sweep, REGIMES[args.regime])}
        json.dump(got, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    if args.merge:
        loaded = [json.loads(p.read_text()) for p in args.merge]
        merged = {r: merge([d[r] for d in loaded if r in d])
                  for r in dict.fromkeys(r for d in loaded for r in d)}
        for name, res in merged.items():
            if args.json:
                continue
            print(f"## {name}: {res['scenario']}\n\n{table(res)}\n")
        if args.json:
            json.dump(merged, sys.stdout, indent=2, sort_keys=True)
            sys.stdout.write("\n")
        return 0
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    if args.regime is None:
        todo = {"scenario": (args.scenario, args.bound_slot_s if args.bound else None)}
    else:
        names = list(REGIMES) if args.regime == "all" else [args.regime]
        todo = {r: (REGIMES[r], None if args.no_bound else args.bound_slot_s) for r in names}
    results: dict[str, Any] = {}
    for name, (path, slot) in todo.items():
        seeds = ([int(s) for s in args.seeds.split(",")] if args.seeds
                 else [load_scenario(path).seed])
        t = time.perf_counter()
        results[name] = run(path, policies, seeds, args.workers, slot)
        results[name]["bench_wall_s"] = time.perf_counter() - t
        if not args.json:
            print(f"## {name}: {results[name]['scenario']} "
                  f"({results[name]['bench_wall_s']:.0f} s)\n")
            print(table(results[name]) + "\n", flush=True)
    if args.json:
        json.dump(results, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
