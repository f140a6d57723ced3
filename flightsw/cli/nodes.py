"""``flightsw nodes``: run many nodes of a scenario in one process (a node host)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any

from flightsw.bus.url import default_broker_url
from flightsw.cliutil.clock_args import add_clock_args, clock_from_args
from flightsw.clock import Clock
from flightsw.node.host import NodeHost, parse_pairs
from flightsw.node.roster import HostedNode, NodeSettings, scenario_roster
from flightsw.service_host import configure_logging, heartbeat, stop_on_signals
from flightsw.sim.scenario import load_scenario

__all__ = ["register"]


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "nodes",
        help="run the nodes of a scenario (or some: --only) in one process, each a full node",
    )
    p.add_argument("--scenario", type=Path, required=True, help="scenario TOML file")
    p.add_argument(
        "--only", default=None,
        help="shell patterns of node names, comma-separated (e.g. 'P00*,P01S0?'); default all",
    )
    p.add_argument(
        "--broker", default=default_broker_url(),
        help="mqtt://[user:pass@]host:port; '{node}' in it becomes each node's id and "
        "'{password}' its password from env ODC_NODE_PASSWORDS ('node:password ...')",
    )
    p.add_argument(
        "--state-dir", type=Path, default=None,
        help="each node's model store and state go to DIR/<node> (env ODC_DATA_DIR; "
        "default node-data)",
    )
    p.add_argument(
        "--node-keys", type=Path, default=None,
        help="directory of node keys (<node>.key, as `groundstation keys` writes): each "
        "node seals what it publishes with its own key",
    )
    p.add_argument(
        "--ground-public-key", type=Path, default=None,
        help="the ground's public warrant key: run only jobs the ground signed "
        "(env ODC_GROUND_PUBLIC_KEY)",
    )
    p.add_argument("--telemetry-period", type=float, default=10.0, help="mission seconds")
    p.add_argument("--state-period", type=float, default=10.0, help="mission seconds")
    p.add_argument(
        "--physics-step", type=float, default=None,
        help="mission seconds (default: the scenario's step_s)",
    )
    p.add_argument(
        "--policy", default=None,
        help="constellation migration policy (default: the scenario's scheduler.policy)",
    )
    p.add_argument("--max-payload", type=int, default=16 * 1024 * 1024, help="bytes")
    p.add_argument("--no-execute", action="store_true", help="model inference cost only")
    p.add_argument(
        "--inference-threads", type=int, default=2,
        help="inference threads shared by all the nodes of the process (default 2)",
    )
    p.add_argument(
        "--start-concurrency", type=int, default=32,
        help="nodes connecting to the broker at once while starting",
    )
    p.add_argument("--log-level", default="WARNING")
    add_clock_args(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    configure_logging(args.log_level)
    scenario = load_scenario(args.scenario)
    state_dir = args.state_dir or Path(os.environ.get("ODC_DATA_DIR", "node-data"))
    ground_key = args.ground_public_key or _env_path("ODC_GROUND_PUBLIC_KEY")
    settings = NodeSettings(
        state_dir=state_dir,
        node_keys=args.node_keys,
        ground_public_key_file=ground_key,
        command_key=os.environ.get("ODC_COMMAND_KEY") or None,
        command_keys=parse_pairs(os.environ.get("ODC_COMMAND_KEYS", ""), "ODC_COMMAND_KEYS"),
        telemetry_period_s=args.telemetry_period,
        state_period_s=args.state_period,
        physics_step_s=args.physics_step,
        policy=args.policy,
        execute=not args.no_execute,
        max_payload_bytes=args.max_payload,
    )
    roster = scenario_roster(scenario, settings, args.only)
    clock = clock_from_args(args)
    asyncio.run(_host(roster, args, clock, state_dir))
    return 0


async def _host(roster: list[HostedNode], args: argparse.Namespace, clock: Clock,
                state_dir: Path) -> None:
    """Serve until SIGINT/SIGTERM; a signal while the nodes are still starting stops the
    ones started so far at once (``docker stop`` does not wait for a thousand to start)."""
    stop = stop_on_signals()
    online = asyncio.Event()
    serving = asyncio.create_task(_serve(roster, args, clock, state_dir, stop, online),
                                  name="node-host")
    signalled = asyncio.create_task(stop.wait(), name="signals")
    try:
        await asyncio.wait({serving, signalled}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set() and not online.is_set():
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving
            return
        await serving
    finally:
        signalled.cancel()


async def _serve(roster: list[HostedNode], args: argparse.Namespace, clock: Clock,
                 state_dir: Path, stop: asyncio.Event, online: asyncio.Event) -> None:
    passwords = parse_pairs(os.environ.get("ODC_NODE_PASSWORDS", ""), "ODC_NODE_PASSWORDS")
    async with NodeHost(roster, args.broker, clock, inference_workers=args.inference_threads,
                        start_concurrency=args.start_concurrency,
                        passwords=passwords) as host:
        online.set()
        print(f"flightsw nodes: {len(host.nodes)} nodes online", flush=True)
        async with heartbeat(state_dir / "heartbeat", clock,
                             lambda: f"{len(host.nodes)} {host.telemetry_sent}"):
            await stop.wait()


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None
