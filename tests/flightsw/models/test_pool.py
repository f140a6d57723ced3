"""InferencePool: runs taken from owners in turn, one session per model for all executors."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from node_harness import DIGITS, digits_inputs, model_hash

from flightsw.clock import WallClock
from flightsw.exceptions import InferenceError
from flightsw.models.executor import Executor
from flightsw.models.pool import InferencePool
from flightsw.models.store import ModelStore


def _store(root: Path) -> ModelStore:
    store = ModelStore(root)
    store.put(DIGITS.read_bytes())
    return store


def test_owners_take_turns() -> None:
    pool = InferencePool(1, intra_op_threads=1)
    gate, started = threading.Event(), threading.Event()
    order: list[str] = []

    def step(name: str) -> str:
        if name == "a0":
            started.set()
            assert gate.wait(10)
        order.append(name)
        return name

    try:
        first = pool.submit("a", step, "a0")  # holds the only thread until the gate opens
        assert started.wait(10)
        rest_a = [pool.submit("a", step, f"a{i}") for i in range(1, 5)]
        b = pool.submit("b", step, "b0")  # queued last, but b's turn comes after one of a's
        assert pool.pending("a") == 4
        gate.set()
        assert [f.result(10) for f in (first, *rest_a, b)] == ["a0", "a1", "a2", "a3", "a4",
                                                              "b0"]
    finally:
        pool.close(wait=True)
    assert order == ["a0", "a1", "b0", "a2", "a3", "a4"]


def test_cancel_drops_only_that_owners_queue() -> None:
    pool = InferencePool(1, intra_op_threads=1)
    gate = threading.Event()
    try:
        started = threading.Event()

        def block() -> bool:
            started.set()
            return gate.wait(10)

        blocker = pool.submit("a", block)
        assert started.wait(10)
        mine = pool.submit("a", lambda: "a")
        theirs = pool.submit("b", lambda: "b")
        pool.cancel("a")
        gate.set()
        assert blocker.result(10) is True  # already running: not cancelled
        assert mine.cancelled()
        assert theirs.result(10) == "b"
    finally:
        pool.close(wait=True)
    with pytest.raises(InferenceError, match="closed"):
        pool.submit("a", lambda: None)


async def test_executors_share_one_session_and_outlive_each_other(tmp_path: Path) -> None:
    pool = InferencePool(2, intra_op_threads=1)
    h = model_hash(DIGITS)
    clock = WallClock()
    one = Executor(_store(tmp_path / "one"), clock=clock, pool=pool)
    two = Executor(_store(tmp_path / "two"), clock=clock, pool=pool)
    x = digits_inputs(8)
    bare = ort.InferenceSession(str(DIGITS), providers=["CPUExecutionProvider"])
    want = dict(zip([o.name for o in bare.get_outputs()], bare.run(None, {"input": x}),
                    strict=True))
    try:
        a = await one.run(h, {"input": x})
        b = await two.run(h, {"input": x})
        assert pool.loaded() == [h]  # one session for both nodes' stores
        assert one.loaded() == two.loaded() == [h]
        for name, value in want.items():
            assert np.array_equal(a.outputs[name], value)
            assert np.array_equal(b.outputs[name], value)
        one.close()  # one node leaves: the other keeps running on the shared pool
        with pytest.raises(InferenceError, match="closed"):
            await one.run(h, {"input": x})
        shutil.rmtree(tmp_path / "one")
        c = await two.run(h, {"input": x})
        assert np.array_equal(c.outputs["label"], want["label"])
    finally:
        await two.aclose()
        pool.close(wait=True)
