"""Collect what an MQTT subscription receives until it goes quiet (broker tests)."""

from __future__ import annotations

import asyncio

from flightsw.bus import Message, Subscription


async def drain(sub: Subscription, settle_s: float) -> list[Message]:
    """Everything ``sub`` receives until ``settle_s`` passes with nothing new."""
    out: list[Message] = []
    while True:
        try:
            out.append(await asyncio.wait_for(sub.get(), settle_s))
        except TimeoutError:
            return out
