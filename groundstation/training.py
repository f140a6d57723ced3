"""The operator's side of a data-parallel training job (``flightsw.protocol.training``).

:func:`run_training` coordinates a run. It splits the training set into one shard per
member (``numpy.array_split``: as even as the items allow), sends each member its
:class:`TrainJob`, and waits for every member's :class:`TrainDone`. With a checkpoint
directory and ``checkpoint_every`` N, the first member sends its parameters and Adam state
after every N-th step and the last; the client writes each to ``DIR/checkpoint.npz``
(``groundstation.train_checkpoint``: temporary file, fsync, rename).

A member is lost when its status goes offline (the broker's last will when it dies), when
the other members end failed naming it (no gradient within ``step_timeout_s``), or when it
ends failed itself. The run is then re-planned: the same job id with ``epoch`` raised by
one, on the members left plus online ``spares`` in place of the lost (the set re-split
among them), from the checkpoint read back from disk (from step 0 without one). Members
refuse gradients of older epochs, the client refuses old epochs' checkpoints and ends, so
a lost member's late work is never mixed in. Called again with the same directory, a run
resumes from the checkpoint there (a checkpoint of another run is refused) under the next
epoch; one already at its last step just returns its parameters. The full batch is the
same whatever the members, so the result is one node's up to rounding. Progress goes to a
:class:`~groundstation.train_progress.TrainProgress` (lines and a JSON summary). The
ground station service plays no part: it neither places nor tracks training jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from flightsw.bus import Bus, Message, Subscription
from flightsw.clock import Clock, WallClock
from flightsw.exceptions import JobRejected, ProtocolError
from flightsw.models.mlp_train import check_data
from flightsw.protocol import Status, decode, dump, parse, topics
from flightsw.protocol.jobrules import judge_result, next_epoch
from flightsw.protocol.messages import Tensor
from flightsw.protocol.training import (
    TrainCheckpoint,
    TrainDone,
    TrainJob,
    TrainState,
    ckpt_topic,
    done_topic,
    train_inbox,
)
from groundstation.exceptions import GroundError
from groundstation.train_checkpoint import (
    Checkpoint,
    CheckpointError,
    RunKey,
    data_sha256,
    read_checkpoint,
    read_epoch,
    write_checkpoint,
    write_epoch,
)
from groundstation.train_progress import Replan, TrainProgress

__all__ = ["CHECKPOINT_NAME", "TrainingRun", "run_training"]

log = logging.getLogger("groundstation.training")

CHECKPOINT_NAME = "checkpoint.npz"
_SETTLE_S = 0.5  # host seconds to let the retained statuses arrive before the first attempt


@dataclass(frozen=True)
class TrainingRun:
    """How a training run ended: its last epoch's id, members and ``TrainDone`` (member
    order; empty when it resumed from a finished checkpoint), the final parameters and
    every step's loss from step 0 (empty if failed), the epochs this call ran, the
    checkpoint step it resumed from, the steps its members computed over all epochs, and
    its re-plans."""

    job_id: str
    epoch: int
    members: list[str]
    status: str  # done or failed
    reason: str | None
    done: list[TrainDone]
    params: list[npt.NDArray[np.float64]]
    losses: list[float]
    attempts: int
    resumed_from: int | None
    steps_computed: int
    replans: list[Replan] = field(default_factory=list)


@dataclass
class _Outcome:
    """One epoch's end: every member's ``TrainDone``, or the members lost and why."""

    done: list[TrainDone] | None
    lost: list[str]
    reason: str


@dataclass
class _Run:
    """What every epoch of one run shares."""

    bus: Bus
    clock: Clock
    job_id: str
    key: RunKey
    sizes: list[int]
    x: npt.NDArray[Any]
    y: npt.NDArray[Any]
    steps: int
    lr: float
    seed: int
    step_timeout_s: float
    timeout_s: float
    every: int
    path: Path | None
    progress: TrainProgress
    online: dict[str, bool] = field(default_factory=dict)
    starts: dict[int, int] = field(default_factory=dict)  # epoch -> its start step
    reached: dict[int, int] = field(default_factory=dict)  # epoch -> furthest step known


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
    spares: Sequence[str] = (),
    checkpoint_dir: Path | None = None,
    checkpoint_every: int = 0,
    progress: TrainProgress | None = None,
    clock: Clock | None = None,
) -> TrainingRun:
    """Train on ``members`` (see the module doc). :class:`GroundError` naming the problem
    for bad arguments or a bad checkpoint, when no member is online, or when an epoch does
    not end within ``timeout_s`` host seconds; after ``max_attempts`` epochs the run is
    returned failed with the last reason. Waits are host time on ``clock`` (a wall clock
    by default)."""
    try:
        check_data(sizes, x, y)
    except JobRejected as exc:
        raise GroundError(str(exc)) from exc
    if len(set(members)) != len(members) or not members:
        raise GroundError(f"members: distinct node ids needed, got {list(members)}")
    if set(spares) & set(members) or len(set(spares)) != len(spares):
        raise GroundError(f"spares: distinct node ids that are not members needed, got "
                          f"{list(spares)}")
    if checkpoint_every < 0 or checkpoint_every > steps:
        raise GroundError(f"checkpoint_every: must be in [1, steps={steps}] (0: none), got "
                          f"{checkpoint_every}")
    if checkpoint_every and checkpoint_dir is None:
        raise GroundError("checkpoint_every: checkpoints need a checkpoint directory")
    key = RunKey(job_id=job_id, sizes=tuple(sizes), seed=seed, lr=lr, total_items=len(y),
                 data_sha256=data_sha256(x, y))
    path = None if checkpoint_dir is None else checkpoint_dir / CHECKPOINT_NAME
    ckpt = read_checkpoint(path, key) if path is not None and path.exists() else None
    if ckpt is not None and ckpt.step > steps:
        raise GroundError(f"checkpoint {path}: at step {ckpt.step}, past this run's {steps}")
    prog = progress or TrainProgress(job_id, steps)
    prog.resumed_from = None if ckpt is None else ckpt.step
    if ckpt is not None and ckpt.step == steps:
        prog.members, prog.epoch = ckpt.members, ckpt.epoch
        prog.end("done", ckpt.step, ckpt.losses[-1] if ckpt.losses else None,
                 "finished before: parameters from the checkpoint")
        return TrainingRun(job_id, ckpt.epoch, ckpt.members, "done", prog.reason, [],
                           ckpt.params, ckpt.losses, 0, ckpt.step, 0)
    run = _Run(bus, clock or WallClock(), job_id, key, list(sizes), x, y, steps, lr, seed,
               step_timeout_s, timeout_s, checkpoint_every, path, prog)
    try:
        return await _coordinate(run, list(members), list(spares), ckpt, max_attempts)
    except GroundError as exc:
        prog.end("failed", prog.step, None, str(exc))
        raise


async def _coordinate(run: _Run, members: list[str], spares: list[str],
                      ckpt: Checkpoint | None, max_attempts: int) -> TrainingRun:
    """The epochs of a run until one ends done or ``max_attempts`` have run."""
    bus, job_id, y, prog = run.bus, run.job_id, run.y, run.progress
    path, key = run.path, run.key
    async with (
        bus.subscribe(f"{topics.PREFIX}/+/train/{job_id}/done", qos=1) as dones,
        bus.subscribe(f"{topics.PREFIX}/+/train/{job_id}/ckpt", qos=1) as ckpts,
        bus.subscribe(f"{topics.PREFIX}/+/status", qos=1) as statuses,
    ):
        await run.clock.sleep_host(_SETTLE_S)
        _read_statuses(statuses, run.online)
        epoch = 0 if ckpt is None else next_epoch(ckpt.epoch)
        started = None if path is None else read_epoch(path.parent)
        if started is not None and started[0] == job_id:
            epoch = max(epoch, next_epoch(started[1]))  # above any the nodes have taken
        live = [m for m in members if run.online.get(m, True)]
        used = set(members)
        attempts = 0
        while True:
            if not live:
                raise GroundError(f"training {job_id}: no member online of {list(members)}")
            if len(y) < len(live):
                raise GroundError(f"{len(y)} items cannot make {len(live)} shards")
            start = 0 if ckpt is None else ckpt.step
            run.starts[epoch] = run.reached[epoch] = start
            if path is not None:
                write_epoch(path.parent, job_id, epoch)
            prog.start(epoch, live, start)
            out = await _epoch(run, dones, ckpts, statuses, epoch, live, ckpt)
            attempts += 1
            if out.done is not None:
                first = out.done[0]
                losses = (ckpt.losses if ckpt is not None else []) + first.losses
                params = [np.asarray(t.to_array(), np.float64) for t in first.params]
                prog.stale_refused += sum(d.stale_in for d in out.done)
                prog.end("done", first.steps, losses[-1] if losses else None)
                return TrainingRun(job_id, epoch, live, "done", None, out.done, params,
                                   losses, attempts, prog.resumed_from,
                                   _computed(run, epoch, first.steps), prog.replans)
            if attempts >= max_attempts:
                reason = f"{out.reason} (after {attempts} epochs)"
                prog.end("failed", run.reached[epoch], None, reason)
                return TrainingRun(job_id, epoch, live, "failed", reason, [], [], [],
                                   attempts, prog.resumed_from,
                                   _computed(run, epoch, run.reached[epoch]), prog.replans)
            _read_statuses(statuses, run.online)
            keep = [m for m in live if m not in out.lost and run.online.get(m, True)]
            added = [s for s in spares if s not in used and run.online.get(s) is True]
            added = added[:len(live) - len(keep)]
            used.update(added)
            ckpt = read_checkpoint(path, key) if path is not None and path.exists() else None
            prog.replan(Replan(epoch=next_epoch(epoch), from_step=0 if ckpt is None else ckpt.step,
                               reached_step=run.reached[epoch],
                               lost=[m for m in live if m not in keep], added=added,
                               members=keep + added, reason=out.reason))
            epoch = next_epoch(epoch)
            live = keep + added


def _computed(run: _Run, last_epoch: int, last_step: int) -> int:
    """The steps computed by all epochs: each from its start to the furthest it reached
    (what was learnt of an epoch after its re-plan is added to that re-plan)."""
    run.reached[last_epoch] = max(run.reached[last_epoch], last_step)
    for r in run.progress.replans:
        r.reached_step = max(r.reached_step, run.reached.get(r.epoch - 1, 0))
    return sum(max(0, run.reached[e] - run.starts[e]) for e in run.starts)


async def _epoch(run: _Run, dones: Subscription, ckpts: Subscription,
                 statuses: Subscription, epoch: int, members: list[str],
                 ckpt: Checkpoint | None) -> _Outcome:
    """One epoch on ``members`` from ``ckpt`` (the seed's parameters without one)."""
    resume: TrainState | None = None if ckpt is None else ckpt.state()
    history = [] if ckpt is None else list(ckpt.losses)
    shards = np.array_split(np.arange(len(run.y)), len(members))
    try:
        jobs = [TrainJob(job_id=run.job_id, members=members, sizes=run.sizes, seed=run.seed,
                         steps=run.steps, lr=run.lr, total_items=len(run.y),
                         step_timeout_s=run.step_timeout_s, epoch=epoch,
                         checkpoint_every=run.every, resume=resume,
                         x=Tensor.from_array(run.x[rows]), y=Tensor.from_array(run.y[rows]))
                for rows in shards]
    except ValueError as exc:  # pydantic's ValidationError names the field
        raise GroundError(f"training job: {exc}") from exc
    plan = jobs[0].plan_sha256()
    for node, job in zip(members, jobs, strict=True):
        await run.bus.publish(train_inbox(node), dump(job), qos=1)
    done: dict[str, TrainDone] = {}
    clock = run.clock
    end = clock.perf_counter() + run.timeout_s
    while len(done) < len(members):
        while (cmsg := ckpts.get_nowait()) is not None:
            await _checkpoint(run, cmsg, epoch, members, plan, history)
        _read_statuses(statuses, run.online)
        off = [m for m in members if not run.online.get(m, True)]
        if off:
            return _Outcome(None, off, f"{', '.join(off)} went offline")
        left = end - clock.perf_counter()
        if left <= 0:
            missing = sorted(set(members) - set(done))
            raise GroundError(f"training {run.job_id}: no end from {', '.join(missing)} "
                              f"within {run.timeout_s:.0f} s")
        for msg in await _next(clock, dones, ckpts, min(0.2, left)):
            if msg.topic.endswith("/ckpt"):
                await _checkpoint(run, msg, epoch, members, plan, history)
                continue
            got = _done(run, msg, epoch, members)
            if isinstance(got, _Outcome):
                return got
            if got is not None:
                done[got.node] = got
    while (cmsg := ckpts.get_nowait()) is not None:  # the last step's checkpoint
        await _checkpoint(run, cmsg, epoch, members, plan, history)
    return _Outcome([done[n] for n in members], [], "")


def _done(run: _Run, msg: Message, epoch: int, members: list[str]
          ) -> TrainDone | _Outcome | None:
    """A member's end of this epoch; the members lost if it failed; None for any other
    (an older epoch's end only tells how far that epoch got)."""
    try:
        d = parse(TrainDone, decode(msg.payload))
    except ProtocolError:
        return None
    if msg.topic != done_topic(d.node, run.job_id) or (d.epoch == epoch and d.node not in
                                                      members):
        return None
    if judge_result(False, epoch, d.epoch) == "stale":  # an end of an epoch re-planned since
        run.reached[d.epoch] = max(run.reached.get(d.epoch, 0), d.steps)
        run.progress.stale_refused += d.stale_in
        return None
    if d.epoch != epoch:  # no epoch above this client's own can be of this run
        return None
    run.reached[epoch] = max(run.reached[epoch], d.steps)
    if d.status == "failed":
        run.progress.stale_refused += d.stale_in
        lost = [m for m in d.missing if m in members] or [d.node]
        return _Outcome(None, lost, f"{d.node} failed at step {d.steps}: {d.reason}")
    return d


async def _checkpoint(run: _Run, msg: Message, epoch: int, members: list[str], plan: str,
                      history: list[float]) -> None:
    """Write a checkpoint of this epoch's reporter to disk; refuse any other."""
    try:
        c = parse(TrainCheckpoint, decode(msg.payload))
    except ProtocolError as exc:
        log.warning("training %s: bad checkpoint on %s: %s", run.job_id, msg.topic, exc)
        return
    if c.epoch != epoch or c.node != members[0] or msg.topic != ckpt_topic(c.node, run.job_id) \
            or c.plan != plan:
        log.info("training %s epoch %d: refused a checkpoint of %s, epoch %d, step %d",
                 run.job_id, epoch, c.node, c.epoch, c.state.step)
        return
    losses = history + list(c.losses)
    if len(losses) != c.state.step or run.path is None:
        log.warning("training %s: checkpoint at step %d with %d losses refused", run.job_id,
                    c.state.step, len(losses))
        return
    try:
        ckpt = Checkpoint.of_state(run.key, c.state, steps=run.steps, epoch=epoch,
                                   members=members, losses=losses)
        await asyncio.to_thread(write_checkpoint, run.path, ckpt)
    except (CheckpointError, ProtocolError) as exc:
        log.warning("training %s: checkpoint at step %d refused: %s", run.job_id,
                    c.state.step, exc)
        return
    run.reached[epoch] = max(run.reached.get(epoch, 0), c.state.step)
    run.progress.checkpoint(c.state.step, losses[-1] if losses else None, run.path)


async def _next(clock: Clock, dones: Subscription, ckpts: Subscription, timeout_s: float
                ) -> list[Message]:
    """The next end or checkpoint, whichever comes first (both if both came), or none
    after ``timeout_s`` host seconds."""
    getters = [asyncio.ensure_future(dones.get()), asyncio.ensure_future(ckpts.get())]
    timer = asyncio.ensure_future(clock.sleep_host(timeout_s))
    try:
        finished, _ = await asyncio.wait([*getters, timer],
                                         return_when=asyncio.FIRST_COMPLETED)
    finally:
        for g in (*getters, timer):
            g.cancel()
    return [g.result() for g in getters if g in finished]


def _read_statuses(sub: Subscription, online: dict[str, bool]) -> None:
    """Take every status received so far: node -> online (or safe) now."""
    while (msg := sub.get_nowait()) is not None:
        node = topics.node_from_topic(msg.topic)
        if node is None or not msg.payload:
            continue
        with contextlib.suppress(ProtocolError):
            online[node] = parse(Status, decode(msg.payload)).state == "online"
