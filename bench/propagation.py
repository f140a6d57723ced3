"""Vectorised physics throughput: 10,000 satellites over one orbit at 10 s steps.

    .venv/bin/python bench/propagation.py --json

A Walker delta constellation (default 10,000 satellites, 100 planes, 550 km, 53 deg) is
stepped through one orbital period at 10 s. Each step computes, for all satellites at
once: ECI positions, the Sun position, the illumination (shadow model), the solar array
power, a battery step and a thermal step -- the per-step physics a simulation run needs.
Reported: satellites, steps, host wall time, and satellite-steps per second. Goal: under
10 s wall on the 2-core development machine. Separately (``eclipse_search_s``, not in
``wall_s``): the time :func:`eclipse_intervals` takes to find every satellite's eclipses
over the same orbit with edges bisected to 0.1 s.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np

from flightsw.clock import VirtualClock
from flightsw.physics import (
    PowerParams,
    ThermalParams,
    eclipse_intervals,
    illumination,
    solar_power_w,
    step_battery,
    step_temperature,
    sun_position_km,
    view_factor,
    walker,
)
from flightsw.timeutil import parse_iso


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--satellites", type=int, default=10_000)
    parser.add_argument("--planes", type=int, default=100)
    parser.add_argument("--altitude", type=float, default=550.0)
    parser.add_argument("--inclination", type=float, default=53.0)
    parser.add_argument("--step", type=float, default=10.0, help="step, s")
    parser.add_argument("--model", choices=("cylindrical", "conical"), default="cylindrical")
    parser.add_argument("--start", default="2025-06-01T00:00:00Z")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    epoch = parse_iso(args.start)
    clock = VirtualClock(epoch)  # host time is measured only through the clock object
    orbits = walker(args.satellites, args.planes, 1, args.altitude, args.inclination, epoch)
    n = len(orbits)
    period = float(orbits.period_s[0])
    steps = math.ceil(period / args.step)
    power = PowerParams(2.0, 0.298, 0.05, 1000.0, 0.95, 0.95, 0.3)
    thermal = ThermalParams(5.4e4, 2.0, 0.9, 0.3, 0.5, 0.5, 0.5)
    energy = np.full(n, 800.0)
    temp = np.full(n, 290.0)
    load = np.full(n, 250.0)
    lit_time = np.zeros(n)

    t_begin = clock.perf_counter()
    for k in range(steps):
        t = epoch + k * args.step
        r = orbits.positions(t)
        lit = illumination(r, sun_position_km(t), args.model)
        solar = solar_power_w(power, lit)
        energy, _ = step_battery(energy, solar, load, args.step, power)
        fe = view_factor(np.linalg.norm(r, axis=1))
        temp = step_temperature(temp, thermal, lit, fe, load, args.step)
        lit_time += lit * args.step
    wall = clock.perf_counter() - t_begin

    t_begin = clock.perf_counter()
    eclipses = eclipse_intervals(orbits, epoch, epoch + period, args.step, args.model)
    search = clock.perf_counter() - t_begin

    result = {
        "satellites": n,
        "steps": steps,
        "wall_s": round(wall, 3),
        "sat_steps_per_s": round(n * steps / wall),
        "model": args.model,
        "mean_sunlit_fraction": round(float(lit_time.mean()) / (steps * args.step), 4),
        "eclipse_search_s": round(search, 3),
        "eclipse_intervals": sum(len(e) for e in eclipses),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>22}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
