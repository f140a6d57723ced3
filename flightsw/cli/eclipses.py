"""``flightsw eclipses``: eclipse intervals of one or more satellites over a window."""

from __future__ import annotations

import argparse

from flightsw.cli._orbit_args import (
    add_orbit_arguments,
    add_window_arguments,
    emit_json,
    format_time,
    orbits_from_args,
    window_from_args,
)
from flightsw.exceptions import ConfigError
from flightsw.orbitdesc import OrbitSpec
from flightsw.physics.eclipse import eclipse_intervals

__all__ = ["check_altitude", "register", "run"]


def check_altitude(args: argparse.Namespace) -> None:
    """Refuse a circular orbit the scenario loader and the node refuse too (inside the
    atmosphere, or beyond any use), with the same bounds (:class:`OrbitSpec`)."""
    if getattr(args, "altitude", None) is None:
        return
    field = OrbitSpec.model_fields["altitude_km"]
    lo = next(m.gt for m in field.metadata if hasattr(m, "gt"))
    hi = next(m.lt for m in field.metadata if hasattr(m, "lt"))
    if not lo < args.altitude < hi:
        raise ConfigError(
            f"--altitude: {args.altitude:g} km is not above {lo} km and below {hi} km "
            "(an orbit there is inside the atmosphere or not an Earth orbit)"
        )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "eclipses",
        help="list eclipse intervals",
        description="Eclipse intervals (UTC) of a circular orbit or of the satellites in a "
        "TLE file, edges accurate to better than a second.",
    )
    add_orbit_arguments(parser)
    add_window_arguments(parser)
    parser.add_argument(
        "--model",
        choices=("cylindrical", "conical"),
        default="cylindrical",
        help="Earth shadow model (conical counts penumbra as eclipse; default cylindrical)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_altitude(args)
    start, end = window_from_args(args)
    orbits = orbits_from_args(args, start)
    intervals = eclipse_intervals(orbits, start, end, step_s=args.step, model=args.model)
    rows = [[{"start": format_time(a), "end": format_time(b)} for a, b in sat] for sat in intervals]
    if args.json:
        print(emit_json(orbits, rows))
        return 0
    for name, sat in zip(orbits.names, intervals, strict=True):
        total = sum(b - a for a, b in sat)
        print(
            f"{name}: {len(sat)} eclipses, {total / 60:.1f} min in shadow "
            f"({100 * total / (end - start):.1f} %), {args.model} model, "
            f"{format_time(start)} .. {format_time(end)}"
        )
        if sat:
            print(f"  {'start':<22}{'end':<22}{'duration':>10}")
        for a, b in sat:
            print(f"  {format_time(a):<22}{format_time(b):<22}{(b - a) / 60:>6.1f} min")
    return 0
