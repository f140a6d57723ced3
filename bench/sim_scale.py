"""Simulator throughput: 100 to 10,000 satellites with the benchmark's per-node job load.

    .venv/bin/python bench/sim_scale.py --json                   # 1,000 satellites, 24 h
    .venv/bin/python bench/sim_scale.py --json --sweep           # 100 / 1,000 / 10,000
    .venv/bin/python bench/sim_scale.py --json --hours 3 --antennas 4  # 4 per station

The scenario is examples/scenarios/benchmark.toml with its constellation replaced by a
Walker 53 deg shell at 550 km (40 satellites per plane), the same profile, job classes,
per-node arrival rates (the ground class's total rate scales with the fleet) and bursts, a
12-station ground network (two stations cannot uplink a thousand satellites' ground jobs),
each with ``--antennas`` antennas (default 1: one uplink at a time per station), no
faults (they name benchmark satellites), no telemetry archive (``wall_s`` is the
simulation itself). After the last arrival the run goes on until admitted work is done or
its longest deadline (3 h) has passed, then finished results are drained to the ground.
Goal: 1,000 satellites x 24 h in <= 60 s wall on the 2-core development machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tomllib
from pathlib import Path
from typing import Any

from flightsw.clock import VirtualClock
from flightsw.protocol.jobrules import EXPIRED_AT_GROUND
from flightsw.sim import Simulation, build_world, collect_metrics, parse_scenario

ROOT = Path(__file__).resolve().parents[1]
BENCHMARK = ROOT / "examples" / "scenarios" / "benchmark.toml"
STATIONS = [  # name, lat, lon (real ground-station sites)
    ("weilheim", 47.88, 11.08), ("santiago", -33.15, -70.67),
    ("hartebeesthoek", -25.89, 27.69), ("perth", -31.80, 115.89),
    ("south-point", 19.01, -155.66), ("wallops", 37.94, -75.46),
    ("tokyo", 35.71, 139.49), ("bangalore", 13.03, 77.51),
    ("punta-arenas", -52.94, -70.85), ("dubai", 25.27, 55.30),
    ("canberra", -35.40, 148.98), ("madrid", 40.43, -4.25),
]


def scenario_data(satellites: int, hours: float, policy: str, antennas: int = 1
                  ) -> dict[str, Any]:
    data = tomllib.loads(BENCHMARK.read_text())
    planes = max(1, satellites // 40)
    while satellites % planes:
        planes -= 1
    data["name"] = f"scale-{satellites}"
    data["constellation"] = {"walker": {
        "total": satellites, "planes": planes, "phasing": 1, "altitude_km": 550.0,
        "inclination_deg": 53.0,
    }}
    data.pop("duration_orbits", None)
    data["duration_hours"] = hours
    data["telemetry_period_s"] = 0.0
    data["faults"] = []
    data["ground_stations"] = [
        {"name": n, "lat_deg": lat, "lon_deg": lon, "min_elevation_deg": 10.0}
        | ({"antennas": antennas} if antennas != 1 else {})
        for n, lat, lon in STATIONS
    ]
    data["scheduler"]["policy"] = policy
    return data


def host_probe_s(clock: VirtualClock) -> float:
    """Seconds a fixed pure-Python loop (10 M additions) takes now: the host's speed at the
    time of a run, to read wall times on a shared machine whose speed drifts."""
    t0 = clock.perf_counter()
    acc = 0
    for k in range(10_000_000):
        acc += k
    assert acc == 49_999_995_000_000
    return clock.perf_counter() - t0


def run(satellites: int, hours: float, policy: str, antennas: int = 1) -> dict[str, Any]:
    clock = VirtualClock()  # host time is measured through the clock object
    probe_s = host_probe_s(clock)
    t0 = clock.perf_counter()
    sc = parse_scenario(scenario_data(satellites, hours, policy, antennas),
                        source=f"scale-{satellites}", base_dir=BENCHMARK.parent)
    sim = Simulation(build_world(sc))
    build_s = clock.perf_counter() - t0
    sim.run()
    m = collect_metrics(sim)
    simulated_h = (sim.t_stop - sim.w.t0) / 3600.0
    return {
        "satellites": satellites,
        "mission_hours": hours,
        "simulated_hours": simulated_h,  # the mission plus the run-on for admitted work
        "policy": policy,
        "antennas_per_station": antennas,
        "wall_s": m["wall_s"],
        "wall_phases_s": dict(sim.phase_s),
        "host_probe_s": probe_s,  # 0.32-0.77 s on the development machine (it drifts)
        "build_s": build_s,
        "wall_per_sat_hour_ms": 1000.0 * m["wall_s"] / (satellites * simulated_h),
        "events": m["events"],
        "jobs_submitted": m["jobs_submitted"],
        "jobs_completed": m["jobs_completed"],
        "jobs_lost": m["jobs_lost"],
        # ground jobs never uplinked before their deadline (metrics key: the reason's code)
        "expired_at_ground": m["failed_by_reason"].get(
            EXPIRED_AT_GROUND.split("(", 1)[0].strip().replace(" ", "_"), 0),
        "uplinks": sim.stats.uplinks,
        "duplicate_results": m["duplicate_results"],
        "value_goodput": m["value_goodput"],
        "value_submitted": m["value_submitted"],
        "deadline_miss_rate": m["deadline_miss_rate"],
        "migrations": m["migrations"],
        "battery_floor_violation_s": m["battery_floor_violation_s"],
        "offered_load": m["offered_load"],
        "failed_by_reason": m["failed_by_reason"],
        # the process's peak resident memory so far (in a sweep: the largest run up to here)
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--satellites", type=int, default=1000)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--policy", default="forecast")
    parser.add_argument("--sweep", action="store_true",
                        help="100 and 1,000 satellites for --hours, 10,000 for --big-hours")
    parser.add_argument("--big-hours", type=float, default=2.0,
                        help="mission hours of the 10,000-satellite run in --sweep")
    parser.add_argument("--antennas", type=int, default=1,
                        help="antennas per ground station (satellites each uplinks to at once)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.sweep:
        plan = [(100, args.hours), (1000, args.hours), (10_000, args.big_hours)]
    else:
        plan = [(args.satellites, args.hours)]
    if args.antennas < 1:
        parser.error(f"--antennas: a station needs at least 1 antenna, got {args.antennas}")
    results = [run(n, h, args.policy, args.antennas) for n, h in plan]
    if args.json:
        json.dump(results if len(results) > 1 else results[0], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for r in results:
        print(f"{r['satellites']:>6} satellites, {r['mission_hours']:g} h mission "
              f"({r['simulated_hours']:.1f} h simulated): {r['wall_s']:.1f} s wall, "
              f"{r['jobs_submitted']:,} jobs, {r['events']:,} events, "
              f"{r['wall_per_sat_hour_ms']:.2f} ms per satellite-hour")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
