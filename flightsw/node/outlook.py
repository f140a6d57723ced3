"""One node's energy outlook: its battery, rates and eclipse timeline from now.

The budget's margin (:meth:`~flightsw.node.budget.Budget.margin_wh`) answers "how much may be
spent now and keep the floor through the end of the *next* eclipse". That is enough for a
job that ends before that eclipse does: spending its energy at once is the worst case
(issue #12). A job that runs past it is not covered: the battery may refill in the sunlight
between, while the job still draws through the eclipse after. For such a job the core walks
the timeline itself: the battery with the job's extra power over its run, the bus baseline
after it, through the end of the first eclipse that ends after the job does, and admits the
job only if the lowest point stays at or above the floor. A node whose bus alone loses
energy over an orbit (``deficit``) ends each eclipse lower than the one before: any joule
it spends brings its floor crossing nearer, however far the walk looks, so the scheduler
runs nothing there (the walk, if asked, covers the whole scan).
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

__all__ = ["Outlook"]


class Outlook(NamedTuple):
    """One row's energy state and eclipse timeline (made by ``Budget.outlook``)."""

    now: float
    battery_wh: float
    floor_wh: float  # the depth-of-discharge floor plus the forecast's own error pad
    capacity_wh: float
    solar_w: float  # array output in full sunlight
    base_w: float  # bus load with compute idle (heaters included when cold)
    idle_w: float  # idle compute, part of ``base_w``
    eta_c: float
    eta_d: float
    eclipses: tuple[tuple[float, float], ...]  # (start, end) from now, in time order
    horizon: float  # end of the scan the eclipses come from
    deficit: bool = False  # the bus alone loses energy over an orbit (compute idle)

    def covered_until(self) -> float:
        """End of the window the budget's margin covers: the next eclipse's end."""
        for _, end in self.eclipses:
            if end > self.now:
                return end
        return self.now

    def lowest_wh(self, watts: float, duration_s: float) -> float:
        """Lowest battery above the floor (Wh, negative: below) if a run of ``watts`` (its
        mode's compute watts) starts now for ``duration_s``, through the end of the first
        eclipse that ends after it (or the run's end if none does within the scan). On a
        node in ``deficit`` each eclipse ends lower than the last: the walk goes on to the
        end of the scan."""
        now = self.now
        job_end = now + max(0.0, duration_s)
        if job_end > self.horizon:  # beyond what was scanned: assume the worst
            return -float("inf")
        stop = job_end
        if self.deficit:  # every orbit ends lower: the whole scan is at stake
            stop = self.horizon
        else:
            for _, end in self.eclipses:
                if end >= job_end:
                    stop = end
                    break
        ecl = self.eclipses
        cuts = {now, job_end, stop}
        for s, e in ecl:
            if s >= stop:
                break  # in time order: the rest start later still
            cuts.add(max(s, now))
            cuts.add(min(e, stop))
        points = sorted(c for c in cuts if now <= c <= stop)
        extra = max(0.0, watts - self.idle_w)
        base, solar, cap = self.base_w, self.solar_w, self.capacity_wh
        eta_c, eta_d = self.eta_c, self.eta_d
        e = self.battery_wh
        low = e
        # eclipses are disjoint and in time order, and every edge before ``stop`` is a cut:
        # one pointer says whether a segment's midpoint is dark (no scan of them all)
        j, n = 0, len(ecl)
        for a, b in itertools.pairwise(points):
            dt = b - a
            if dt <= 0:
                continue
            mid = 0.5 * (a + b)
            while j < n and ecl[j][1] <= mid:
                j += 1
            dark = j < n and ecl[j][0] <= mid
            load = base + (extra if mid < job_end else 0.0)
            net = (0.0 if dark else solar) - load
            rate = net * eta_c if net >= 0 else net / eta_d
            e = min(cap, e + rate * dt / 3600.0)
            low = min(low, e)
        return low - self.floor_wh
