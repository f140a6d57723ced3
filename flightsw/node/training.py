"""A node's part in a data-parallel training job (``flightsw.protocol.training``).

Each member trains the same MLP (``flightsw.models.mlp_train``) from the same seed on its
own shard. Every step it computes its shard's gradient, publishes it, and waits for every
member's gradient of that step; it adds them in member order (the full batch's mean
gradient) and takes one Adam step, so all members hold the same parameters after every
step: an all-reduce by all-gather over MQTT. Each step's shard gradient is modelled as
work on the node (``step_flops_per_item`` FLOPs per item, the weights read once, the
profile's mitigations included) at its fastest mode: the step lasts at least that long on
the mission clock, and its energy above idle is charged to the node's power budget.
A node in safe mode refuses training. A member waiting for gradients publishes its
last two again every ``RESEND_S`` mission seconds (a member that subscribed late, or a lost
message, catches up: members are never more than one step apart); one that waits longer
than the job's ``step_timeout_s`` for a step ends the job failed. At the end each member
publishes a ``TrainDone`` with its parameters. Training runs beside the job queue: the
onboard scheduler neither orders it nor defers it for energy.

A re-planned job keeps its id with ``epoch`` raised by one (a fencing token) and may carry
a ``resume`` state (a checkpoint's parameters and Adam state) to go on from. A member
refuses gradients of an older epoch (counted in ``TrainDone.stale_in``, never added in);
a job of a newer epoch than the one it runs stops that run (it ends failed, ``superseded
by epoch N``) and starts the new one. With ``checkpoint_every`` N the first member
publishes a ``TrainCheckpoint`` after every N-th step and after the last.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from flightsw.bus import Message, Subscription
from flightsw.exceptions import JobRejected, ProtocolError
from flightsw.models.mlp_train import (
    Adam,
    check_data,
    init_params,
    shard_gradient,
    step_flops_per_item,
)
from flightsw.protocol import parse
from flightsw.protocol.jobrules import judge_result
from flightsw.protocol.messages import Tensor
from flightsw.protocol.training import (
    TrainCheckpoint,
    TrainDone,
    TrainGrad,
    TrainJob,
    TrainState,
    ckpt_topic,
    done_topic,
    grad_topic,
    grads_of_job,
)

if TYPE_CHECKING:
    from flightsw.node.service import Node

__all__ = ["RESEND_S", "Trainer", "start_state", "state_of"]

log = logging.getLogger("flightsw.node")

RESEND_S = 2.0  # mission seconds a member waits before publishing its gradients again


class Trainer:
    """The training jobs of one node."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.seen: dict[str, int] = {}  # job id -> the latest epoch taken
        self.stop: dict[tuple[str, int], asyncio.Event] = {}  # set: a newer epoch came

    async def on_message(self, msg: Message) -> None:
        node = self.node
        try:
            job = parse(TrainJob, msg.payload, max_bytes=node.config.max_payload_bytes)
            x, y = job.x.to_array("x"), job.y.to_array("y")
            if node.id not in job.members:
                raise JobRejected(f"members: {node.id} is not one of {job.members}",
                                  field="members")
            check_data(job.sizes, x, y)
            start_state(job)  # a resume state that does not fit is refused now
        except (ProtocolError, JobRejected) as exc:
            await node.error("invalid_train_job", str(exc), field=exc.field, topic=msg.topic)
            return
        latest = self.seen.get(job.job_id)
        if latest is not None and job.epoch <= latest:
            return  # a second delivery, or a stale epoch
        self.seen[job.job_id] = job.epoch
        for (jid, _), ev in self.stop.items():
            if jid == job.job_id:
                ev.set()
        if node.core.safe_mode:
            done = TrainDone(job_id=job.job_id, node=node.id, status="failed",
                             epoch=job.epoch, start_step=job.start_step,
                             steps=job.start_step, reason="safe mode: no training")
            await node.send(done_topic(node.id, job.job_id), done)
            return
        node.spawn(self.run(job, x, y), f"train:{job.job_id}")

    async def run(self, job: TrainJob, x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]
                  ) -> None:
        node = self.node
        t0 = node.clock.perf_counter()
        key = (job.job_id, job.epoch)
        self.stop[key] = asyncio.Event()
        try:
            async with node.bus.subscribe(grads_of_job(job.job_id), qos=1) as sub:
                done = await self._steps(job, x, y, sub, self.stop[key])
        finally:
            del self.stop[key]
        done.host_wall_s = node.clock.perf_counter() - t0
        log.info("node %s: training %s epoch %d %s after %d steps, %.2f s host time", node.id,
                 job.job_id, job.epoch, done.status, done.steps, done.host_wall_s)
        await node.send(done_topic(node.id, job.job_id), done)

    async def _steps(self, job: TrainJob, x: np.ndarray[Any, Any], y: np.ndarray[Any, Any],
                     sub: Subscription, stop: asyncio.Event) -> TrainDone:
        node = self.node
        plan = job.plan_sha256()
        params, opt = start_state(job)
        have: dict[int, dict[str, TrainGrad]] = {}
        mine: list[TrainGrad] = []
        losses: list[float] = []
        heard = stale = 0
        spec = node.core.spec
        work = spec.work(step_flops_per_item(job.sizes), 0.0, 8.0 * sum(p.size for p in params),
                         len(y))
        step_s = spec.seconds(work)
        extra_w = max(0.0, spec.fastest.watts - node.profile.compute.idle_w)
        modelled_s = 0.0
        reporter = job.checkpoint_every > 0 and job.members[0] == node.id
        for step in range(job.start_step, job.steps):
            computed, _ = await asyncio.gather(
                asyncio.to_thread(shard_gradient, params, x, y, job.total_items),
                node.clock.sleep(step_s))
            loss, grads = computed
            node.load.pending_j[0] += extra_w * step_s  # paid at the next physics step
            modelled_s += step_s
            own = TrainGrad(job_id=job.job_id, node=node.id, plan=plan, step=step, loss=loss,
                            grads=[Tensor.from_array(g) for g in grads], epoch=job.epoch)
            mine = [*mine[-1:], own]
            have.setdefault(step, {})[node.id] = own
            await node.send(grad_topic(node.id, job.job_id), own)
            deadline = node.clock.now() + job.step_timeout_s
            while len(have[step]) < len(job.members):
                if stop.is_set():
                    newer = self.seen.get(job.job_id, job.epoch)
                    return self._failed(job, step, losses, f"superseded by epoch {newer}",
                                        stale=stale)
                left = deadline - node.clock.now()
                if left <= 0:
                    missing = sorted(set(job.members) - set(have[step]))
                    return self._failed(job, step, losses, f"step {step}: no gradient from "
                                        f"{', '.join(missing)} within {job.step_timeout_s} s",
                                        missing=missing, stale=stale)
                msg = await self._next(sub, min(RESEND_S, left), stop)
                if msg is None:
                    if not stop.is_set():
                        for g in mine:
                            await node.send(grad_topic(node.id, job.job_id), g)
                    continue
                got = self._read(msg, job, plan)
                if isinstance(got, str):
                    return self._failed(job, step, losses, got, stale=stale)
                if got is None or got.node == node.id:
                    continue
                if got.epoch != job.epoch:
                    if judge_result(False, job.epoch, got.epoch) == "stale":  # re-planned
                        stale += 1
                        log.info("node %s: training %s epoch %d: refused %s's gradient of "
                                 "step %d, epoch %d", node.id, job.job_id, job.epoch,
                                 got.node, got.step, got.epoch)
                    continue
                if got.step >= step:
                    if got.node not in have.setdefault(got.step, {}):
                        heard += 1
                    have[got.step][got.node] = got
            step_grads = have.pop(step)
            total = [np.asarray(sum(step_grads[m].grads[i].to_array() for m in job.members),
                                dtype=np.float64) for i in range(len(params))]
            losses.append(float(sum(step_grads[m].loss for m in job.members)))
            params = opt.step(params, total)
            if reporter and ((step + 1) % job.checkpoint_every == 0 or step + 1 == job.steps):
                await node.send(ckpt_topic(node.id, job.job_id), TrainCheckpoint(
                    job_id=job.job_id, node=node.id, plan=plan, epoch=job.epoch,
                    losses=losses, state=state_of(step + 1, params, opt)))
        return TrainDone(job_id=job.job_id, node=node.id, status="done", steps=job.steps,
                         epoch=job.epoch, start_step=job.start_step, stale_in=stale,
                         losses=losses, params=[Tensor.from_array(p) for p in params],
                         messages_in=heard, modelled_compute_s=modelled_s,
                         modelled_energy_j=extra_w * modelled_s)

    async def _next(self, sub: Subscription, timeout_s: float, stop: asyncio.Event
                    ) -> Message | None:
        """The next message, or None after ``timeout_s`` mission seconds or on ``stop``."""
        return await sub.get_before(self.node.clock.sleep(timeout_s), stop.wait())

    def _read(self, msg: Message, job: TrainJob, plan: str) -> TrainGrad | str | None:
        """A member's gradient, or any gradient of another epoch (the caller refuses it:
        a member of an older epoch may be no member now); None for a message to ignore
        (not a member's, malformed), a reason to fail the job for a member that trains
        another plan."""
        try:
            g = parse(TrainGrad, msg.payload)
        except ProtocolError as exc:
            log.warning("node %s: bad gradient on %s: %s", self.node.id, msg.topic, exc)
            return None
        if msg.topic != grad_topic(g.node, job.job_id):
            return None
        if g.epoch != job.epoch:
            return g
        if g.node not in job.members:
            return None
        if g.plan != plan:
            return f"member {g.node} trains another plan ({g.plan[:12]}, here {plan[:12]})"
        if len(g.grads) != 2 * (len(job.sizes) - 1):
            return f"member {g.node} sent {len(g.grads)} gradients"
        return g

    def _failed(self, job: TrainJob, step: int, losses: list[float], reason: str, *,
                missing: list[str] | None = None, stale: int = 0) -> TrainDone:
        log.warning("node %s: training %s epoch %d failed: %s", self.node.id, job.job_id,
                    job.epoch, reason)
        return TrainDone(job_id=job.job_id, node=self.node.id, status="failed",
                         reason=reason, epoch=job.epoch, start_step=job.start_step,
                         steps=step, losses=losses, missing=missing or [], stale_in=stale)


def start_state(job: TrainJob) -> tuple[list[np.ndarray[Any, Any]], Adam]:
    """The parameters and optimiser a job starts from: the seed's, or its ``resume``
    state's; :class:`JobRejected` naming the tensor whose shape does not fit ``sizes``."""
    if job.resume is None:
        return init_params(job.sizes, job.seed), Adam(job.lr)
    st = job.resume
    shapes = [p.shape for p in init_params(job.sizes, 0)]

    def arrays(tensors: list[Tensor], name: str) -> list[np.ndarray[Any, Any]]:
        out = [t.to_array(f"resume.{name}[{i}]") for i, t in enumerate(tensors)]
        for i, (a, shape) in enumerate(zip(out, shapes, strict=True)):
            if a.shape != shape or a.dtype != np.float64 or not np.isfinite(a).all():
                raise JobRejected(f"resume.{name}[{i}]: expected finite float64 "
                                  f"{list(shape)}, got {a.dtype} {list(a.shape)}",
                                  field="resume")
        return out

    params = arrays(st.params, "params")
    opt = Adam(job.lr, t=st.adam_t)
    if st.adam_t:
        opt.m, opt.v = arrays(st.adam_m, "adam_m"), arrays(st.adam_v, "adam_v")
    return params, opt


def state_of(step: int, params: list[np.ndarray[Any, Any]], opt: Adam) -> TrainState:
    """The state after ``step`` steps, as a checkpoint carries it."""
    return TrainState(step=step, params=[Tensor.from_array(p) for p in params],
                      adam_t=opt.t, adam_m=[Tensor.from_array(m) for m in opt.m],
                      adam_v=[Tensor.from_array(v) for v in opt.v])
