"""The outlook's battery walk: the pointer walk equals the plain one, bit for bit."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from flightsw.node.outlook import Outlook


def plain_lowest_wh(ol: Outlook, watts: float, duration_s: float) -> float:
    """The walk as first written: every eclipse tested at every segment's midpoint."""
    now = ol.now
    job_end = now + max(0.0, duration_s)
    if job_end > ol.horizon:
        return -float("inf")
    stop = job_end
    if ol.deficit:
        stop = ol.horizon
    else:
        for _, end in ol.eclipses:
            if end >= job_end:
                stop = end
                break
    cuts = {now, job_end, stop}
    for s, e in ol.eclipses:
        if s < stop:
            cuts.add(max(s, now))
            cuts.add(min(e, stop))
    points = sorted(c for c in cuts if now <= c <= stop)
    extra = max(0.0, watts - ol.idle_w)
    e = ol.battery_wh
    low = e
    for a, b in itertools.pairwise(points):
        dt = b - a
        if dt <= 0:
            continue
        mid = 0.5 * (a + b)
        dark = any(s <= mid < en for s, en in ol.eclipses)
        load = ol.base_w + (extra if mid < job_end else 0.0)
        net = (0.0 if dark else ol.solar_w) - load
        rate = net * ol.eta_c if net >= 0 else net / ol.eta_d
        e = min(ol.capacity_wh, e + rate * dt / 3600.0)
        low = min(low, e)
    return low - ol.floor_wh


@st.composite
def outlooks(draw: st.DrawFn) -> tuple[Outlook, float, float]:
    now = draw(st.floats(1.7e9, 1.9e9))
    period = draw(st.floats(5400.0, 6000.0))
    dark = draw(st.floats(0.0, 0.45)) * period
    phase = draw(st.floats(-period, period))
    n = draw(st.integers(0, 6))
    starts = [now + phase + k * period for k in range(n)]
    eclipses = tuple((max(s, now), s + dark) for s in starts if s + dark > now and dark > 0)
    cap = draw(st.floats(10.0, 5000.0))
    ol = Outlook(
        now=now, battery_wh=draw(st.floats(0.0, 1.0)) * cap,
        floor_wh=draw(st.floats(0.1, 0.4)) * cap, capacity_wh=cap,
        solar_w=draw(st.floats(0.0, 3000.0)), base_w=draw(st.floats(1.0, 500.0)),
        idle_w=draw(st.floats(0.0, 50.0)), eta_c=draw(st.floats(0.8, 1.0)),
        eta_d=draw(st.floats(0.8, 1.0)), eclipses=eclipses,
        horizon=now + draw(st.floats(0.0, 7.0)) * period, deficit=draw(st.booleans()),
    )
    return ol, draw(st.floats(0.0, 1500.0)), draw(st.floats(0.0, 4.0 * period))


@settings(max_examples=400, deadline=None)
@given(outlooks())
def test_the_pointer_walk_equals_the_plain_walk_bit_for_bit(case: tuple[Outlook, float, float]
                                                             ) -> None:
    ol, watts, duration = case
    got, want = ol.lowest_wh(watts, duration), plain_lowest_wh(ol, watts, duration)
    assert got == want or (np.isnan(got) and np.isnan(want)), (got, want)
