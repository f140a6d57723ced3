"""WebSocket clients of the console, and one broadcast of each change to all of them.

A message is encoded once and sent to every client; a client that cannot take it within
``send_timeout_s`` (a stalled browser tab) is dropped rather than slowing the others. It
reconnects and gets a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiohttp import web

__all__ = ["Hub"]

log = logging.getLogger("groundstation.console")


def encode(msg: dict[str, Any]) -> str:
    return json.dumps(msg, separators=(",", ":"), allow_nan=False, default=str)


class Hub:
    def __init__(self, send_timeout_s: float = 2.0) -> None:
        self.clients: set[web.WebSocketResponse] = set()
        self.send_timeout_s = send_timeout_s
        self.sent = 0

    def add(self, ws: web.WebSocketResponse) -> None:
        self.clients.add(ws)

    def discard(self, ws: web.WebSocketResponse) -> None:
        self.clients.discard(ws)

    async def broadcast(self, msg: dict[str, Any]) -> None:
        text = encode(msg)
        clients = list(self.clients)

        async def one(ws: web.WebSocketResponse) -> None:
            try:
                await asyncio.wait_for(ws.send_str(text), self.send_timeout_s)
                self.sent += 1
            except (TimeoutError, ConnectionError, RuntimeError) as exc:
                log.info("console: dropping a WebSocket client: %s", exc or type(exc).__name__)
                self.discard(ws)
                with contextlib.suppress(Exception):
                    await ws.close()

        await asyncio.gather(*(one(ws) for ws in clients))

    async def close(self) -> None:
        for ws in list(self.clients):
            with contextlib.suppress(Exception):
                await ws.close()
        self.clients.clear()
