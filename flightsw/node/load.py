"""Compute power of N nodes over a physics step, from modelled runs (one row or many).

A run is booked into the battery as it goes: at each step boundary each busy row pays the
energy above idle of the part run so far, and a run's close pays the rest, so a completed
run costs exactly its modelled energy however short it was (the amount is a duration times
watts, never a difference of absolute mission times). The emulated node is one row, the
simulator N rows; both step their :class:`~flightsw.node.budget.Budget` with
:meth:`ComputeLoad.power`, so both drivers step physics alike.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["ComputeLoad"]

F = npt.NDArray[np.float64]


class ComputeLoad:
    """Runs in progress and energy spent but not yet booked, per row."""

    def __init__(self, idle_w: F) -> None:
        n = len(idle_w)
        self.idle_w = np.asarray(idle_w, dtype=np.float64)
        self.busy = np.zeros(n, dtype=bool)
        self.start = np.zeros(n)
        self.latency_s = np.zeros(n)
        self.extra_w = np.zeros(n)  # run watts above idle
        self.booked_j = np.zeros(n)  # of the running job, already paid
        self.pending_j = np.zeros(n)  # paid by closed runs since the last step

    def begin(self, i: int, t: float, latency_s: float, watts: float) -> None:
        self.busy[i] = True
        self.start[i] = t
        self.latency_s[i] = latency_s
        self.extra_w[i] = watts - self.idle_w[i]
        self.booked_j[i] = 0.0

    def close(self, i: int, t: float, *, complete: bool) -> None:
        """Row ``i``'s run ended at ``t`` (``complete``: ran its whole modelled latency)."""
        if not self.busy[i]:
            return
        ran = self.latency_s[i] if complete else min(self.latency_s[i],
                                                      max(0.0, t - self.start[i]))
        self.pending_j[i] += max(0.0, self.extra_w[i] * ran - self.booked_j[i])
        self.busy[i] = False
        self.extra_w[i] = 0.0
        self.booked_j[i] = 0.0

    def unbooked_wh(self, i: int) -> float:
        """Energy spent by row ``i`` since the last step that the battery does not show."""
        return float(self.pending_j[i]) / 3600.0

    def power(self, t: float, dt: float, alive: npt.NDArray[np.bool_] | None = None) -> F:
        """Average compute watts of each row over the step ending at ``t``; books it."""
        idle = self.idle_w if alive is None else np.where(alive, self.idle_w, 0.0)
        if dt <= 0:
            return idle
        busy = self.busy
        ran = np.clip(np.minimum(t - self.start, self.latency_s), 0.0, None)
        so_far = np.where(busy, self.extra_w * ran, 0.0)
        extra = self.pending_j + np.maximum(so_far - self.booked_j, 0.0)
        self.booked_j = np.where(busy, np.maximum(so_far, self.booked_j), 0.0)
        self.pending_j = np.zeros_like(self.pending_j)
        return idle + extra / dt
