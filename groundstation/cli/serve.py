"""``groundstation serve``: run the ground station service."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
from typing import Any

from flightsw.bus.mqtt import MqttBus
from flightsw.bus.url import default_broker_url
from flightsw.cliutil.clock_args import add_clock_args, clock_from_args
from flightsw.exceptions import ConfigError
from flightsw.physics.ground import Station
from flightsw.service_host import configure_logging, heartbeat, stop_on_signals
from groundstation.service import GroundStation

__all__ = ["parse_station", "register"]


def parse_station(text: str) -> Station:
    """``NAME=LAT,LON[,ALT_M]`` (or ``LAT,LON[,ALT_M]``, named ``station-N``)."""
    name, sep, rest = text.partition("=")
    if not sep:
        name, rest = "station", text
    if not name.strip():
        raise ConfigError(f"--station {text!r}: empty name")
    return Station.parse(rest, name=name.strip())


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("serve", help="run the ground station service")
    p.add_argument("--broker", default=default_broker_url())
    p.add_argument("--archive", type=Path, required=True, help="archive and job table dir")
    p.add_argument(
        "--station",
        action="append",
        default=[],
        metavar="NAME=LAT,LON[,ALT_M]",
        help="a ground station; none means always in contact (relay network)",
    )
    p.add_argument("--min-elevation", type=float, default=10.0, help="deg")
    p.add_argument("--lease", type=float, default=60.0, help="lease, mission seconds")
    p.add_argument("--log-level", default="INFO")
    add_clock_args(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    configure_logging(args.log_level)
    stations = [parse_station(s) for s in args.station]
    clock = clock_from_args(args)

    async def main() -> None:
        stop = stop_on_signals()
        async with (
            MqttBus(args.broker, client_id="odc-ground") as bus,
            GroundStation(
                bus,
                clock,
                args.archive,
                stations=stations,
                min_elevation_deg=args.min_elevation,
                lease_s=args.lease,
            ) as gs,
            heartbeat(args.archive / "heartbeat", clock, lambda: gs.ingested),
        ):
            await stop.wait()
            logging.getLogger("groundstation").info("stopping: %s", gs.summary())

    asyncio.run(main())
    return 0
