"""The ground client's requests on the wire (a MemoryBus standing in for the broker)."""

from __future__ import annotations

import asyncio

import numpy as np

from flightsw.bus.memory import MemoryBus
from flightsw.clock import WallClock
from flightsw.protocol import decode, dump
from groundstation.client import GroundClient
from groundstation.protocol import REQUEST_TOPIC, Reply, reply_topic


async def test_a_submit_sends_only_the_fields_it_sets() -> None:
    """Absent options (no deadline, no pinned node, not a pipeline) are left out of the
    request, so a ground station older than a field still takes a plain job."""
    bus = MemoryBus()
    seen: list[dict[str, object]] = []
    async with bus.subscribe(REQUEST_TOPIC) as reqs, GroundClient(
        bus, WallClock(), client_id="t", timeout_s=5
    ) as gc:

        async def answer() -> None:
            msg = await reqs.get()
            req = decode(msg.payload)
            assert isinstance(req, dict)
            seen.append(req)
            rep = Reply(req_id=req["req_id"], ok=True, data={"job_id": "j1"})
            await bus.publish(reply_topic("t"), dump(rep))

        task = asyncio.create_task(answer())
        got = await gc.submit("ab" * 32, {"input": np.zeros((1, 64), np.float32)}, job_id="j1")
        await task
    assert got == "j1"
    args = seen[0]["args"]
    assert isinstance(args, dict) and "node" not in args
    job = args["job"]
    assert isinstance(job, dict)
    assert {"stages", "deadline_s"}.isdisjoint(job), sorted(job)
    assert job["job_id"] == "j1" and job["priority"] == 5
