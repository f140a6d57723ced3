"""Ending a service's tasks on exit, even one that absorbed its cancellation.

A service cancels the tasks it started before its TaskGroup exits, and the group waits for
them. A library call can absorb a cancellation (seen in the demo's teardown under load: a
node's state and telemetry loops, marked cancelling, were back asleep on the clock), and the
group would then wait for ever. :func:`cancel_all` cancels again, a bounded number of times,
whatever is still alive. Shared by the node and the ground station.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

from flightsw.clock import Clock

__all__ = ["cancel_all"]

ROUNDS = 50  # cancellations at most, WAIT_S apart
WAIT_S = 0.02  # host seconds


async def cancel_all(tasks: Collection[asyncio.Task[Any]], clock: Clock) -> list[str]:
    """Cancel ``tasks`` until all have ended; the names of any still alive at the end."""
    for _ in range(ROUNDS):
        alive = [t for t in tasks if not t.done()]
        if not alive:
            return []
        for task in alive:
            task.cancel()
        # until they have all ended, or a short host time has passed
        ended: asyncio.Future[Any] = asyncio.gather(*alive, return_exceptions=True)
        timer: asyncio.Future[Any] = asyncio.ensure_future(clock.sleep_host(WAIT_S))
        try:
            await asyncio.wait({ended, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
    return sorted(t.get_name() for t in tasks if not t.done())
