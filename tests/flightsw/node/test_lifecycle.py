"""The node's lifecycle: exit ends every task the node started."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from flightsw.bus import MemoryBus
from flightsw.clock import WallClock
from tests.helpers.node_harness import running_node

EPOCH = 1_774_000_000.0


async def test_exit_ends_a_task_that_absorbed_its_cancellation(tmp_path: Path) -> None:
    clock = WallClock(epoch=EPOCH, scale=100.0)
    absorbed = asyncio.Event()

    async def stubborn() -> None:
        with contextlib.suppress(asyncio.CancelledError):  # as a library call might
            await clock.sleep(1e6)
        absorbed.set()
        await clock.sleep(1e6)

    async with asyncio.timeout(20):
        async with running_node(MemoryBus(), clock, tmp_path / "n1") as node:
            task = node.spawn(stubborn(), "stubborn")
            await asyncio.sleep(0)  # let it start and wait
        assert absorbed.is_set() and task.cancelled()
