"""``flightsw node``: run one satellite node against an MQTT broker."""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
from typing import Any

from flightsw.bus.url import default_broker_url
from flightsw.cliutil.clock_args import add_clock_args, clock_from_args
from flightsw.exceptions import ConfigError
from flightsw.node.config import NodeConfig
from flightsw.node.runner import run_node
from flightsw.orbitdesc import OrbitSpec
from flightsw.service_host import configure_logging

__all__ = ["register"]


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "node", help="run one satellite node (real ONNX inference, telemetry over MQTT)"
    )
    p.add_argument("--id", required=True, help="node id (letters, digits, _ . -)")
    p.add_argument("--profile", required=True, help="hardware profile name or TOML path")
    p.add_argument("--tle", type=Path, help="TLE file")
    p.add_argument("--tle-name", help="satellite name within the TLE file")
    p.add_argument("--altitude", type=float, help="circular orbit altitude, km")
    p.add_argument("--inclination", type=float, help="inclination, deg")
    p.add_argument("--raan", type=float, default=0.0, help="RAAN, deg")
    p.add_argument("--arg-latitude", type=float, default=0.0, help="argument of latitude, deg")
    p.add_argument("--broker", default=default_broker_url(), help="mqtt://[user:pass@]host:port")
    p.add_argument("--data-dir", type=Path, default=None, help="model store and state")
    p.add_argument("--telemetry-period", type=float, default=10.0, help="mission seconds")
    p.add_argument("--physics-step", type=float, default=10.0, help="mission seconds")
    p.add_argument("--initial-soc", type=float, default=None)
    p.add_argument("--initial-temperature", type=float, default=None, help="deg C")
    p.add_argument("--max-payload", type=int, default=16 * 1024 * 1024, help="bytes")
    p.add_argument("--no-execute", action="store_true", help="model inference cost only")
    p.add_argument("--policy", default="local", help="constellation migration policy")
    p.add_argument("--lease", type=float, default=60.0, help="lease, mission seconds")
    p.add_argument(
        "--node-key-file", type=Path, default=None,
        help="this node's key (64 hex chars; `groundstation keys` makes them): seals what "
        "it publishes, as a ground station with --node-keys requires (env ODC_NODE_KEY_FILE)",
    )
    p.add_argument(
        "--mission-year", type=float, default=0.0,
        help="years in orbit: battery, array and radiator aged by the profile's [lifetime]",
    )
    p.add_argument(
        "--lifetime-seed", type=int, default=None,
        help="draw this node's lifetime events with this seed (from --mission-year on): a lost "
        "accelerator halts compute for good, debris manoeuvres pause it and draw propulsion",
    )
    p.add_argument(
        "--ground-public-key", type=Path, default=None,
        help="the ground's public warrant key (ground.warrant.pub of `groundstation keys`): "
        "run only jobs the ground signed (env ODC_GROUND_PUBLIC_KEY)",
    )
    p.add_argument("--log-level", default="INFO")
    add_clock_args(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    configure_logging(args.log_level)
    if args.tle is None and (args.altitude is None or args.inclination is None):
        raise ConfigError("give --tle FILE, or both --altitude KM and --inclination DEG")
    clock = clock_from_args(args)
    data_dir = args.data_dir or Path(os.environ.get("ODC_DATA_DIR", f"node-data/{args.id}"))
    try:
        config = NodeConfig(
            node_id=args.id,
            profile=args.profile,
            orbit=OrbitSpec(
                altitude_km=args.altitude,
                inclination_deg=args.inclination,
                raan_deg=args.raan,
                arg_latitude_deg=args.arg_latitude,
                tle_file=args.tle,
                tle_name=args.tle_name,
            ),
            data_dir=data_dir,
            telemetry_period_s=args.telemetry_period,
            physics_step_s=args.physics_step,
            initial_soc=args.initial_soc,
            initial_temperature_c=args.initial_temperature,
            max_payload_bytes=args.max_payload,
            command_key=os.environ.get("ODC_COMMAND_KEY") or None,
            execute=not args.no_execute,
            policy=args.policy,
            lease_s=args.lease,
            mission_year=args.mission_year,
            lifetime_seed=args.lifetime_seed,
            node_key_file=args.node_key_file or _env_path("ODC_NODE_KEY_FILE"),
            ground_public_key_file=args.ground_public_key or _env_path("ODC_GROUND_PUBLIC_KEY"),
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    asyncio.run(run_node(config, args.broker, clock))
    return 0


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None
