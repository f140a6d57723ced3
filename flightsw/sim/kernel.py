"""The discrete-event heap: events in time order, ties broken by insertion order.

As in SimPy, time exists only as the simulation's ``now``; two events at the same time run
in the order they were scheduled (a counter breaks ties), so a run repeats exactly.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any

__all__ = ["EventQueue"]

Handler = Callable[..., None]


class EventQueue:
    """A heap of ``(t, seq, handler, args)``."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Handler, tuple[Any, ...]]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, t: float, handler: Handler, *args: Any) -> None:
        heapq.heappush(self._heap, (t, next(self._seq), handler, args))

    def next_time(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def pop_until(self, t: float) -> tuple[float, Handler, tuple[Any, ...]] | None:
        """The earliest event at or before ``t``, removed; ``None`` if there is none."""
        if self._heap and self._heap[0][0] <= t:
            when, _, handler, args = heapq.heappop(self._heap)
            return when, handler, args
        return None
