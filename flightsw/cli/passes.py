"""``flightsw passes``: ground-station contact windows of one or more satellites."""

from __future__ import annotations

import argparse
import math

import numpy as np

from flightsw.cli._orbit_args import (
    add_orbit_arguments,
    add_window_arguments,
    emit_json,
    format_time,
    orbits_from_args,
    window_from_args,
)
from flightsw.cli.eclipses import check_altitude
from flightsw.exceptions import ConfigError
from flightsw.physics.frames import gmst_rad, rotate_z
from flightsw.physics.ground import Station, contact_windows
from flightsw.physics.orbit import Orbits

__all__ = ["azimuth_deg", "register", "run"]


def azimuth_deg(orbits: Orbits, index: int, t: float, station: Station) -> float:
    """Azimuth (deg from north, clockwise) of satellite ``index`` seen from ``station``."""
    r = orbits.positions_at(np.array([t]), np.array([index]))[0]
    rho = rotate_z(r, gmst_rad(t)) - station.ecef_km
    lat, lon = math.radians(station.lat_deg), math.radians(station.lon_deg)
    east = np.array([-math.sin(lon), math.cos(lon), 0.0])
    north = np.array([-math.sin(lat) * math.cos(lon), -math.sin(lat) * math.sin(lon),
                      math.cos(lat)])
    return math.degrees(math.atan2(float(rho @ east), float(rho @ north))) % 360.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "passes",
        help="list ground-station passes",
        description="Passes (AOS and LOS with their azimuths, time and elevation of the peak; "
        "UTC) of a circular orbit or of the "
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
    check_altitude(args)
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
    az = [
        [(azimuth_deg(orbits, i, p.aos, station), azimuth_deg(orbits, i, p.los, station))
         for p in sat]
        for i, sat in enumerate(passes)
    ]
    rows = [
        [
            {
                "aos": format_time(p.aos),
                "aos_azimuth_deg": round(a[0], 1),
                "los": format_time(p.los),
                "los_azimuth_deg": round(a[1], 1),
                "max_elevation_at": format_time(p.tca),
                "max_elevation_deg": round(p.max_elevation_deg, 2),
            }
            for p, a in zip(sat, sat_az, strict=True)
        ]
        for sat, sat_az in zip(passes, az, strict=True)
    ]
    if args.json:
        print(emit_json(orbits, rows))
        return 0
    where = f"{station.lat_deg:g},{station.lon_deg:g},{station.alt_m:g} m"
    for name, sat, sat_az in zip(orbits.names, passes, az, strict=True):
        print(
            f"{name}: {len(sat)} passes over {where} above {args.min_elevation:g} deg, "
            f"{format_time(start)} .. {format_time(end)}"
        )
        if sat:
            print(f"  {'AOS':<22}{'az':>6}  {'max elevation at':<22}{'max el':>9}  "
                  f"{'LOS':<22}{'az':>6}{'duration':>11}")
        for p, (az_a, az_l) in zip(sat, sat_az, strict=True):
            print(
                f"  {format_time(p.aos):<22}{az_a:>5.0f}°  {format_time(p.tca):<22}"
                f"{p.max_elevation_deg:>5.1f} deg  {format_time(p.los):<22}{az_l:>5.0f}°"
                f"{p.duration_s / 60:>7.1f} min"
            )
    return 0
