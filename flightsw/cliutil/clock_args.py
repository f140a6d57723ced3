"""Shared clock options: ``--time-scale``, ``--epoch``, ``--clock-anchor`` (env defaults)."""

from __future__ import annotations

import argparse
import os

from flightsw.clock import WallClock
from flightsw.timeutil import parse_iso

__all__ = ["add_clock_args", "clock_from_args"]


def add_clock_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--time-scale",
        type=float,
        default=float(os.environ.get("ODC_TIME_SCALE", "1")),
        help="mission seconds per wall second (env ODC_TIME_SCALE, default 1)",
    )
    p.add_argument(
        "--epoch",
        default=os.environ.get("ODC_EPOCH"),
        help="mission time (ISO 8601 UTC) at the clock anchor (env ODC_EPOCH; default now)",
    )
    p.add_argument(
        "--clock-anchor",
        type=float,
        default=float(os.environ["ODC_CLOCK_ANCHOR"])
        if os.environ.get("ODC_CLOCK_ANCHOR")
        else None,
        help="wall time (POSIX s) at which mission time equals --epoch; processes that share "
        "epoch, anchor and scale share mission time (env ODC_CLOCK_ANCHOR; default: start)",
    )


def clock_from_args(args: argparse.Namespace) -> WallClock:
    epoch = parse_iso(args.epoch, field="--epoch") if args.epoch else None
    return WallClock(epoch=epoch, scale=args.time_scale, anchor=args.clock_anchor)
