"""Lifetime events of a per-job simulation: accelerators lost for good, and debris
collision-avoidance manoeuvres, drawn from each profile's ``[lifetime]`` figures.

With ``lifetime_events = true`` in a scenario, :func:`draw_lifetime_events` draws every
node's events over the run (``World.lifetime``) and the engine hands each node its
:class:`~flightsw.node.lifetime.NodeLifetime`, which the shared node core consults: a node
whose accelerator is lost stops for good, as a crash without restart (its leases lapse and
its jobs run elsewhere); a manoeuvre pauses compute for its window (the running job stops
and is queued again, as an operator's ``pause`` telecommand does) and draws propulsion
power. The draw and the state live in :mod:`flightsw.node.lifetime`, below both drivers,
so an emulated node (``flightsw node --lifetime-seed``) draws its events with the same
function.

Draws use their own seeded generator, so a scenario repeats exactly and switching the
events on changes nothing else of a run.
"""

from __future__ import annotations

from flightsw.node.lifetime import LifetimeDraw, draw_lifetime_events

__all__ = ["LifetimeDraw", "draw_lifetime_events"]
