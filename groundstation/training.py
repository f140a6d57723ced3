"""The operator's side of a data-parallel training job (``flightsw.protocol.training``).

:func:`run_training` splits the training set into one shard per member (``numpy.
array_split``: as even as the items allow), sends each member its :class:`TrainJob`, and
waits for every member's :class:`TrainDone`. If a member goes offline (its status, the
broker's last will when it dies) or any member ends failed, the job is run again from the
start on the members whose last status is ``online``, the set re-split among them, under
the id ``JOB.rN`` for attempt N; the full batch is the same, so the result is too. The
ground station service plays no part: it neither places nor tracks training jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from flightsw.bus import Bus, Message, Subscription
from flightsw.exceptions import JobRejected, ProtocolError
from flightsw.models.mlp_train import check_data
from flightsw.protocol import Status, decode, dump, parse, topics
from flightsw.protocol.messages import Tensor
from flightsw.protocol.training import TrainDone, TrainJob, done_topic, train_inbox
from groundstation.exceptions import GroundError

__all__ = ["TrainingRun", "run_training"]

_SETTLE_S = 0.5  # host seconds to let the retained statuses arrive before the first attempt


@dataclass(frozen=True)
class TrainingRun:
    """How a training job ended: the id and members of its last attempt, each member's
    ``TrainDone`` (member order), and the attempts it took."""

    job_id: str
    members: list[str]
    done: list[TrainDone]
    attempts: int


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
    max_attempts: int = 3,
) -> TrainingRun:
    """Train on ``members`` (see the module doc). :class:`GroundError` naming the problem
    for bad arguments, when no member is online, or when an attempt does not end within
    ``timeout_s`` host seconds; after ``max_attempts`` the last attempt is returned as it
    ended (its ``TrainDone``'s ``status`` says so)."""
    try:
        check_data(sizes, x, y)
    except JobRejected as exc:
        raise GroundError(str(exc)) from exc
    if len(set(members)) != len(members) or not members:
        raise GroundError(f"members: distinct node ids needed, got {list(members)}")
    online: dict[str, bool] = {}
    async with (
        bus.subscribe(f"{topics.PREFIX}/+/train/+/done", qos=1) as dones,
        bus.subscribe(f"{topics.PREFIX}/+/status", qos=1) as statuses,
    ):
        await asyncio.sleep(_SETTLE_S)
        _read_statuses(statuses, online)
        attempt = 0
        while True:
            live = [m for m in members if online.get(m, True)]
            if not live:
                raise GroundError(f"training {job_id}: no member online of {list(members)}")
            if len(y) < len(live):
                raise GroundError(f"{len(y)} items cannot make {len(live)} shards")
            jid = job_id if attempt == 0 else f"{job_id}.r{attempt}"
            done = await _attempt(bus, dones, statuses, online, jid, live, sizes, x, y,
                                  steps=steps, lr=lr, seed=seed,
                                  step_timeout_s=step_timeout_s, timeout_s=timeout_s)
            attempt += 1
            ok = done is not None and all(d.status == "done" for d in done)
            if ok or attempt >= max_attempts:
                got = done if done is not None else []
                return TrainingRun(jid, live, got, attempt)


async def _attempt(bus: Bus, dones: Subscription, statuses: Subscription,
                   online: dict[str, bool], job_id: str, members: list[str],
                   sizes: Sequence[int], x: npt.NDArray[Any], y: npt.NDArray[Any], *,
                   steps: int, lr: float, seed: int, step_timeout_s: float,
                   timeout_s: float) -> list[TrainDone] | None:
    """One attempt: every member's ``TrainDone``, or None if a member went offline."""
    shards = np.array_split(np.arange(len(y)), len(members))
    try:
        jobs = [TrainJob(job_id=job_id, members=members, sizes=list(sizes), seed=seed,
                         steps=steps, lr=lr, total_items=len(y), step_timeout_s=step_timeout_s,
                         x=Tensor.from_array(x[rows]), y=Tensor.from_array(y[rows]))
                for rows in shards]
    except ValueError as exc:  # pydantic's ValidationError names the field
        raise GroundError(f"training job: {exc}") from exc
    for node, job in zip(members, jobs, strict=True):
        await bus.publish(train_inbox(node), dump(job), qos=1)
    done: dict[str, TrainDone] = {}
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while len(done) < len(members):
        _read_statuses(statuses, online)
        if not all(online.get(m, True) for m in members):
            return None
        left = end - loop.time()
        if left <= 0:
            missing = sorted(set(members) - set(done))
            raise GroundError(f"training {job_id}: no end from {', '.join(missing)} within "
                              f"{timeout_s:.0f} s")
        msg = await _next(dones, min(0.2, left))
        if msg is None:
            continue
        with contextlib.suppress(ProtocolError):
            d = parse(TrainDone, decode(msg.payload))
            if d.job_id == job_id and d.node in members and \
                    msg.topic == done_topic(d.node, job_id):
                done[d.node] = d
    return [done[n] for n in members]


async def _next(sub: Subscription, timeout_s: float) -> Message | None:
    try:
        return await asyncio.wait_for(sub.get(), timeout_s)
    except TimeoutError:
        return None


def _read_statuses(sub: Subscription, online: dict[str, bool]) -> None:
    """Take every status received so far: node -> online (or safe) now."""
    while (msg := sub.get_nowait()) is not None:
        node = topics.node_from_topic(msg.topic)
        if node is None or not msg.payload:
            continue
        with contextlib.suppress(ProtocolError):
            online[node] = parse(Status, decode(msg.payload)).state == "online"
