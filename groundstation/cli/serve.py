"""``groundstation serve``: run the ground station service."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
from pathlib import Path
from typing import Any

from flightsw.bus.mqtt import MqttBus
from flightsw.bus.url import default_broker_url
from flightsw.cliutil.clock_args import add_clock_args, clock_from_args
from flightsw.exceptions import ConfigError
from flightsw.physics.ground import Station
from flightsw.protocol.antennas import check_antennas
from flightsw.service_host import configure_logging, heartbeat, stop_on_signals
from groundstation.cli.keys import add_node_keys_arg, node_keys_from_args, warrants_from_args
from groundstation.console.auth import OperatorAuth
from groundstation.console.commands import KeyRing
from groundstation.service import GroundStation

__all__ = ["add_console_args", "console_from_args", "parse_http", "parse_station", "register"]


def parse_station(text: str) -> Station:
    """``NAME=LAT,LON[,ALT_M]`` (or ``LAT,LON[,ALT_M]``, named ``station-N``)."""
    name, sep, rest = text.partition("=")
    if not sep:
        name, rest = "station", text
    if not name.strip():
        raise ConfigError(f"--station {text!r}: empty name")
    return Station.parse(rest, name=name.strip())


def parse_http(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``PORT``, on 127.0.0.1) for the console's HTTP server."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host = "127.0.0.1"
    try:
        number = int(port)
    except ValueError as exc:
        raise ConfigError(f"--http {text!r}: expected HOST:PORT") from exc
    if not 0 <= number <= 65535:
        raise ConfigError(f"--http {text!r}: port out of range")
    return host.strip("[]") or "127.0.0.1", number


def add_console_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--http",
        metavar="HOST:PORT",
        help="also serve the operations console (web page, HTTP API, /metrics) there",
    )
    p.add_argument(
        "--operator-token",
        default=os.environ.get("ODC_CONSOLE_TOKEN"),
        help="console operator login (default: env ODC_CONSOLE_TOKEN, else a random one, logged)",
    )
    p.add_argument(
        "--console-broker",
        default=os.environ.get("ODC_CONSOLE_BROKER"),
        metavar="URL",
        help="the console's own broker account, e.g. one whose ACL allows odc/sat/+/cmd "
        "(default: --broker; env ODC_CONSOLE_BROKER)",
    )
    p.add_argument(
        "--command-keys",
        type=Path,
        help='JSON file {"node": "telecommand key"} for the console to sign commands',
    )
    p.add_argument(
        "--command-key-pattern",
        default=os.environ.get("ODC_COMMAND_KEY_PATTERN"),
        help="telecommand key of every node, e.g. '{node}-cmd-dev' (env ODC_COMMAND_KEY_PATTERN)",
    )


def console_from_args(
    args: argparse.Namespace, bus: Any, clock: Any, archive: Path, ground: GroundStation | None,
    node_keys: dict[str, bytes] | None = None,
) -> contextlib.AbstractAsyncContextManager[Any]:
    """The console service of ``--http``, or a context that does nothing without it; with
    ``node_keys`` (``--node-keys``) it checks node seals as the ground does."""
    if not args.http:
        return contextlib.nullcontext()
    # imported here: aiohttp and prometheus-client are for `serve --http` only, and every
    # `groundstation` command builds this module's parser
    from groundstation.console.service import ConsoleService  # noqa: PLC0415

    host, port = parse_http(args.http)
    return ConsoleService(
        bus,
        clock,
        archive,
        host=host,
        port=port,
        auth=OperatorAuth(args.operator_token),
        keys=KeyRing.from_file(args.command_keys, args.command_key_pattern),
        ground_ingested=None if ground is None else (lambda: ground.ingested),
        node_keys=node_keys,
    )


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
    p.add_argument(
        "--antennas",
        type=int,
        default=1,
        metavar="N",
        help="antennas per station: satellites each station uplinks to at once (default 1)",
    )
    p.add_argument("--min-elevation", type=float, default=10.0, help="deg")
    p.add_argument("--lease", type=float, default=60.0, help="lease, mission seconds")
    p.add_argument("--log-level", default="INFO")
    add_node_keys_arg(p)
    add_console_args(p)
    add_clock_args(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    configure_logging(args.log_level)
    stations = [parse_station(s) for s in args.station]
    antennas = check_antennas(args.antennas, "--antennas")
    node_keys = node_keys_from_args(args)  # unreadable keys fail now, naming the file
    warrants = warrants_from_args(args)
    clock = clock_from_args(args)
    if args.http:
        parse_http(args.http)  # a bad address fails now, before anything starts

    async def main() -> None:
        stop = stop_on_signals()
        async with contextlib.AsyncExitStack() as stack:
            bus = await stack.enter_async_context(MqttBus(args.broker, client_id="odc-ground"))
            gs = await stack.enter_async_context(
                GroundStation(
                    bus,
                    clock,
                    args.archive,
                    stations=stations,
                    antennas=antennas,
                    min_elevation_deg=args.min_elevation,
                    lease_s=args.lease,
                    node_keys=node_keys,
                    warrants=warrants,
                )
            )
            await stack.enter_async_context(
                heartbeat(args.archive / "heartbeat", clock, lambda: gs.ingested)
            )
            if args.http:
                # its own connection, so the console's subscriptions never queue behind
                # the ground's ingest (and the broker's ACL can treat it as its own client)
                cbus = await stack.enter_async_context(
                    MqttBus(args.console_broker or args.broker, client_id="odc-console",
                            clean_start=True, persistent_session=False)
                )
                await stack.enter_async_context(
                    console_from_args(args, cbus, clock, args.archive, gs, node_keys)
                )
            await stop.wait()
            logging.getLogger("groundstation").info("stopping: %s", gs.summary())

    asyncio.run(main())
    return 0
