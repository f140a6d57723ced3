"""Runs ONNX inference for real with onnxruntime, off the event-loop thread.

One :class:`onnxruntime.InferenceSession` is created per model hash (CPU provider) and kept.
Inference runs in a dedicated :class:`~concurrent.futures.ThreadPoolExecutor`, so the node's
event loop keeps publishing telemetry and taking telecommands while a long batch job runs.
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
import os
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
from flightsw.models.spec import TensorSpec, format_shape, read_graph_inputs
from flightsw.models.store import ModelStore, check_model_hash
from flightsw.protocol.batch import batch_items

__all__ = ["ExecResult", "Executor", "Partial", "check_inputs", "session_options"]

_PROVIDERS = ["CPUExecutionProvider"]


@dataclass(frozen=True)
class ExecResult:
    """Outputs of one run, exactly as onnxruntime returned them, and the host time it took."""

    outputs: dict[str, npt.NDArray[Any]]
    host_wall_s: float
    items: int


def session_options(intra_op_threads: int) -> ort.SessionOptions:
    """The session options the executor uses (also used by ``bench/inference_overhead.py``).

    Sequential execution with ``intra_op_threads`` threads inside each operator; worker
    threads do not spin-wait between operators, so an idle node does not burn the CPU the
    event loop needs.
    """
    if intra_op_threads < 1:
        raise InferenceError(f"intra_op_threads must be >= 1, got {intra_op_threads}")
    so = ort.SessionOptions()
    so.intra_op_num_threads = intra_op_threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return so


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


@dataclass(frozen=True)
class _Loaded:
    session: ort.InferenceSession
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[str, ...]


class Executor:
    """onnxruntime sessions per model hash; inference in a dedicated thread pool.

    ``max_workers`` jobs may run at once; each uses ``intra_op_threads`` threads inside
    onnxruntime (default: the host's CPUs divided among the workers). ``clock`` supplies
    ``perf_counter`` for the host wall time reported in :class:`ExecResult`.
    """

    def __init__(
        self,
        store: ModelStore,
        max_workers: int = 1,
        *,
        clock: Clock | None = None,
        intra_op_threads: int | None = None,
    ) -> None:
        if max_workers < 1:
            raise InferenceError(f"max_workers must be >= 1, got {max_workers}")
        self._store = store
        self._clock: Clock = clock if clock is not None else WallClock()
        self._threads = intra_op_threads or max(1, (os.cpu_count() or 1) // max_workers)
        self._options = session_options(self._threads)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="inference"
        )
        self._specs: dict[str, tuple[TensorSpec, ...]] = {}
        self._sessions: dict[str, _Loaded] = {}
        self._lock = threading.Lock()  # guards _running
        self._load_lock = threading.Lock()  # one session created at a time
        self._running: set[ort.RunOptions] = set()
        self._closed = False

    @property
    def intra_op_threads(self) -> int:
        return self._threads

    # -- inputs ---------------------------------------------------------------------------
    def input_specs(self, model_hash: str) -> tuple[TensorSpec, ...]:
        """The inputs a model takes (read from the stored graph, cached)."""
        model_hash = check_model_hash(model_hash)
        specs = self._specs.get(model_hash)
        if specs is None:
            specs = read_graph_inputs(self._store.path(model_hash), model_hash[:12])
            self._specs[model_hash] = specs
        return specs

    def validate_inputs(self, model_hash: str, inputs: Mapping[str, Any]) -> int:
        """Check inputs against the model; return the number of items or raise JobRejected."""
        return check_inputs(self.input_specs(model_hash), inputs)

    # -- sessions -------------------------------------------------------------------------
    def _load(self, model_hash: str) -> _Loaded:
        loaded = self._sessions.get(model_hash)
        if loaded is not None:
            return loaded
        with self._load_lock:
            loaded = self._sessions.get(model_hash)
            if loaded is not None:
                return loaded
            specs = self.input_specs(model_hash)
            path = self._store.path(model_hash)
            try:
                session = ort.InferenceSession(
                    str(path), sess_options=self._options, providers=_PROVIDERS
                )
            except Exception as exc:
                raise InferenceError(
                    f"model {model_hash[:12]}: onnxruntime cannot load it: {exc}"
                ) from exc
            for out in session.get_outputs():
                if not str(out.type).startswith("tensor("):
                    raise InferenceError(
                        f"model {model_hash[:12]}: output {out.name!r} is {out.type}, not a "
                        "tensor; convert scikit-learn classifiers with options zipmap=False"
                    )
            loaded = _Loaded(session, specs, tuple(o.name for o in session.get_outputs()))
            self._sessions[model_hash] = loaded
            return loaded

    async def load(self, model_hash: str) -> None:
        """Create the model's session now (in the pool) rather than on its first run."""
        model_hash = check_model_hash(model_hash)
        self._store.path(model_hash)  # UnknownModelError before any thread hop
        await asyncio.wrap_future(self._submit(self._load, model_hash))

    def unload(self, model_hash: str) -> None:
        """Drop a model's session (next run loads it again)."""
        model_hash = check_model_hash(model_hash)
        self._sessions.pop(model_hash, None)
        self._specs.pop(model_hash, None)

    def loaded(self) -> list[str]:
        """Hashes of models whose sessions are held, sorted."""
        return sorted(self._sessions)

    # -- running --------------------------------------------------------------------------
    def _submit(self, fn: Any, *args: Any) -> concurrent.futures.Future[Any]:
        if self._closed:
            raise InferenceError("executor is closed")
        return self._pool.submit(fn, *args)

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
        """Stop taking work, ask running inferences to stop, and release the pool.

        Does not block: a run already inside onnxruntime ends at its next operator boundary.
        """
        if self._closed:
            return
        self._closed = True
        with self._lock:
            for options in self._running:
                options.terminate = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._sessions.clear()

    async def aclose(self) -> None:
        """:meth:`close`, then wait (off the event loop) for the pool's threads to finish."""
        self.close()
        await asyncio.to_thread(self._pool.shutdown, True)

    async def __aenter__(self) -> Executor:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
