"""Options shared by the planning sub-commands (``eclipses``, ``passes``): orbit and window."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping, Sequence

from flightsw.exceptions import ConfigError
from flightsw.physics.orbit import (
    CircularOrbits,
    Orbits,
    TleOrbits,
    dawn_dusk_raan,
    sun_synchronous_inclination,
)
from flightsw.timeutil import format_iso, parse_iso

__all__ = [
    "add_orbit_arguments",
    "add_window_arguments",
    "emit_json",
    "format_time",
    "orbits_from_args",
    "window_from_args",
]


def add_orbit_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tle FILE`` or a circular orbit (``--altitude``/``--inclination``/...)."""
    group = parser.add_argument_group("orbit (a TLE file or a circular orbit)")
    src = group.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--tle", metavar="FILE", help="TLE file, one or more satellites (name lines optional)"
    )
    src.add_argument("--altitude", type=float, metavar="KM", help="circular orbit altitude, km")
    group.add_argument(
        "--inclination",
        metavar="DEG",
        help="inclination, deg, or 'sso' for sun-synchronous (with --altitude)",
    )
    group.add_argument(
        "--raan",
        metavar="DEG",
        help="right ascension of the ascending node at --start, deg, or 'dawn-dusk' (default 0)",
    )
    group.add_argument(
        "--arg-latitude",
        type=float,
        metavar="DEG",
        help="argument of latitude at --start, deg (default 0)",
    )


def add_window_arguments(parser: argparse.ArgumentParser) -> None:
    """``--start``, ``--hours``, ``--step``, ``--json``."""
    parser.add_argument("--start", required=True, metavar="ISO8601", help="window start (UTC)")
    parser.add_argument("--hours", required=True, type=float, metavar="H", help="window length")
    parser.add_argument(
        "--step",
        type=float,
        default=10.0,
        metavar="S",
        help="search step, s (events shorter than this may be missed; default 10)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def window_from_args(args: argparse.Namespace) -> tuple[float, float]:
    """(start, end) POSIX seconds from ``--start`` and ``--hours``."""
    start = parse_iso(args.start, field="--start")
    hours = float(args.hours)
    if not math.isfinite(hours) or hours <= 0:
        raise ConfigError(f"--hours: must be a positive number of hours, got {args.hours!r}")
    step = float(args.step)
    if not math.isfinite(step) or step <= 0:
        raise ConfigError(f"--step: must be a positive number of seconds, got {args.step!r}")
    return start, start + hours * 3600.0


def _float_option(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise ConfigError(f"{name}: {text!r} is not a number") from exc
    if not math.isfinite(value):
        raise ConfigError(f"{name}: must be finite, got {text!r}")
    return value


def orbits_from_args(args: argparse.Namespace, epoch: float) -> Orbits:
    """Build the orbits the options describe; circular elements are taken at ``epoch``."""
    if args.tle is not None:
        for opt, value in (
            ("--inclination", args.inclination),
            ("--raan", args.raan),
            ("--arg-latitude", args.arg_latitude),
        ):
            if value is not None:
                raise ConfigError(f"{opt}: only valid with --altitude, not with --tle")
        return TleOrbits.from_file(args.tle)
    altitude = float(args.altitude)
    if not math.isfinite(altitude) or altitude <= 0:
        raise ConfigError(f"--altitude: must be a positive number of km, got {args.altitude!r}")
    if args.inclination is None:
        raise ConfigError("--inclination: required with --altitude")
    if str(args.inclination).lower() == "sso":
        inclination = float(sun_synchronous_inclination(altitude))
    else:
        inclination = _float_option("--inclination", args.inclination)
        if not 0.0 <= inclination <= 180.0:
            raise ConfigError(f"--inclination: must be within [0, 180], got {inclination!r}")
    if args.raan is None:
        raan = 0.0
    elif str(args.raan).lower() == "dawn-dusk":
        raan = dawn_dusk_raan(epoch)
    else:
        raan = _float_option("--raan", args.raan)
    u0 = 0.0 if args.arg_latitude is None else float(args.arg_latitude)
    return CircularOrbits(altitude, inclination, raan, u0, epoch, names=["sat"])


def format_time(t: float) -> str:
    """ISO 8601 UTC with 'Z', rounded to the second."""
    return format_iso(float(round(t)))


def emit_json(orbits: Orbits, per_satellite: Sequence[Sequence[Mapping[str, object]]]) -> str:
    """One satellite: a JSON list; several: an object keyed by satellite name."""
    as_lists = [[dict(row) for row in sat] for sat in per_satellite]
    if len(as_lists) == 1:
        return json.dumps(as_lists[0], indent=2)
    return json.dumps(dict(zip(orbits.names, as_lists, strict=True)), indent=2)
