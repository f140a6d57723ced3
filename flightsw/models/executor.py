"""Runs ONNX inference for real with onnxruntime, off the event-loop thread.

One :class:`onnxruntime.InferenceSession` is created per model hash (CPU provider) and kept.
Inference runs in the threads of an :class:`~flightsw.models.pool.InferencePool` (the
executor's own, or one a node host shares among its nodes: one session per model for all),
so the node's event loop keeps publishing telemetry and taking telecommands while a long
batch job runs.
Inputs are checked against the graph before they reach onnxruntime
(:meth:`Executor.validate_inputs`), so a bad job is refused with a reason that names the
input and what is wrong, and onnxruntime's own errors become :class:`InferenceError`.

A batch job can also run item by item (:meth:`Executor.run_items`) so that it can be
suspended between two items and resumed later from the first item not done: the node's
pre-emption at an item boundary (:mod:`flightsw.node.checkpoint`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from flightsw.clock import Clock, WallClock
from flightsw.exceptions import InferenceError, JobRejected
from flightsw.models.pool import InferencePool, Loaded, session_options
from flightsw.models.spec import TensorSpec, format_shape
from flightsw.models.store import ModelStore, check_model_hash
from flightsw.protocol.batch import batch_items

__all__ = ["ExecResult", "Executor", "Partial", "check_inputs", "session_options"]

@dataclass(frozen=True)
class ExecResult:
    """Outputs of one run, exactly as onnxruntime returned them, and the host time it took."""

    outputs: dict[str, npt.NDArray[Any]]
    host_wall_s: float
    items: int


def check_inputs(specs: tuple[TensorSpec, ...], inputs: Mapping[str, Any]) -> int:
    """Check ``inputs`` against the graph's input specs; return the number of items.

    Dim 0 of every input is the batch, counted by the one rule of
    :func:`flightsw.protocol.batch.batch_items`; dynamic dimensions that share a symbolic
    name must agree too. Raises :class:`JobRejected` whose reason names the input and what is
    wrong, and whose ``field`` is ``inputs.NAME`` (``inputs`` for the batch as a whole).
    """
    if not isinstance(inputs, Mapping):
        raise JobRejected(
            f"inputs must be a mapping of name to array, got {type(inputs).__name__}",
            field="inputs",
        )
    expected = {s.name: s for s in specs}
    for name in inputs:
        if name not in expected:
            known = ", ".join(repr(n) for n in expected) or "none"
            raise JobRejected(
                f"unexpected input {name!r}; the model's inputs are {known}",
                field=f"inputs.{name}",
            )
    for spec in specs:
        if spec.name not in inputs:
            raise JobRejected(
                f"missing input {spec.name!r} ({spec.describe()})", field=f"inputs.{spec.name}"
            )
    named: dict[str, tuple[str, int]] = {}
    for spec in specs:
        value = inputs[spec.name]
        field = f"inputs.{spec.name}"
        if not isinstance(value, np.ndarray):
            raise JobRejected(
                f"input {spec.name!r}: expected a numpy array, got {type(value).__name__}",
                field=field,
            )
        if value.dtype.name != spec.dtype:
            raise JobRejected(
                f"input {spec.name!r}: dtype {value.dtype.name}, expected {spec.dtype}",
                field=field,
            )
        if spec.shape is None:
            continue
        if value.ndim != len(spec.shape):
            raise JobRejected(
                f"input {spec.name!r}: rank {value.ndim} (shape {list(value.shape)}), expected "
                f"rank {len(spec.shape)} {format_shape(spec.shape, spec.dim_names)}",
                field=field,
            )
        for axis, (want, got) in enumerate(zip(spec.shape, value.shape, strict=True)):
            if want is not None and want != got:
                raise JobRejected(
                    f"input {spec.name!r}: dim {axis} is {got}, expected {want} "
                    f"(shape {list(value.shape)}, expected "
                    f"{format_shape(spec.shape, spec.dim_names)})",
                    field=field,
                )
            dim_name = spec.dim_names[axis] if spec.dim_names else None
            if want is None and dim_name and axis > 0:  # dim 0: the batch, counted below
                seen = named.setdefault(dim_name, (spec.name, got))
                if seen[1] != got:
                    raise JobRejected(
                        f"inconsistent dim {dim_name!r}: input {seen[0]!r} has {seen[1]}, "
                        f"input {spec.name!r} has {got}",
                        field=field,
                    )
    return batch_items(inputs)


@dataclass(frozen=True)
class Partial:
    """Outputs of items ``[start, start + done)`` of a batch, run item by item until the end
    or until asked to stop at an item boundary (``stopped``)."""

    outputs: dict[str, npt.NDArray[Any]]
    host_wall_s: float
    start: int
    done: int
    stopped: bool


class Executor:
    """One node's inference: its inputs checked, its runs in an :class:`InferencePool`.

    Without ``pool`` the executor makes a private one of ``max_workers`` threads, each
    using ``intra_op_threads`` threads inside onnxruntime (default: the host's CPUs divided
    among the workers), and closes it on exit. With ``pool`` (a node host's, shared by its
    nodes) the sessions and threads are the pool's; the executor's runs take their turn
    with the other executors' and closing it cancels only its own work. ``clock`` supplies
    ``perf_counter`` for the host wall time reported in :class:`ExecResult`.
    """

    def __init__(
        self,
        store: ModelStore,
        max_workers: int = 1,
        *,
        clock: Clock | None = None,
        intra_op_threads: int | None = None,
        pool: InferencePool | None = None,
    ) -> None:
        self._store = store
        self._clock: Clock = clock if clock is not None else WallClock()
        self._owns_pool = pool is None
        self._pool = pool if pool is not None else InferencePool(
            max_workers, intra_op_threads=intra_op_threads)
        self._lock = threading.Lock()  # guards _running
        self._running: set[ort.RunOptions] = set()
        self._closed = False

    @property
    def intra_op_threads(self) -> int:
        return self._pool.intra_op_threads

    @property
    def pool(self) -> InferencePool:
        return self._pool

    # -- inputs ---------------------------------------------------------------------------
    def input_specs(self, model_hash: str) -> tuple[TensorSpec, ...]:
        """The inputs a model takes (read from the stored graph, cached)."""
        model_hash = check_model_hash(model_hash)
        return self._pool.input_specs(model_hash, self._store.path(model_hash))

    def validate_inputs(self, model_hash: str, inputs: Mapping[str, Any]) -> int:
        """Check inputs against the model; return the number of items or raise JobRejected."""
        return check_inputs(self.input_specs(model_hash), inputs)

    # -- sessions -------------------------------------------------------------------------
    def _load(self, model_hash: str) -> Loaded:
        return self._pool.session(model_hash, self._store.path(model_hash))

    async def load(self, model_hash: str) -> None:
        """Create the model's session now (in the pool) rather than on its first run."""
        model_hash = check_model_hash(model_hash)
        self._store.path(model_hash)  # UnknownModelError before any thread hop
        await asyncio.wrap_future(self._submit(self._load, model_hash))

    def unload(self, model_hash: str) -> None:
        """Drop a model's session (next run loads it again)."""
        self._pool.unload(check_model_hash(model_hash))

    def loaded(self) -> list[str]:
        """Hashes of models whose sessions are held, sorted."""
        return self._pool.loaded()

    # -- running --------------------------------------------------------------------------
    def _submit(self, fn: Any, *args: Any) -> concurrent.futures.Future[Any]:
        if self._closed:
            raise InferenceError("executor is closed")
        return self._pool.submit(self, fn, *args)

    def _infer(
        self, model_hash: str, inputs: Mapping[str, npt.NDArray[Any]], options: ort.RunOptions
    ) -> tuple[dict[str, npt.NDArray[Any]], float]:
        loaded = self._load(model_hash)
        if options.terminate:
            raise InferenceError(f"model {model_hash[:12]}: run cancelled before it started")
        with self._lock:
            self._running.add(options)
        try:
            start = self._clock.perf_counter()
            try:
                raw = loaded.session.run(None, dict(inputs), options)
            except Exception as exc:
                raise InferenceError(f"model {model_hash[:12]}: onnxruntime failed: {exc}") from exc
            elapsed = self._clock.perf_counter() - start
        finally:
            with self._lock:
                self._running.discard(options)
        outputs: dict[str, npt.NDArray[Any]] = {}
        for name, value in zip(loaded.outputs, raw, strict=True):
            if not isinstance(value, np.ndarray):
                raise InferenceError(
                    f"model {model_hash[:12]}: output {name!r} is a {type(value).__name__}, "
                    "not a tensor; convert scikit-learn classifiers with options zipmap=False"
                )
            outputs[name] = value
        return outputs, elapsed

    async def run(self, model_hash: str, inputs: Mapping[str, npt.NDArray[Any]]) -> ExecResult:
        """Validate ``inputs`` and run the model on them in the pool.

        Raises :class:`JobRejected` for bad inputs, :class:`UnknownModelError` for a model not
        in the store and :class:`InferenceError` if onnxruntime fails. Cancelling the awaiting
        task asks onnxruntime to stop the run (``RunOptions.terminate``).
        """
        model_hash = check_model_hash(model_hash)
        items = self.validate_inputs(model_hash, inputs)
        options = ort.RunOptions()
        options.log_severity_level = 3
        future = self._submit(self._infer, model_hash, dict(inputs), options)
        try:
            outputs, elapsed = await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            options.terminate = True
            raise
        return ExecResult(outputs=outputs, host_wall_s=elapsed, items=items)

    def _infer_items(self, model_hash: str, inputs: Mapping[str, npt.NDArray[Any]], start: int,
                     chunk: int, stop: threading.Event, options: ort.RunOptions) -> Partial:
        total = batch_items(inputs)
        parts: list[dict[str, npt.NDArray[Any]]] = []
        host = 0.0
        k = start
        while k < total and not stop.is_set():
            end = min(total, k + chunk)
            out, elapsed = self._infer(model_hash, {n: a[k:end] for n, a in inputs.items()},
                                       options)
            parts.append(out)
            host += elapsed
            k = end
        outputs = ({n: np.concatenate([p[n] for p in parts], axis=0) for n in parts[0]}
                   if parts else {})
        return Partial(outputs, host, start, k - start, k < total)

    async def run_items(self, model_hash: str, inputs: Mapping[str, npt.NDArray[Any]], *,
                        start: int = 0, chunk: int = 1,
                        stop: threading.Event | None = None) -> Partial:
        """Run items ``start..`` of a batch ``chunk`` items at a time, stopping at the first
        item boundary after ``stop`` is set (the items done are kept in the result).

        Errors as :meth:`run`; cancelling the awaiting task asks onnxruntime to stop (the
        item under way is lost, as with ``stop``, but so are the outputs so far).
        """
        model_hash = check_model_hash(model_hash)
        items = self.validate_inputs(model_hash, inputs)
        if not 0 <= start <= items:
            raise InferenceError(f"start: item {start} is outside the batch of {items}")
        if chunk < 1:
            raise InferenceError(f"chunk: must be >= 1, got {chunk}")
        options = ort.RunOptions()
        options.log_severity_level = 3
        flag = stop if stop is not None else threading.Event()
        future = self._submit(self._infer_items, model_hash, dict(inputs), start, chunk, flag,
                              options)
        try:
            partial: Partial = await asyncio.wrap_future(future)
            return partial
        except asyncio.CancelledError:
            options.terminate = True
            raise

    # -- lifetime -------------------------------------------------------------------------
    def close(self) -> None:
        """Stop taking work, cancel this executor's queued runs, ask its running inferences
        to stop, and release a private pool.

        Does not block: a run already inside onnxruntime ends at its next operator boundary.
        """
        if self._closed:
            return
        self._closed = True
        with self._lock:
            for options in self._running:
                options.terminate = True
        if self._owns_pool:
            self._pool.close()
        else:
            self._pool.cancel(self)

    async def aclose(self) -> None:
        """:meth:`close`, then wait (off the event loop) for a private pool's threads."""
        self.close()
        if self._owns_pool:
            await asyncio.to_thread(self._pool.close, True)

    async def __aenter__(self) -> Executor:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
