"""The ground station's request desk: every client request gets exactly one reply.

A request is a msgpack map on ``odc/ground/req`` (:class:`~groundstation.protocol.Request`).
Whenever its reply address can be read (``client`` a valid id, ``req_id`` a string or an
integer), the desk answers on ``odc/ground/rep/<client>``, ``ok=False`` with the error
and the name of the offending field if anything about the request is wrong, an unexpected
failure included; only a request with no readable reply address is dropped (and logged).
A submission is checked as far as the ground can before it is accepted: the model is
known, the inputs decode and suit the model, the job fits a node's payload limit, and a
node it is pinned to exists. A micro-batched pipeline job (``micro_batches`` > 1) is
split into its children here (an input of rank 0 goes to each whole), each checked as a
job of its own: its part against the model (a model with a fixed batch dimension takes
no part smaller than the batch), within the payload limit, its id no other job's. A new
submission with a child's id is refused (``job.job_id``) rather than answered as the
child's duplicate.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from flightsw.exceptions import FlightSwError, JobRejected, ProtocolError
from flightsw.models.executor import check_inputs
from flightsw.models.spec import TensorSpec, read_graph_inputs
from flightsw.protocol import JobSubmit, ModelChunk, batch_items, dump, parse
from flightsw.protocol.codec import decode
from flightsw.protocol.messages import Pipeline, arrays_to_tensors
from flightsw.protocol.warrant import inputs_sha256
from groundstation.exceptions import GroundError, JobNotFound, RequestError
from groundstation.microbatch import check_micro_batches, child_id, split_inputs
from groundstation.pipeline import check_stages
from groundstation.protocol import Reply, Request, SubmitArgs

if TYPE_CHECKING:
    from groundstation.service import GroundStation

__all__ = ["RequestDesk", "reply_address"]

log = logging.getLogger("groundstation")

_CLIENT = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MAX_REQUEST_BYTES = 32 * 1024 * 1024


def reply_address(obj: Any) -> tuple[str, str | int] | None:
    """``(client, req_id)`` of a decoded request if both can be read, else None."""
    if not isinstance(obj, dict):
        return None
    client, req_id = obj.get("client"), obj.get("req_id")
    if not isinstance(client, str) or not _CLIENT.fullmatch(client):
        return None
    if isinstance(req_id, bool) or not isinstance(req_id, str | int):
        return None
    if isinstance(req_id, str) and not 1 <= len(req_id) <= 128:
        return None
    return client, req_id


class RequestDesk:
    """Answers the requests of ground clients for one :class:`GroundStation`."""

    def __init__(self, gs: GroundStation) -> None:
        self.gs = gs
        self._input_specs: dict[str, tuple[TensorSpec, ...]] = {}

    def answer(self, payload: bytes) -> tuple[str, bytes] | None:
        """The reply to one request as ``(client, reply bytes)``; None if it has no
        readable reply address."""
        try:
            obj = decode(payload, max_bytes=MAX_REQUEST_BYTES)
        except ProtocolError as exc:
            log.warning("ground: unanswerable request: %s", exc)
            return None
        address = reply_address(obj)
        if address is None:
            log.warning("ground: unanswerable request (no valid client and req_id)")
            return None
        client, req_id = address
        try:
            req = parse(Request, obj)
            reply = Reply(req_id=req_id, ok=True, data=self.handle(req))
        except ProtocolError as exc:
            reply = Reply(req_id=req_id, ok=False, error=str(exc), field=exc.field)
        except RequestError as exc:
            reply = Reply(req_id=req_id, ok=False, error=str(exc), field=exc.field)
        except JobNotFound as exc:
            reply = Reply(req_id=req_id, ok=False, error=str(exc), field="args.job_id")
        except (GroundError, FlightSwError) as exc:
            # a refusal that names its field (JobRejected: inputs, inputs.NAME) says so
            field = getattr(exc, "field", None)
            reply = Reply(req_id=req_id, ok=False, error=str(exc),
                          field=field if isinstance(field, str) else None)
        except Exception as exc:
            op = obj.get("op")
            log.exception("ground: request %r (%s) failed", req_id, op)
            reply = Reply(req_id=req_id, ok=False,
                          error=f"internal error in {op}: {type(exc).__name__}: {exc}")
        return client, dump(reply)

    def handle(self, req: Request) -> dict[str, Any]:
        gs = self.gs
        a = req.args
        if req.op == "has_model":
            return {"has": gs.store.has(_text(a, "model"))}
        if req.op == "model_chunk":
            chunk = parse(ModelChunk, a)
            done = gs.store.receive_chunk(chunk.model, chunk.index, chunk.total, chunk.data)
            return {"stored": done}
        if req.op == "submit":
            return self.submit(parse(SubmitArgs, a))
        if req.op == "jobs":
            return {"jobs": [r.model_dump(mode="python") for r in gs.table.all()]}
        if req.op == "job":
            return {"job": gs.table.record(_text(a, "job_id")).model_dump(mode="python")}
        # the remaining op of Request's schema: "result"
        rec = gs.table.record(_text(a, "job_id"), with_outputs=True)
        return {"job": rec.model_dump(mode="python")}

    def submit(self, a: SubmitArgs) -> dict[str, Any]:
        gs = self.gs
        spec = a.job
        if not gs.store.has(spec.model):
            raise RequestError(
                f"job.model: {spec.model} is not uploaded to the ground station",
                field="job.model",
            )
        if gs.table.exists(spec.job_id):
            parent = gs.table.row(spec.job_id)["parent"]
            if parent is not None:  # not this client's job: a part of another
                raise RequestError(f"job.job_id: {spec.job_id} is a micro-batch of job "
                                   f"{parent}; give a new job another id", field="job.job_id")
            return {"job_id": spec.job_id, "duplicate": True}
        if spec.stages is not None:
            check_stages(spec.model, spec.stages, a.node, gs.store.has)
        if a.node is not None and not gs.knows(a.node):
            raise RequestError(f"node: no node {a.node!r} is known to the ground station",
                               field="node")
        now = gs.clock.now()
        job = JobSubmit(
            job_id=spec.job_id,
            model=spec.model,
            inputs=spec.inputs,
            priority=spec.priority,
            deadline=None if spec.deadline_s is None else now + spec.deadline_s,
            value=spec.value,
            submitted_at=now,
            pipeline=None if spec.stages is None else Pipeline(
                stages=spec.stages, inputs_sha256=inputs_sha256(spec.inputs)),
        )
        if spec.micro_batches != 1:
            return self._submit_micro_batched(job, spec.micro_batches)
        job = self._signed(job)
        # refused here, with the reason the node would give, rather than after an uplink
        arrays = job.arrays()
        items = batch_items(arrays)
        check_inputs(self._model_inputs(job.model), arrays)
        gs.table.insert(job, a.node, items)
        gs.job_submitted(job.job_id)
        return {"job_id": job.job_id}

    def _signed(self, job: JobSubmit) -> JobSubmit:
        """The job with the ground's warrant (if it signs), refused if it is over the
        nodes' payload limit."""
        gs = self.gs
        if gs.warrants is not None:
            job = gs.warrants.sign(job)
        size = len(dump(job))
        if size > gs.max_job_bytes:
            raise RequestError(
                f"job.inputs: the job is {size} bytes, over the {gs.max_job_bytes}-byte "
                "payload limit of the nodes",
                field="job.inputs",
            )
        return job

    def _submit_micro_batched(self, job: JobSubmit, micro_batches: int) -> dict[str, Any]:
        """A pipeline job streamed in ``micro_batches`` parts: its row (never uplinked) and
        one child pipeline job per part (:mod:`groundstation.microbatch`), each signed and
        within the payload limit on its own."""
        gs = self.gs
        arrays = job.arrays()
        items = batch_items(arrays)
        check_micro_batches(job.job_id, micro_batches, items, job.pipeline is not None)
        specs = self._model_inputs(job.model)
        check_inputs(specs, arrays)
        assert job.pipeline is not None
        children: list[tuple[JobSubmit, int]] = []
        for m, part in enumerate(split_inputs(arrays, micro_batches)):
            cid = child_id(job.job_id, m)
            try:  # a part is a job of its own: the first stage's node checks it so
                check_inputs(specs, part)
            except JobRejected as exc:
                raise RequestError(
                    f"job.micro_batches: micro-batch {m} ({cid}, {batch_items(part)} of "
                    f"{items} items) does not suit the model: {exc.reason}",
                    field="job.micro_batches") from exc
            inputs = arrays_to_tensors(part)
            if gs.table.exists(cid):
                raise RequestError(f"job.job_id: micro-batch {m}'s id {cid} is another "
                                   "job's", field="job.job_id")
            child = job.model_copy(update={
                "job_id": cid, "inputs": inputs,
                "pipeline": job.pipeline.model_copy(
                    update={"inputs_sha256": inputs_sha256(inputs)})})
            children.append((self._signed(child), batch_items(part)))
        gs.table.insert_micro_batched(job, items, children)
        gs.job_submitted(job.job_id)
        return {"job_id": job.job_id, "micro_batches": micro_batches}

    def _model_inputs(self, model: str) -> tuple[TensorSpec, ...]:
        specs = self._input_specs.get(model)
        if specs is None:
            specs = read_graph_inputs(self.gs.store.path(model), model[:12])
            self._input_specs[model] = specs
        return specs


def _text(args: dict[str, Any], name: str) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value:
        raise RequestError(f"args.{name}: expected a non-empty string, got {value!r}",
                           field=f"args.{name}")
    return value
