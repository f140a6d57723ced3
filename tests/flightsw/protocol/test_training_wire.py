"""Training messages on the wire: the fields re-planning added travel only when set, so a
node or client from before them (its models forbid unknown fields) still takes a first
epoch without checkpoints, and agrees on its plan digest."""

from __future__ import annotations

import hashlib

import numpy as np

from flightsw.protocol import decode, dump
from flightsw.protocol.messages import Tensor
from flightsw.protocol.sign import canonical
from flightsw.protocol.training import TrainDone, TrainGrad, TrainJob, TrainState

# the keys of each message's first version (a56ee0b), as its models accepted them
FIRST_JOB = {"kind", "job_id", "members", "sizes", "seed", "steps", "lr", "total_items",
             "step_timeout_s", "x", "y"}
FIRST_GRAD = {"kind", "auth", "job_id", "node", "plan", "step", "loss", "grads"}
FIRST_DONE = {"kind", "auth", "job_id", "node", "status", "reason", "steps", "losses",
              "params", "host_wall_s", "messages_in", "modelled_compute_s",
              "modelled_energy_j"}


def _job(**kw: object) -> TrainJob:
    x = Tensor.from_array(np.zeros((4, 3)))
    y = Tensor.from_array(np.zeros(4, dtype=np.int64))
    return TrainJob.model_validate({"job_id": "t1", "members": ["a", "b"], "sizes": [3, 2],
                                    "steps": 5, "lr": 0.1, "total_items": 8, "x": x, "y": y,
                                    **kw})


def _keys(msg: TrainJob | TrainGrad | TrainDone) -> set[str]:
    got = decode(dump(msg))
    assert isinstance(got, dict)
    return set(got)


def test_a_first_epoch_travels_as_the_first_version_did() -> None:
    job = _job()
    assert _keys(job) == FIRST_JOB
    plan = job.plan_sha256()
    grad = TrainGrad(job_id="t1", node="a", plan=plan, step=0, loss=1.0, grads=[])
    assert _keys(grad) <= FIRST_GRAD
    done = TrainDone(job_id="t1", node="a", status="done")
    assert _keys(done) <= FIRST_DONE
    # the digest the first version computed
    first = hashlib.sha256(canonical({
        "job_id": "t1", "members": ["a", "b"], "sizes": [3, 2], "seed": 0, "steps": 5,
        "lr": 0.1, "total_items": 8,
    })).hexdigest()
    assert plan == first


def test_re_planning_fields_travel_when_set_and_change_the_plan() -> None:
    base = _job()
    state = TrainState(step=2, params=[Tensor.from_array(np.ones((3, 2))),
                                       Tensor.from_array(np.ones(2))],
                       adam_t=0, adam_m=[], adam_v=[])
    later = _job(epoch=1, checkpoint_every=2, resume=state)
    assert _keys(later) == FIRST_JOB | {"epoch", "checkpoint_every", "resume"}
    assert TrainJob.model_validate(decode(dump(later))) == later
    digests = {base.plan_sha256(), later.plan_sha256(), _job(epoch=1).plan_sha256(),
               _job(checkpoint_every=2).plan_sha256()}
    assert len(digests) == 4
    grad = TrainGrad(job_id="t1", node="a", plan=later.plan_sha256(), step=2, loss=1.0,
                     grads=[], epoch=1)
    assert "epoch" in _keys(grad)
    done = TrainDone(job_id="t1", node="a", status="failed", epoch=1, missing=["b"],
                     stale_in=3, start_step=2)
    assert {"epoch", "missing", "stale_in", "start_step"} <= _keys(done)
    assert TrainDone.model_validate(decode(dump(done))) == done
