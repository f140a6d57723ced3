"""``GroundClient``: the operator's Python API to a running ground station service.

async with MqttBus(url, client_id="me") as bus, GroundClient(bus, clock) as gc:
    model = await gc.upload_model(Path("digits_classifier.onnx"))
    job_id = await gc.submit(model, {"input": x}, deadline_s=60)
    record = await gc.wait(job_id, timeout_s=30)
    outputs = gc.outputs(record)

A pipeline job: ``stages = await gc.upload_stages(path, 3)`` cuts the model into three
stage models (``flightsw.models.partition``) and uploads them;
``gc.submit(stages[0], inputs, stages=stages)`` runs them on three nodes in turn;
``micro_batches=4`` streams its inputs through them in four parts
(:mod:`groundstation.microbatch`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from flightsw.bus import Bus
from flightsw.clock import Clock
from flightsw.exceptions import FlightSwError, ProtocolError
from flightsw.models.partition import partition
from flightsw.models.store import chunk_model, sha256_bytes
from flightsw.protocol import ModelChunk, dump, parse
from flightsw.protocol.messages import arrays_to_tensors
from groundstation.exceptions import GroundError, JobFailed
from groundstation.protocol import (
    REQUEST_TOPIC,
    TERMINAL,
    JobRecord,
    Reply,
    Request,
    SubmitArgs,
    job_topic,
    reply_topic,
)

__all__ = ["GroundClient"]

_CHUNK = 256 * 1024


class GroundClient:
    """Request/reply client of the ground station service over the bus."""

    def __init__(
        self, bus: Bus, clock: Clock, *, client_id: str | None = None, timeout_s: float = 10.0
    ) -> None:
        self.bus = bus
        self.clock = clock
        self.client_id = client_id or f"gc-{uuid.uuid4().hex[:12]}"
        self.timeout_s = timeout_s
        self._ids = itertools.count()
        self._pending: dict[str, asyncio.Future[Reply]] = {}
        self._stack = contextlib.AsyncExitStack()
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self._stack.__aenter__()
        sub = await self._stack.enter_async_context(
            self.bus.subscribe(reply_topic(self.client_id), qos=1)
        )
        self._reader = asyncio.create_task(self._read(sub), name=f"{self.client_id}:replies")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._stack.__aexit__(exc_type, exc, tb)

    async def _read(self, sub: Any) -> None:
        async for msg in sub:
            try:
                rep = parse(Reply, msg.payload)
            except ProtocolError:
                continue
            fut = self._pending.pop(str(rep.req_id), None)
            if fut is not None and not fut.done():
                fut.set_result(rep)

    async def request(self, op: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a request and await its reply, resending every second until ``timeout_s``.

        Every request is idempotent (a submit carries its job id), so a resend after a lost
        message, or before the service has subscribed, is harmless.
        """
        req_id = f"{self.client_id}-{next(self._ids)}"
        fut: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        req = Request(
            req_id=req_id,
            client=self.client_id,
            op=op,  # type: ignore[arg-type]
            args=args or {},
        )
        payload = dump(req)
        start = self.clock.perf_counter()
        try:
            while True:
                await self.bus.publish(REQUEST_TOPIC, payload, qos=1)
                left = self.timeout_s - (self.clock.perf_counter() - start)
                if left <= 0:
                    raise TimeoutError
                with contextlib.suppress(TimeoutError):
                    rep = await asyncio.wait_for(asyncio.shield(fut), min(1.0, left))
                    break
        except TimeoutError as exc:
            raise GroundError(
                f"no answer from the ground station service within {self.timeout_s:.0f} s "
                "(is `groundstation serve` running on this broker?)"
            ) from exc
        finally:
            self._pending.pop(req_id, None)
            fut.cancel()
        if not rep.ok:
            raise GroundError(rep.error or "request refused")
        return rep.data

    # -- models --------------------------------------------------------------------------
    async def upload_model(self, path: Path) -> str:
        """Upload an ONNX file (once; skipped if the service has it); returns its sha256."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise GroundError(f"model file {path}: {exc.strerror}") from exc
        return await self.upload_bytes(data, str(path))

    async def upload_bytes(self, data: bytes, name: str = "model") -> str:
        """Upload an ONNX model given as bytes (``name`` for errors); its sha256."""
        model = sha256_bytes(data)
        if (await self.request("has_model", {"model": model}))["has"]:
            return model
        chunks = chunk_model(data, _CHUNK)
        stored = None
        for i, c in enumerate(chunks):
            chunk = ModelChunk(model=model, index=i, total=len(chunks), size=len(data), data=c)
            got = await self.request("model_chunk", chunk.model_dump(mode="python"))
            stored = got.get("stored")
        if stored != model:
            raise GroundError(f"model upload of {name} did not complete")
        return model

    async def upload_stages(self, path: Path, k: int) -> list[str]:
        """Cut the ONNX file into ``k`` pipeline stages (``flightsw.models.partition``) and
        upload each; the stage models' sha256 in order."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise GroundError(f"model file {path}: {exc.strerror}") from exc
        try:
            plan = partition(data, k)
        except FlightSwError as exc:
            raise GroundError(f"--stages: {exc}") from exc
        return [await self.upload_bytes(s.model, f"{path} stage {s.index}") for s in plan.stages]

    # -- jobs ----------------------------------------------------------------------------
    async def submit(
        self,
        model: str,
        inputs: dict[str, npt.NDArray[Any]],
        *,
        node: str | None = None,
        priority: int = 5,
        deadline_s: float | None = None,
        value: float = 1.0,
        job_id: str | None = None,
        stages: list[str] | None = None,
        micro_batches: int = 1,
    ) -> str:
        """Submit a job; with ``stages`` (stage models, ``model`` the first) a pipeline
        job over as many nodes, streamed in ``micro_batches`` parts of its inputs when more
        than 1 (left out of the request at 1, so a ground from before micro-batches takes
        it)."""
        job: dict[str, Any] = {
            "job_id": job_id or uuid.uuid4().hex,
            "model": model,
            "inputs": arrays_to_tensors(inputs),
            "priority": priority,
            "deadline_s": deadline_s,
            "value": value,
            "stages": stages,
        }
        if micro_batches != 1:
            job["micro_batches"] = micro_batches
        try:
            args = parse(SubmitArgs, {"job": job, "node": node})
        except ProtocolError as exc:
            raise GroundError(f"submit: {exc}") from exc
        data = await self.request("submit", args.model_dump(mode="python", exclude_none=True))
        return str(data["job_id"])

    async def job(self, job_id: str) -> JobRecord:
        return JobRecord.model_validate((await self.request("job", {"job_id": job_id}))["job"])

    async def jobs(self) -> list[JobRecord]:
        data = await self.request("jobs")
        return [JobRecord.model_validate(j) for j in data["jobs"]]

    async def result(self, job_id: str) -> JobRecord:
        data = await self.request("result", {"job_id": job_id})
        return JobRecord.model_validate(data["job"])

    async def wait(self, job_id: str, timeout_s: float | None = None) -> JobRecord:
        """Until the job is done or failed; its record with outputs.

        ``timeout_s`` is host seconds. A failed job raises :class:`JobFailed`.
        """
        async with self.bus.subscribe(job_topic(job_id), qos=1) as sub:
            return await self._await_end(job_id, sub, timeout_s, poll_first=True)

    async def run(
        self,
        model: str,
        inputs: dict[str, npt.NDArray[Any]],
        *,
        timeout_s: float | None = None,
        **submit_args: Any,
    ) -> JobRecord:
        """Submit and wait in one go (subscribed before submitting: no extra round trip)."""
        job_id = submit_args.pop("job_id", None) or uuid.uuid4().hex
        async with self.bus.subscribe(job_topic(job_id), qos=1) as sub:
            await self.submit(model, inputs, job_id=job_id, **submit_args)
            return await self._await_end(job_id, sub, timeout_s, poll_first=False)

    async def _await_end(
        self, job_id: str, sub: Any, timeout_s: float | None, *, poll_first: bool
    ) -> JobRecord:
        rec = await self.job(job_id) if poll_first else None
        start = self.clock.perf_counter()
        while rec is None or rec.state not in TERMINAL:
            left = None if timeout_s is None else timeout_s - (self.clock.perf_counter() - start)
            if left is not None and left <= 0:
                state = "unknown" if rec is None else rec.state
                raise GroundError(f"job {job_id} still {state} after {timeout_s:.0f} s")
            try:
                # poll now and then: a record published while we were not listening is
                # not lost, just late
                msg = await asyncio.wait_for(sub.get(), min(5.0, left or 5.0))
            except TimeoutError:
                rec = await self.job(job_id)
                continue
            with contextlib.suppress(ProtocolError):
                rec = parse(JobRecord, msg.payload)
        if rec.outputs is None and rec.state == "done":
            rec = await self.result(job_id)
        if rec.state == "failed":
            raise JobFailed(job_id, rec.reason or "unknown reason")
        return rec

    @staticmethod
    def outputs(rec: JobRecord) -> dict[str, npt.NDArray[Any]]:
        return {
            name: np.asarray(t.to_array(f"outputs.{name}"))
            for name, t in (rec.outputs or {}).items()
        }
