"""The operator's side of a data-parallel training job (``flightsw.protocol.training``).

:func:`run_training` splits the training set into one shard per member (``numpy.
array_split``: as even as the items allow), sends each member its :class:`TrainJob`, and
waits for every member's :class:`TrainDone`. The ground station service plays no part: it
neither places nor tracks training jobs, and a member that fails fails the job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from flightsw.bus import Bus
from flightsw.exceptions import JobRejected, ProtocolError
from flightsw.models.mlp_train import check_data
from flightsw.protocol import decode, dump, parse
from flightsw.protocol.messages import Tensor
from flightsw.protocol.training import TrainDone, TrainJob, done_topic, train_inbox
from groundstation.exceptions import GroundError

__all__ = ["run_training"]


async def run_training(
    bus: Bus,
    job_id: str,
    members: Sequence[str],
    sizes: Sequence[int],
    x: npt.NDArray[Any],
    y: npt.NDArray[Any],
    *,
    steps: int,
    lr: float,
    seed: int = 0,
    step_timeout_s: float = 60.0,
    timeout_s: float = 600.0,
) -> list[TrainDone]:
    """Train on ``members`` and return their ``TrainDone`` in member order;
    :class:`GroundError` naming the problem for bad arguments, or if not every member
    ended within ``timeout_s`` host seconds (a failed member's ``TrainDone`` is returned,
    its ``status`` says so)."""
    try:
        check_data(sizes, x, y)
    except JobRejected as exc:
        raise GroundError(str(exc)) from exc
    if len(y) < len(members):
        raise GroundError(f"{len(y)} items cannot make {len(members)} shards")
    shards = np.array_split(np.arange(len(y)), len(members))
    try:
        jobs = [TrainJob(job_id=job_id, members=list(members), sizes=list(sizes), seed=seed,
                         steps=steps, lr=lr, total_items=len(y), step_timeout_s=step_timeout_s,
                         x=Tensor.from_array(x[rows]), y=Tensor.from_array(y[rows]))
                for rows in shards]
    except ValueError as exc:  # pydantic's ValidationError names the field
        raise GroundError(f"training job: {exc}") from exc
    done: dict[str, TrainDone] = {}
    async with bus.subscribe(done_topic("+", job_id), qos=1) as sub:
        for node, job in zip(members, jobs, strict=True):
            await bus.publish(train_inbox(node), dump(job), qos=1)

        async def collect() -> None:
            while len(done) < len(members):
                msg = await sub.get()
                try:
                    obj = decode(msg.payload)
                    d = parse(TrainDone, obj)
                except ProtocolError:
                    continue
                if d.node in members and msg.topic == done_topic(d.node, job_id):
                    done[d.node] = d

        try:
            await asyncio.wait_for(collect(), timeout_s)
        except TimeoutError as exc:
            missing = sorted(set(members) - set(done))
            raise GroundError(f"training {job_id}: no end from {', '.join(missing)} within "
                              f"{timeout_s:.0f} s") from exc
    return [done[n] for n in members]
