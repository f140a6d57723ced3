"""Shared fixtures: a real mosquitto per test, an in-memory bus, a TCP fault proxy, and
archives of a synthetic mission."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from missions import MissionHelpers, MissionLog, write_mission
from mosquitto import MosquittoProcess, find_mosquitto

from flightsw.broker import free_port
from flightsw.bus import MemoryBus


def _require_mosquitto() -> None:
    if find_mosquitto() is not None:
        return
    reason = "mosquitto is not installed (apt-get install mosquitto); MQTT tests need it"
    if os.environ.get("CI"):
        pytest.fail(reason + " and CI is set", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
async def mosquitto_factory(
    tmp_path: Path,
) -> AsyncIterator[Callable[..., Awaitable[MosquittoProcess]]]:
    """Factory of running mosquitto brokers (``await mosquitto_factory(**options)``, options
    as for :class:`MosquittoProcess`); each on a free port with its own data directory,
    stopped after the test. Skips (or fails under ``CI``) when mosquitto is missing."""
    brokers: list[MosquittoProcess] = []

    async def make(**options: object) -> MosquittoProcess:
        _require_mosquitto()
        options.setdefault("data_dir", tmp_path / f"mosquitto-{len(brokers)}")
        broker = MosquittoProcess(**options)  # type: ignore[arg-type]
        brokers.append(broker)
        await broker.start()
        return broker

    try:
        yield make
    finally:
        for broker in brokers:
            await broker.stop()


@pytest.fixture
async def mosquitto(
    mosquitto_factory: Callable[..., Awaitable[MosquittoProcess]],
) -> MosquittoProcess:
    """A running mosquitto on a free 127.0.0.1 port, persisting to ``tmp_path``.

    Use ``.url``, ``.port``, ``.restart()``, ``.stop()``, ``.start()``, ``.kill()``.
    """
    return await mosquitto_factory()


@pytest.fixture
def memory_bus() -> MemoryBus:
    return MemoryBus()


class TcpProxy:
    """A TCP relay between clients and a broker that a test can break on purpose.

    ``sever()`` aborts every relayed connection (both sides see a reset, as when a link
    drops). While ``blocked``, each new connection is answered like a broker that is
    down: the CONNECT is read and refused with CONNACK "server unavailable" (MQTT 3.1.1
    return code 3), then closed; ``accepted`` counts them so reconnect attempts can be
    observed. With ``reset_on_accept`` new connections are reset instead, before any
    CONNACK (as a port forwarder does when the broker behind it is gone).
    """

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.blocked = False
        self.reset_on_accept = False
        self.accepted = 0
        self._accept_event = asyncio.Event()
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def wait_accepted(self, count: int) -> None:
        """Wait until ``accepted`` reaches ``count``."""
        while self.accepted < count:
            self._accept_event.clear()
            await self._accept_event.wait()

    def sever(self) -> None:
        for a, b in list(self._links):
            a.transport.abort()
            b.transport.abort()
        self._links.clear()

    async def close(self) -> None:
        self.sever()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._accept_event.set()
        if self.reset_on_accept:
            writer.transport.abort()
            return
        if self.blocked:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                await reader.read(65536)  # the CONNECT packet
                writer.write(bytes([0x20, 0x02, 0x00, 0x03]))  # CONNACK: server unavailable
                await writer.drain()
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        link = (writer, up_writer)
        self._links.add(link)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self._links.discard(link)
            writer.transport.abort()
            up_writer.transport.abort()

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        dst.transport.abort()


@pytest.fixture
async def tcp_proxy() -> AsyncIterator[Callable[[int], Awaitable[TcpProxy]]]:
    """Factory: ``proxy = await tcp_proxy(mosquitto.port)``; closed after the test."""
    proxies: list[TcpProxy] = []

    async def make(upstream_port: int) -> TcpProxy:
        proxy = TcpProxy(upstream_port)
        await proxy.start()
        proxies.append(proxy)
        return proxy

    try:
        yield make
    finally:
        for proxy in proxies:
            await proxy.close()


@pytest.fixture(scope="session")
def mission(tmp_path_factory: pytest.TempPathFactory) -> MissionLog:
    """A 3-hour, 3-node archive (read-only: tests must not write to it)."""
    path = tmp_path_factory.mktemp("mission") / "archive"
    return write_mission(path, nodes={"sat-001": "jetson-agx-orin-64gb",
                                      "sat-002": "h100-sxm", "sat-003": "tpu-v6e"})


@pytest.fixture(scope="session")
def mission_writer() -> type[MissionHelpers]:
    """The mission helpers (``tests/helpers/missions.py``), for tests that need their own
    archive."""
    return MissionHelpers
