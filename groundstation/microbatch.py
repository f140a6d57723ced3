"""Micro-batch streaming of a pipeline job: one parent job, M child pipeline jobs.

A pipeline job submitted with ``micro_batches`` M > 1 is cut along the first axis of its
inputs into M parts (``numpy.array_split``, order kept); an input of rank 0 has no items
and goes to every part whole. Each part is an ordinary pipeline
job of its own (a *child*, id :func:`child_id`), with its own inputs digest, warrant,
lease, epochs and re-plans; the ground uplinks the children of one parent on one chain, so
member ``s`` runs child ``m + 1`` while member ``s + 1`` runs child ``m``. The parent has
a row of its own that no node ever sees: it ends when its children have, done with their
outputs joined in order (:func:`join_results`), or failed as soon as one child failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from flightsw.protocol import JobResult, JobSubmit
from flightsw.protocol.messages import arrays_to_tensors
from groundstation.exceptions import GroundError, RequestError

__all__ = ["MAX_MICRO_BATCHES", "SUFFIX", "check_micro_batches", "child_id", "join_results",
           "split_inputs"]

MAX_MICRO_BATCHES = 256
JOB_ID_MAX = 128  # flightsw.protocol.messages.JobId
# a child's id is the parent's and this suffix with its index in three digits, so the
# children sort (and are uplinked, and queue on a node) in the order of their parts
SUFFIX = ".mb"
_DIGITS = 3


def child_id(parent: str, m: int) -> str:
    """The job id of the parent's ``m``-th micro-batch (from 0)."""
    return f"{parent}{SUFFIX}{m:0{_DIGITS}d}"


def check_micro_batches(job_id: str, micro_batches: int, items: int,
                        pipeline: bool) -> None:
    """A micro-batched submission the ground can split: a pipeline job, at most
    ``MAX_MICRO_BATCHES`` parts, no more parts than items, and a parent id short enough
    for its children's ids; :class:`RequestError` naming the field otherwise."""
    field = "job.micro_batches"
    if micro_batches < 1:
        raise RequestError(f"{field}: must be at least 1, got {micro_batches}", field=field)
    if micro_batches == 1:
        return
    if not pipeline:
        raise RequestError(f"{field}: micro-batches stream a pipeline job's stages; "
                           "give job.stages too", field=field)
    if micro_batches > MAX_MICRO_BATCHES:
        raise RequestError(f"{field}: {micro_batches} is over the limit of "
                           f"{MAX_MICRO_BATCHES}", field=field)
    if micro_batches > items:
        raise RequestError(f"{field}: {micro_batches} micro-batches of a batch of {items} "
                           "items would leave one empty", field=field)
    longest = len(child_id(job_id, micro_batches - 1))
    if longest > JOB_ID_MAX:
        room = JOB_ID_MAX - (longest - len(job_id))
        raise RequestError(f"job.job_id: {len(job_id)} characters leave no room for the "
                           f"micro-batches' ids ({child_id('ID', 0)}: at most {room} "
                           "characters with micro-batches)", field="job.job_id")


def split_inputs(arrays: dict[str, npt.NDArray[Any]], micro_batches: int
                 ) -> list[dict[str, npt.NDArray[Any]]]:
    """The inputs of each micro-batch: every input cut along its first axis into
    ``micro_batches`` parts in order (``numpy.array_split``: sizes differ by one at most,
    the larger first); an input of rank 0 (no batch axis, as
    :func:`flightsw.protocol.batch_items` counts) goes to every part unsplit."""
    parts: list[dict[str, npt.NDArray[Any]]] = [{} for _ in range(micro_batches)]
    for name, a in arrays.items():
        if a.ndim == 0:
            for part in parts:
                part[name] = a
            continue
        for m, piece in enumerate(np.array_split(a, micro_batches, axis=0)):
            parts[m][name] = np.ascontiguousarray(piece)
    return parts


def join_results(parent: JobSubmit, results: Sequence[JobResult]) -> JobResult:
    """The parent's result from its children's (done, in order): every output concatenated
    along the first axis; latency from the parent's submission to the last child's end,
    energy, host time, items, migrations, suspensions and upsets summed; accepted and
    started at the first child's, on the node of the last child to end.
    :class:`GroundError` naming the output if the outputs cannot be joined."""
    if not results:
        raise GroundError(f"{parent.job_id}: no micro-batch results to join")
    outs = [r.arrays() for r in results]
    names = list(outs[0])
    joined: dict[str, npt.NDArray[Any]] = {}
    for name in names:
        parts = [o.get(name) for o in outs]
        missing = [results[k].job_id for k, p in enumerate(parts) if p is None]
        if missing:
            raise GroundError(f"outputs.{name}: not in the result of {missing[0]}")
        arrays = [p for p in parts if p is not None]
        if any(a.ndim == 0 for a in arrays):
            raise GroundError(f"outputs.{name}: a scalar has no items to join")
        try:
            joined[name] = np.concatenate(arrays, axis=0)
        except ValueError as exc:
            raise GroundError(f"outputs.{name}: micro-batch outputs do not join ({exc})"
                              ) from exc
    last = max(results, key=lambda r: r.finished_at)
    accepted = [r.accepted_at for r in results if r.accepted_at is not None]
    started = [r.started_at for r in results if r.started_at is not None]
    return JobResult(
        job_id=parent.job_id,
        epoch=0,
        node=last.node,
        status="done",
        outputs=arrays_to_tensors(joined),
        items=sum(r.items for r in results),
        host_wall_s=sum(r.host_wall_s for r in results),
        modelled_latency_s=last.finished_at - parent.submitted_at,
        modelled_energy_j=sum(r.modelled_energy_j for r in results),
        power_mode=last.power_mode,
        submitted_at=parent.submitted_at,
        accepted_at=min(accepted) if accepted else None,
        started_at=min(started) if started else None,
        finished_at=last.finished_at,
        deadline=parent.deadline,
        value=parent.value,
        migrations=sum(r.migrations for r in results),
        suspensions=sum(r.suspensions for r in results),
        upsets_hit=sum(r.upsets_hit for r in results),
        upsets_mitigated=sum(r.upsets_mitigated for r in results),
        corrupted=any(r.corrupted for r in results),
    )
