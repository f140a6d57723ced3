"""A node host: many full nodes in one process and one event loop (``flightsw nodes``).

Each hosted node is the same :class:`~flightsw.node.service.Node` a ``flightsw node``
process runs, with its own MQTT session (client id ``odc-node-<id>``, its sealed last
will), its own state directory and its own key; only what cannot differ between nodes is
shared: the process, the event loop, the imported code, the profile objects of the
scenario, and the inference (one :class:`~flightsw.models.pool.InferencePool`: a bounded
thread pool taking the nodes' runs in turn and one onnxruntime session per model hash).

``async with NodeHost(roster, broker_url, clock) as host:`` returns once every node is
online; a node that fails stops the host (with the node's error), as a crashed
``flightsw node`` process would stop its container. Starting is ``start_concurrency``
nodes at a time so a thousand MQTT connections do not hit the broker at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Self
from urllib.parse import quote

from flightsw.bus.base import Bus
from flightsw.bus.mqtt import MqttBus, Will
from flightsw.clock import Clock
from flightsw.exceptions import ConfigError
from flightsw.models.pool import InferencePool
from flightsw.node.identity import node_sealer
from flightsw.node.roster import HostedNode
from flightsw.node.service import Node
from flightsw.protocol import Status, topics
from flightsw.protocol.codec import encode

__all__ = ["BusFactory", "NodeHost", "mqtt_bus", "node_broker_url", "parse_pairs"]

log = logging.getLogger("flightsw.node.host")


#: Makes a node's bus from its broker URL, client id and last will (an async context
#: manager giving the bus): MQTT by default, the in-memory bus in tests.
BusFactory = Callable[[str, str, Will], AbstractAsyncContextManager[Bus]]


def mqtt_bus(url: str, client_id: str, will: Will) -> AbstractAsyncContextManager[Bus]:
    """The node's own MQTT session (the default :data:`BusFactory`)."""
    return MqttBus(url, client_id=client_id, will=will)


def node_broker_url(template: str, node_id: str,
                    passwords: Mapping[str, str] | None = None) -> str:
    """The broker URL of one node: ``{node}`` in ``template`` becomes its id and
    ``{password}`` its password from ``passwords`` (per-node broker accounts, e.g.
    ``mqtt://{node}:{password}@host:1883``)."""
    url = template.replace("{node}", node_id)
    if "{password}" in url:
        if passwords is None or node_id not in passwords:
            raise ConfigError(f"--broker has {{password}} but there is no password for node "
                              f"{node_id} (ODC_NODE_PASSWORDS: 'node:password ...')")
        url = url.replace("{password}", quote(passwords[node_id], safe=""))
    return url


def parse_pairs(text: str, source: str = "ODC_NODE_PASSWORDS") -> dict[str, str]:
    """``node:secret`` pairs separated by white space (``ODC_NODE_PASSWORDS``,
    ``ODC_COMMAND_KEYS``); ``source`` names the variable in errors."""
    out: dict[str, str] = {}
    for word in text.split():
        node, sep, secret = word.partition(":")
        if not sep or not node or not secret:
            raise ConfigError(f"{source}: {node or word!r} is not node:secret")
        out[node] = secret
    return out


class NodeHost:
    """Runs ``roster`` against the broker at ``broker_url`` until the block exits.

    ``inference_workers`` bounds the inference threads of all the nodes together; each run
    uses ``intra_op_threads`` threads inside onnxruntime (default 1). ``broker_url`` may
    name each node's account: see :func:`node_broker_url`. ``bus_factory`` makes each
    node's bus (its own MQTT session by default).
    """

    def __init__(
        self,
        roster: list[HostedNode],
        broker_url: str,
        clock: Clock,
        *,
        inference_workers: int = 2,
        intra_op_threads: int = 1,
        start_concurrency: int = 32,
        passwords: Mapping[str, str] | None = None,
        bus_factory: BusFactory = mqtt_bus,
    ) -> None:
        if not roster:
            raise ConfigError("a node host needs at least one node")
        ids = [h.config.node_id for h in roster]
        if len(set(ids)) != len(ids):
            raise ConfigError("a node host's nodes must have distinct ids")
        if start_concurrency < 1:
            raise ConfigError(f"start_concurrency must be >= 1, got {start_concurrency}")
        self.roster = roster
        self.broker_url = broker_url
        # every node's URL now: a missing password stops the start before any connection
        self._urls = {i: node_broker_url(broker_url, i, passwords) for i in ids}
        self.clock = clock
        self._bus_factory = bus_factory
        self.pool = InferencePool(inference_workers, intra_op_threads=intra_op_threads)
        self.nodes: dict[str, Node] = {}
        self._start_gate = asyncio.Semaphore(start_concurrency)
        self._stop = asyncio.Event()
        self._ready = asyncio.Event()
        self._tg: asyncio.TaskGroup | None = None

    @property
    def telemetry_sent(self) -> int:
        return sum(n.telemetry_sent for n in self.nodes.values())

    async def _serve(self, hosted: HostedNode) -> None:
        config, profile = hosted.config, hosted.profile
        config.data_dir.mkdir(parents=True, exist_ok=True)
        # the last will sealed now, as the one-node runner does (flightsw.node.runner)
        sealer = node_sealer(config)
        topic = topics.status(config.node_id)
        offline = Status(node=config.node_id, state="offline", t=0.0, profile=profile.name)
        body = sealer.seal(topic, offline.model_dump(mode="python"))
        will_seq = body["auth"]["seq"] if "auth" in body else None
        will = Will(topic=topic, payload=encode(body), qos=1, retain=True)
        url = self._urls[config.node_id]
        released = False
        await self._start_gate.acquire()
        try:
            async with self._bus_factory(url, f"odc-node-{config.node_id}", will) as bus:
                # the node's runs go through the host's pool: shared sessions and threads
                node = Node(config, bus, self.clock, profile, hosted.orbits, sealer=sealer,
                            will_seq=will_seq, inference=self.pool,
                            lifetime=hosted.lifetime)
                async with node:
                    self._start_gate.release()
                    released = True
                    self.nodes[config.node_id] = node
                    if len(self.nodes) == len(self.roster):
                        self._ready.set()
                    await self._stop.wait()
        finally:
            if not released:
                self._start_gate.release()
            self.nodes.pop(config.node_id, None)

    async def __aenter__(self) -> Self:
        tg = asyncio.TaskGroup()
        await tg.__aenter__()
        self._tg = tg
        for hosted in self.roster:
            tg.create_task(self._serve(hosted), name=f"host:{hosted.config.node_id}")
        try:
            await self._ready.wait()
        except BaseException as exc:  # a node failed to start (the group cancelled us)
            self._stop.set()
            try:
                await tg.__aexit__(type(exc), exc, exc.__traceback__)
            finally:
                self.pool.close()
            raise
        log.info("node host: %d nodes online", len(self.nodes))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        assert self._tg is not None
        try:
            await self._tg.__aexit__(exc_type, exc, tb)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.pool.close, True)
        log.info("node host stopped")
