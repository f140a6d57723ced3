"""Inference threads and onnxruntime sessions that several executors can share.

One process that hosts many nodes (``flightsw nodes``) must not hold one onnxruntime session
per node per model, nor one thread pool per node: the sessions are keyed by the model's
sha256 (a hash names exactly one file's bytes, so two nodes that store the same model can
run the same session), and the inference threads are a bounded pool. Work is taken from the
submitters in turn (round robin by ``owner``), so a node with a long queue of batches does
not starve the others: each free thread runs the oldest item of the next owner that has one.

An :class:`~flightsw.models.executor.Executor` made without a pool makes a private one, so a
one-node process runs exactly as before.
"""

from __future__ import annotations

import collections
import concurrent.futures
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnxruntime as ort

from flightsw.exceptions import InferenceError
from flightsw.models.spec import TensorSpec, read_graph_inputs

__all__ = ["InferencePool", "Loaded", "session_options"]

_PROVIDERS = ["CPUExecutionProvider"]


def session_options(intra_op_threads: int) -> ort.SessionOptions:
    """The session options of every pool (also used by ``bench/inference_overhead.py``).

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


@dataclass(frozen=True)
class Loaded:
    """A model's session, its input specs and its output names."""

    session: ort.InferenceSession
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[str, ...]


@dataclass
class _Item:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    future: concurrent.futures.Future[Any]


class InferencePool:
    """``max_workers`` inference threads taking work from owners in turn, and one session
    per model hash for all of them.

    ``intra_op_threads`` is the threads inside onnxruntime per run (default: the host's CPUs
    divided among the workers).
    """

    def __init__(self, max_workers: int = 1, *, intra_op_threads: int | None = None) -> None:
        if max_workers < 1:
            raise InferenceError(f"max_workers must be >= 1, got {max_workers}")
        self.max_workers = max_workers
        self.intra_op_threads = intra_op_threads or max(1, (os.cpu_count() or 1) // max_workers)
        self._options = session_options(self.intra_op_threads)
        self._threads = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="inference"
        )
        self._lock = threading.Lock()  # guards the queues and the turn order
        self._queues: dict[object, collections.deque[_Item]] = {}
        self._turns: collections.deque[object] = collections.deque()  # owners with work
        self._load_lock = threading.Lock()  # one session created at a time
        self._sessions: dict[str, Loaded] = {}
        self._specs: dict[str, tuple[TensorSpec, ...]] = {}
        self._closed = False

    # -- sessions -------------------------------------------------------------------------
    def input_specs(self, model_hash: str, path: Path) -> tuple[TensorSpec, ...]:
        """The inputs of the model stored at ``path`` (read once per hash)."""
        specs = self._specs.get(model_hash)
        if specs is None:
            specs = read_graph_inputs(path, model_hash[:12])
            self._specs[model_hash] = specs
        return specs

    def session(self, model_hash: str, path: Path) -> Loaded:
        """The model's session, created from ``path`` on first use (in the calling thread)."""
        loaded = self._sessions.get(model_hash)
        if loaded is not None:
            return loaded
        with self._load_lock:
            loaded = self._sessions.get(model_hash)
            if loaded is not None:
                return loaded
            specs = self.input_specs(model_hash, path)
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
            loaded = Loaded(session, specs, tuple(o.name for o in session.get_outputs()))
            self._sessions[model_hash] = loaded
            return loaded

    def unload(self, model_hash: str) -> None:
        """Drop a model's session (the next run loads it again)."""
        self._sessions.pop(model_hash, None)
        self._specs.pop(model_hash, None)

    def loaded(self) -> list[str]:
        """Hashes of models whose sessions are held, sorted."""
        return sorted(self._sessions)

    # -- work -----------------------------------------------------------------------------
    def submit(self, owner: object, fn: Callable[..., Any], *args: Any
               ) -> concurrent.futures.Future[Any]:
        """Queue ``fn(*args)`` for ``owner``; it runs when a thread reaches owner's turn."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                raise InferenceError("inference pool is closed")
            queue = self._queues.get(owner)
            if queue is None:
                queue = self._queues[owner] = collections.deque()
            if not queue:
                self._turns.append(owner)
            queue.append(_Item(fn, args, future))
        # one pass of the dispatcher per item queued, so every item gets a thread
        try:
            self._threads.submit(self._run_next)
        except RuntimeError:  # closed between the check above and here: close() cancelled it
            raise InferenceError("inference pool is closed") from None
        return future

    def pending(self, owner: object) -> int:
        """Items of ``owner`` queued and not started."""
        with self._lock:
            return len(self._queues.get(owner, ()))

    def cancel(self, owner: object) -> None:
        """Cancel the items of ``owner`` not started yet."""
        with self._lock:
            queue = self._queues.pop(owner, None)
            if owner in self._turns:
                self._turns.remove(owner)
        for item in queue or ():
            item.future.cancel()

    def _next(self) -> _Item | None:
        with self._lock:
            while self._turns:
                owner = self._turns.popleft()
                queue = self._queues[owner]
                item = queue.popleft()
                if queue:
                    self._turns.append(owner)  # back of the line
                else:
                    del self._queues[owner]
                return item
            return None

    def _run_next(self) -> None:
        item = self._next()
        if item is None or not item.future.set_running_or_notify_cancel():
            return
        try:
            result = item.fn(*item.args)
        except BaseException as exc:
            item.future.set_exception(exc)
        else:
            item.future.set_result(result)

    # -- lifetime -------------------------------------------------------------------------
    def close(self, wait: bool = False) -> None:
        """Cancel every queued item and stop the threads (``wait``: until they end)."""
        with self._lock:
            self._closed = True
            queues = list(self._queues.values())
            self._queues.clear()
            self._turns.clear()
        for queue in queues:
            for item in queue:
                item.future.cancel()
        self._threads.shutdown(wait=wait, cancel_futures=True)
        self._sessions.clear()
