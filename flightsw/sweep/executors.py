"""Where the runs of a sweep execute: local processes, or a Dask distributed cluster.

A backend takes runs and yields, for each, either its result or a :class:`Lost` (the
worker died, the cluster went away): every run it is given comes back exactly once. The
driver (:mod:`flightsw.sweep.sweep`) stores results and gives lost runs another attempt.

* :class:`LocalBackend`: a ``ProcessPoolExecutor`` (``forkserver``, else ``spawn``: no
  thread or lock of the driver is forked). It keeps only as many runs in the pool as it
  has processes, so a process that dies takes only the runs really in flight with it; the
  pool is then broken, and a new one carries on with the rest.
* :class:`InlineBackend`: in the calling process, one run after another (``--workers 0``:
  a debugger sees the run; the tests' reference).
* :class:`DaskBackend`: a ``distributed.Client`` on an existing scheduler. The scheduler
  moves the tasks of a worker that dies to the others (and gives up on a task that has
  killed ``distributed.scheduler.allowed-failures`` workers: ``KilledWorker``, final).
  ``distributed`` is imported only here, when a scheduler is given.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from flightsw.exceptions import ConfigError
from flightsw.sweep.grid import Run
from flightsw.sweep.work import run_one

__all__ = ["Backend", "DaskBackend", "InlineBackend", "LocalBackend", "Lost", "Outcome"]


@dataclass(frozen=True)
class Lost:
    """A run that returned no result because its worker or the cluster failed."""

    error: str
    final: bool = False  # no point in another attempt (the engine gave up on it already)


Outcome = tuple[Run, dict[str, Any] | Lost]


class Backend(Protocol):
    description: str

    def run(self, runs: Sequence[Run]) -> Iterator[Outcome]:
        """Yield each of ``runs`` once, with its result or :class:`Lost`, as they finish."""
        ...

    def close(self) -> None: ...


def _context() -> multiprocessing.context.BaseContext:
    """``forkserver`` with the simulator imported once in the server (a new worker, or a
    new pool after one died, starts in a fraction of a second), else ``spawn``; never a
    plain fork of the driver, whose threads and locks a child must not inherit."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["flightsw.sweep.work"])
        return ctx
    return multiprocessing.get_context("spawn")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _outcome(fut: cf.Future[dict[str, Any]], run: Run) -> Outcome:
    try:
        return run, fut.result()
    except cf.process.BrokenProcessPool as exc:
        return run, Lost(f"worker process died: {_describe(exc)}")


class InlineBackend:
    """Runs in this process, one after another."""

    description = "this process"

    def run(self, runs: Sequence[Run]) -> Iterator[Outcome]:
        for run in runs:
            yield run, run_one(run)

    def close(self) -> None:
        pass


class LocalBackend:
    """Runs on ``workers`` local processes (default: the CPU count)."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.description = f"{self.workers} local processes"
        self._pool: cf.ProcessPoolExecutor | None = None
        self.pools_started = 0

    def _fresh_pool(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(self.workers, mp_context=_context())
            self.pools_started += 1
        return self._pool

    def _drop_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def worker_pids(self) -> list[int]:
        """The processes of the current pool (none before the first run)."""
        procs = getattr(self._pool, "_processes", None) or {}
        return sorted(procs)

    def run(self, runs: Sequence[Run]) -> Iterator[Outcome]:
        queue = deque(runs)
        flight: dict[cf.Future[dict[str, Any]], Run] = {}
        while queue or flight:
            pool = self._fresh_pool()
            broken = False
            while queue and len(flight) < self.workers:
                run = queue.popleft()
                try:
                    flight[pool.submit(run_one, run)] = run
                except cf.process.BrokenProcessPool:  # a process died while all were idle
                    queue.appendleft(run)
                    broken = True
                    break
            done = set() if broken else cf.wait(flight, return_when=cf.FIRST_COMPLETED)[0]
            for fut in sorted(done, key=lambda f: flight[f].run_id):
                outcome = _outcome(fut, flight.pop(fut))
                broken |= isinstance(outcome[1], Lost)
                yield outcome
            if broken:  # the dead pool fails every run still in it (those that finished
                # first keep their result): collect them all, then start a new pool
                rest, stuck = cf.wait(flight, timeout=60.0)
                for fut in sorted(rest, key=lambda f: flight[f].run_id):
                    yield _outcome(fut, flight[fut])
                for fut in sorted(stuck, key=lambda f: flight[f].run_id):
                    yield flight[fut], Lost("worker process died (the pool broke while it ran)")
                flight.clear()
                self._drop_pool()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class DaskBackend:
    """Runs on the workers of the Dask scheduler at ``address`` (``tcp://host:port``)."""

    def __init__(self, address: str, *, timeout_s: float = 20.0, field: str = "scheduler"
                 ) -> None:
        try:
            import distributed  # noqa: PLC0415  (optional: only for a cluster)
        except ImportError as exc:
            raise ConfigError(
                f"{field}: running on a Dask cluster needs dask[distributed] "
                "(pip install 'flightsw[sweep]')") from exc
        self._distributed = distributed
        try:
            self.client: Any = distributed.Client(  # type: ignore[no-untyped-call]
                address, timeout=f"{timeout_s}s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigError(f"{field}: cannot connect to {address}: {_describe(exc)}"
                              ) from exc
        n = len(self.client.scheduler_info().get("workers", {}))
        self.description = f"Dask scheduler {address} ({n} workers now)"

    def run(self, runs: Sequence[Run]) -> Iterator[Outcome]:
        tag = uuid.uuid4().hex[:8]  # a fresh key per attempt: a failed key stays failed
        futures = {
            self.client.submit(run_one, run, key=f"flightsw-sweep-{run.run_id}-{tag}",
                               pure=False): run
            for run in runs
        }
        killed = self._distributed.KilledWorker
        done = self._distributed.as_completed(  # type: ignore[no-untyped-call]
            list(futures), loop=self.client.loop)
        for fut in done:
            run = futures.pop(fut)
            try:
                result = fut.result()
            except killed as exc:
                yield run, Lost(f"workers died running it: {_describe(exc)}", final=True)
            except Exception as exc:  # the cluster failed, not the run (it catches its own)
                yield run, Lost(f"cluster error: {_describe(exc)}")
            else:
                yield run, result
            fut.release()

    def close(self) -> None:
        self.client.close()
