"""``flightsw passes``: ground-station contact windows of one or more satellites."""

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
from flightsw.physics.ground import Station, contact_windows

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "passes",
        help="list ground-station passes",
        description="Passes (AOS, LOS, peak elevation; UTC) of a circular orbit or of the "
        "satellites in a TLE file over a ground station.",
    )
    add_orbit_arguments(parser)
    parser.add_argument(
        "--station",
        required=True,
        metavar="LAT,LON[,ALT_M]",
        help="station geodetic latitude and longitude (deg) and height (m)",
    )
    parser.add_argument(
        "--min-elevation",
        type=float,
        default=10.0,
        metavar="DEG",
        help="elevation mask, deg (default 10)",
    )
    add_window_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    start, end = window_from_args(args)
    try:
        station = Station.parse(args.station)
    except ConfigError as exc:
        raise ConfigError(f"--{exc}") from exc
    if not -90.0 <= args.min_elevation < 90.0:
        raise ConfigError(f"--min-elevation: must be within [-90, 90), got {args.min_elevation!r}")
    orbits = orbits_from_args(args, start)
    passes = contact_windows(
        orbits, station, start, end, min_elevation_deg=args.min_elevation, step_s=args.step
    )
    rows = [
        [
            {
                "aos": format_time(p.aos),
                "los": format_time(p.los),
                "max_elevation_deg": round(p.max_elevation_deg, 2),
            }
            for p in sat
        ]
        for sat in passes
    ]
    if args.json:
        print(emit_json(orbits, rows))
        return 0
    where = f"{station.lat_deg:g},{station.lon_deg:g},{station.alt_m:g} m"
    for name, sat in zip(orbits.names, passes, strict=True):
        print(
            f"{name}: {len(sat)} passes over {where} above {args.min_elevation:g} deg, "
            f"{format_time(start)} .. {format_time(end)}"
        )
        if sat:
            print(f"  {'AOS':<22}{'LOS':<22}{'duration':>10}{'max el':>10}")
        for p in sat:
            print(
                f"  {format_time(p.aos):<22}{format_time(p.los):<22}"
                f"{p.duration_s / 60:>6.1f} min{p.max_elevation_deg:>8.1f} deg"
            )
    return 0
