"""The only way any code reads time or sleeps.

Mission time is POSIX seconds (UTC) as a float. Two clocks share one interface:

* :class:`WallClock` scales the host clock:
  ``mission = epoch + (wall - anchor) * scale``. Processes that agree on ``epoch``,
  ``anchor`` and ``scale`` agree on mission time without talking to each other.
* :class:`VirtualClock` never looks at the host clock: time jumps to the earliest pending
  sleep when every task is blocked; ties wake in the order the sleeps were made, so a run
  with the same seed repeats exactly (the approach of SimPy's event heap).

``perf_counter`` measures host time spent (inference wall time) and is the one place
host time is read for measurement rather than for mission time.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Awaitable
from typing import TypeVar

from flightsw.exceptions import ClockError

__all__ = ["Clock", "VirtualClock", "WallClock"]

T = TypeVar("T")


class Clock(abc.ABC):
    """Mission time source and sleeper."""

    @abc.abstractmethod
    def now(self) -> float:
        """Current mission time, POSIX seconds UTC."""

    @abc.abstractmethod
    async def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` of mission time."""

    async def sleep_until(self, t: float) -> None:
        """Sleep until mission time ``t`` (returns at once if it has passed)."""
        delay = t - self.now()
        if delay > 0:
            await self.sleep(delay)

    @property
    @abc.abstractmethod
    def scale(self) -> float:
        """Mission seconds per host second (``inf`` for a virtual clock)."""

    def perf_counter(self) -> float:
        """Host seconds from an arbitrary origin, for measuring host work."""
        return time.perf_counter()

    async def sleep_host(self, seconds: float) -> None:
        """Sleep ``seconds`` of host time (housekeeping: flushes, UI refresh, backoff).

        On a virtual clock this is a sleep of that much virtual time, so it never spins.
        """
        await self.sleep(seconds * self.scale if self.scale != float("inf") else seconds)

    def to_host_seconds(self, mission_seconds: float) -> float:
        """How long ``mission_seconds`` last on the host (0 on a virtual clock)."""
        if self.scale == float("inf"):
            return 0.0
        return mission_seconds / self.scale


class WallClock(Clock):
    """Scaled wall clock: ``mission = epoch + (wall - anchor) * scale``."""

    def __init__(
        self, epoch: float | None = None, scale: float = 1.0, anchor: float | None = None
    ) -> None:
        if not scale > 0 or scale == float("inf"):
            raise ClockError(f"time scale must be a positive finite number, got {scale!r}")
        wall = time.time()
        self._anchor = wall if anchor is None else anchor
        self._epoch = wall if epoch is None else epoch
        self._scale = float(scale)

    @property
    def epoch(self) -> float:
        return self._epoch

    @property
    def anchor(self) -> float:
        return self._anchor

    @property
    def scale(self) -> float:
        return self._scale

    def now(self) -> float:
        return self._epoch + (time.time() - self._anchor) * self._scale

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self._scale)


class VirtualClock(Clock):
    """Deterministic clock: time advances only when every task waits on it."""

    def __init__(self, epoch: float = 0.0) -> None:
        self._now = float(epoch)
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()

    @property
    def scale(self) -> float:
        return float("inf")

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds < 0:
            raise ClockError(f"cannot sleep a negative time ({seconds!r} s)")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, (self._now + seconds, next(self._counter), fut))
        await fut

    def pending(self) -> int:
        """Number of sleeps not yet woken (cancelled ones included until popped)."""
        return len(self._heap)

    def next_wakeup(self) -> float | None:
        """Mission time of the earliest live sleep, or ``None``."""
        while self._heap and self._heap[0][2].done():
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def advance(self) -> bool:
        """Wake the earliest sleeper, moving time to its deadline; False if none."""
        while self._heap:
            when, _, fut = heapq.heappop(self._heap)
            if fut.done():  # cancelled
                continue
            self._now = max(self._now, when)
            fut.set_result(None)
            return True
        return False

    async def _settle(self) -> None:
        """Yield until the event loop has nothing ready to run."""
        loop = asyncio.get_running_loop()
        ready = getattr(loop, "_ready", None)
        for _ in range(10_000):
            await asyncio.sleep(0)
            if ready is not None and not ready:
                # two quiet turns in a row: every task is waiting on something
                await asyncio.sleep(0)
                if not ready:
                    return
        return

    async def run(self, main: Awaitable[T], *, until: float | None = None) -> T | None:
        """Drive ``main`` on virtual time; stop at mission time ``until`` if given.

        Returns ``main``'s result, or ``None`` when stopped by ``until`` (``main`` is then
        cancelled). Raises :class:`ClockError` if every task waits on something other
        than the clock (a deadlock in virtual time).
        """
        task = asyncio.ensure_future(main)
        try:
            while not task.done():
                await self._settle()
                if task.done():
                    break
                nxt = self.next_wakeup()
                if nxt is None:
                    raise ClockError("virtual time deadlock: every task waits, none on the clock")
                if until is not None and nxt > until:
                    self._now = max(self._now, until)
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                    return None
                self.advance()
            return task.result()
        finally:
            if not task.done():
                task.cancel()
