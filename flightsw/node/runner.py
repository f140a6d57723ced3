"""Run one node against an MQTT broker until stopped (what ``flightsw node`` does)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from flightsw.bus.mqtt import MqttBus, Will
from flightsw.clock import Clock
from flightsw.node.config import NodeConfig, build_orbits
from flightsw.node.service import Node
from flightsw.protocol import Status, dump, topics
from hardware_profiles import load_profile

__all__ = ["run_node"]

log = logging.getLogger("flightsw.node")


async def run_node(
    config: NodeConfig, broker_url: str, clock: Clock, stop: asyncio.Event | None = None
) -> None:
    """Connect, serve until SIGINT/SIGTERM (or ``stop``), then publish offline and exit."""
    profile = load_profile(config.profile)
    orbits = build_orbits(config.orbit, clock.now(), config.node_id)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    will = Will(
        topic=topics.status(config.node_id),
        payload=dump(Status(node=config.node_id, state="offline", t=0.0, profile=profile.name)),
        qos=1,
        retain=True,
    )
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with (
        MqttBus(broker_url, client_id=f"odc-node-{config.node_id}", will=will) as bus,
        Node(config, bus, clock, profile, orbits) as node,
    ):
        heartbeat = config.data_dir / "heartbeat"

        async def beat() -> None:
            while True:  # for the container health check: fresh while the node runs
                heartbeat.write_text(f"{clock.now():.3f} {node.telemetry_sent}\n")
                await clock.sleep_host(2.0)

        beat_task = asyncio.create_task(beat(), name=f"{config.node_id}:heartbeat")
        await stop.wait()
        beat_task.cancel()
    log.info("node %s stopped", config.node_id)
