"""Hosting a long-running service in a process: stop on signals, a heartbeat file.

Shared by ``flightsw node`` and ``groundstation serve``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from flightsw.clock import Clock

__all__ = ["configure_logging", "heartbeat", "stop_on_signals"]


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def stop_on_signals(stop: asyncio.Event | None = None) -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (call from inside the running loop)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    return stop


@contextlib.asynccontextmanager
async def heartbeat(
    path: Path, clock: Clock, status: Callable[[], object], period_s: float = 2.0
) -> AsyncIterator[None]:
    """Rewrite ``path`` every ``period_s`` host seconds while the block runs (the container
    health check reads its age); the line is the mission time and ``status()``."""

    async def beat() -> None:
        while True:
            path.write_text(f"{clock.now():.3f} {status()}\n")
            await clock.sleep_host(period_s)

    task = asyncio.create_task(beat(), name=f"heartbeat:{path}")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
