"""The node's ground link: store and forward of results inside contact windows.

Results leave in order, only while the satellite is above some announced ground station's
elevation mask (always, when no station is announced), each after its modelled
processing, propagation and serialisation time at the downlink rate.

A job whose result (or :class:`~flightsw.protocol.messages.StageReturn`) waits here is no
longer in the core's queue, but its lease must not lapse at the ground before the message
is down: :meth:`Downlink.leases` lists it (job id -> the message's epoch) until it is
published, and the heartbeat (``NodeState.leases``) carries that list too.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import numpy as np

from flightsw.physics.ground import Station, in_contact
from flightsw.protocol import JobResult
from flightsw.protocol.messages import StageReturn

if TYPE_CHECKING:
    from flightsw.node.service import Node

__all__ = ["Downlink"]

_C_KM_S = 299_792.458


class Downlink:
    """The queue of results waiting for the ground, and the stations that can take them."""

    def __init__(self, node: Node) -> None:
        self.node = node
        # results, and pipeline jobs given back to the ground (flightsw.node.pipeline)
        self.queue: asyncio.Queue[tuple[str, JobResult | StageReturn]] = asyncio.Queue()
        self.stations: list[Station] = []  # announced by the ground; none = always in contact
        self.min_elevation_deg = 10.0
        self.held = 0  # results waiting for a contact window now
        # job id -> (epoch, copies) of the results and returns queued or being sent
        self._pending: dict[str, tuple[int, int]] = {}

    def send(self, topic: str, result: JobResult | StageReturn) -> None:
        job_id, epoch = _lease_of(result)
        had, n = self._pending.get(job_id, (epoch, 0))
        self._pending[job_id] = (max(had, epoch), n + 1)
        self.queue.put_nowait((topic, result))

    def leases(self) -> dict[str, int]:
        """Job id -> epoch of every job whose result or return waits to be published
        (the highest epoch when a job has more than one waiting)."""
        return {job_id: epoch for job_id, (epoch, _) in self._pending.items()}

    def _sent(self, result: JobResult | StageReturn) -> None:
        job_id, _ = _lease_of(result)
        got = self._pending.get(job_id)
        if got is None:
            return
        if got[1] <= 1:
            del self._pending[job_id]
        else:
            self._pending[job_id] = (got[0], got[1] - 1)

    def announce(self, stations: list[Station], min_elevation_deg: float) -> None:
        self.stations = stations
        self.min_elevation_deg = min_elevation_deg

    def in_contact(self, now: float) -> bool:
        """Above some ground station's elevation mask (always, if no station is known)."""
        if not self.stations:
            return True
        r = self.node.budget.position_of(0)
        return bool(in_contact(r, now, self.stations, self.min_elevation_deg).any())

    def delay_s(self, size: int) -> float:
        """Processing + propagation + serialisation at the downlink rate (0 if no stations)."""
        if not self.stations:
            return 0.0
        links = self.node.profile.links
        r = self.node.budget.position_of(0)
        rng_km = min(float(np.linalg.norm(r - s.ecef_km)) for s in self.stations)
        return (
            links.processing_latency_s
            + rng_km / _C_KM_S
            + 8.0 * size / max(links.downlink_rate_bps, 1.0)
        )

    async def serve(self) -> None:
        node = self.node
        clock = node.clock
        while True:
            topic, result = await self.queue.get()
            payload = node.seal(topic, result)  # sealed as it leaves, numbers in order
            held = False
            while not self.in_contact(clock.now()):
                if not held:
                    held = True
                    self.held += 1
                await clock.sleep(node.config.physics_step_s)
            if held:
                self.held -= 1
            delay = self.delay_s(len(payload))
            if delay > 0:
                await clock.sleep(delay)
            try:
                await node.bus.publish(topic, payload, qos=1)
            finally:
                self._sent(result)


def _lease_of(result: JobResult | StageReturn) -> tuple[str, int]:
    """The job and epoch a waiting message holds the lease at: a result's own; a
    return's, the epoch its node held the job at (not the returned job's, one higher)."""
    if isinstance(result, StageReturn):
        return result.job.job_id, result.epoch
    return result.job_id, result.epoch
