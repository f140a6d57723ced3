"""Run one node against an MQTT broker until stopped (what ``flightsw node`` does)."""

from __future__ import annotations

import asyncio
import logging

from flightsw.bus.mqtt import MqttBus, Will
from flightsw.clock import Clock
from flightsw.node.aging import aged_profile
from flightsw.node.config import NodeConfig, build_orbits
from flightsw.node.identity import node_sealer
from flightsw.node.service import Node
from flightsw.protocol import Status, topics
from flightsw.protocol.codec import encode
from flightsw.service_host import heartbeat, stop_on_signals
from hardware_profiles import load_profile

__all__ = ["run_node"]

log = logging.getLogger("flightsw.node")


async def run_node(
    config: NodeConfig, broker_url: str, clock: Clock, stop: asyncio.Event | None = None
) -> None:
    """Connect, serve until SIGINT/SIGTERM (or ``stop``), then publish offline and exit."""
    profile = load_profile(config.profile)
    if config.mission_year > 0:  # the same aged bus the simulator runs (flightsw.node.aging)
        profile = aged_profile(profile, config.mission_year)
    orbits = build_orbits(config.orbit, clock.now(), config.node_id)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    # the last will is sealed now, with a number the online status names (``will_seq``),
    # so the ground takes it once although later messages carry higher numbers
    sealer = node_sealer(config)
    topic = topics.status(config.node_id)
    offline = Status(node=config.node_id, state="offline", t=0.0, profile=profile.name)
    body = sealer.seal(topic, offline.model_dump(mode="python"))
    will_seq = body["auth"]["seq"] if "auth" in body else None
    will = Will(topic=topic, payload=encode(body), qos=1, retain=True)
    stop = stop_on_signals(stop)
    async with (
        MqttBus(broker_url, client_id=f"odc-node-{config.node_id}", will=will) as bus,
        Node(config, bus, clock, profile, orbits, sealer=sealer, will_seq=will_seq) as node,
        heartbeat(config.data_dir / "heartbeat", clock, lambda: node.telemetry_sent),
    ):
        await stop.wait()
    log.info("node %s stopped", config.node_id)
