"""The node core's own cost per job: the floor under any simulator that drives it.

    .venv/bin/python bench/core_floor.py --json
    .venv/bin/python bench/core_floor.py --json --jobs 200000 --satellites 10000,20000

The simulator runs every satellite's decisions in the shared `NodeCore` (the code the
nodes fly), so each job costs at least what the core spends on it: `accept` (queue it),
`dispatch` (admission, mode choice, start) and `finish`. This times that path alone on one
core with nothing else running (no physics, no migration, no ground, no events queue), for
a job of the benchmark's inference class, in sunlight with an eclipse timeline ahead
(`Outlook`, the path every simulated node takes) and without one.

``floor_s`` per fleet size: the jobs a 24 h run of that fleet submits (``jobs_per_sat_day``,
280.65 per satellite-day in `bench/sim_scale.py`'s scenario, measured at 1,000 and 10,000
satellites) times the measured cost per job. A simulator that drives the core cannot run
that day faster than this, whatever else it vectorises.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, parser
from sim_scale import host_probe_s

from flightsw.clock import VirtualClock
from flightsw.node.core import NodeCore
from flightsw.node.effects import Started
from flightsw.node.outlook import Outlook
from flightsw.node.scheduler import Queued
from flightsw.node.spec import NodeSpec
from hardware_profiles import load_profile

T0 = 1.8e9
JOBS_PER_SAT_DAY = 280.65  # bench/sim_scale.py: 280,650 jobs for 1,000 x 24 h


def _outlook(now: float) -> Outlook:
    # sunlit, an eclipse of 35 min in 20 min, a full battery: nothing is refused
    return Outlook(now=now, battery_wh=2000.0, floor_wh=600.0, capacity_wh=2400.0,
                   solar_w=4000.0, base_w=300.0, idle_w=100.0, eta_c=0.95, eta_d=0.95,
                   eclipses=((now + 1200.0, now + 3300.0), (now + 6900.0, now + 9000.0)),
                   horizon=now + 20_000.0)


def per_job_us(jobs: int, *, with_outlook: bool, clock: VirtualClock) -> float:
    """Microseconds per job through accept, dispatch and finish on one core."""
    core = NodeCore("n1", NodeSpec.of(load_profile("starcloud-h100")))
    work = core.spec.work(2.0e9, 1.0e6, 2.0e7, 32)  # 32 items of a 2 GFLOP classifier
    ol = _outlook(T0) if with_outlook else None
    gc.collect()
    t0 = clock.perf_counter()
    now = T0
    for k in range(jobs):
        q = Queued(f"j{k}", 0, 5, now + 3600.0, 1.0, work, now, seq=k, items=32)
        core.accept(q, now)
        started = core.dispatch(now, 20.0, 1000.0, ol)
        run = next(e.run for e in started if type(e) is Started)
        core.finish(run.token)
        now = run.end
    return 1e6 * (clock.perf_counter() - t0) / jobs


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=100_000)
    p.add_argument("--satellites", default="1000,10000,20000",
                   help="fleet sizes to give the floor of a 24 h run for")
    args = p.parse_args(argv)
    clock = VirtualClock()  # host time only through the clock object
    probe_s = host_probe_s(clock)
    us_ol = per_job_us(args.jobs, with_outlook=True, clock=clock)
    us_none = per_job_us(args.jobs, with_outlook=False, clock=clock)
    fleets = [int(x) for x in args.satellites.split(",")]
    result: dict[str, Any] = {
        "jobs": args.jobs,
        "host_probe_s": probe_s,  # sim_scale's speed probe: 0.32-0.77 s on the dev machine
        "us_per_job_outlook": us_ol,
        "us_per_job_no_outlook": us_none,
        "jobs_per_sat_day": JOBS_PER_SAT_DAY,
        "floor_s": {str(n): n * JOBS_PER_SAT_DAY * us_ol / 1e6 for n in fleets},
    }
    emit(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
