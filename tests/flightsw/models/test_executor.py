"""Executor: real onnxruntime, identical outputs, clear input errors, a responsive loop."""

from __future__ import annotations

import asyncio

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from flightsw.clock import WallClock
from flightsw.exceptions import InferenceError, JobRejected, UnknownModelError
from flightsw.models.executor import Executor, session_options
from flightsw.models.store import ModelStore

F = TensorProto.FLOAT


def _digits(n: int) -> np.ndarray:
    x, _ = load_digits(return_X_y=True)
    return (x[:n] / 16.0).astype(np.float32)


def _inputs(name: str, batch: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    if name.startswith("digits"):
        return {"input": _digits(batch)}
    if name == "detector":
        return {"image": rng.random((batch, 3, 96, 96), dtype=np.float32)}
    return {"tokens": rng.standard_normal((batch, 256, 128), dtype=np.float32)}


def _put(store: ModelStore, model: onnx.ModelProto) -> str:
    return store.put(model.SerializeToString())


def _graph_model(
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    inits: dict[str, np.ndarray] | None = None,
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        inputs,
        outputs,
        [numpy_helper.from_array(v, k) for k, v in (inits or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


@pytest.fixture
async def executor(store: ModelStore) -> Executor:
    ex = Executor(store, clock=WallClock(), intra_op_threads=2)
    yield ex  # type: ignore[misc]
    await ex.aclose()


@pytest.mark.parametrize(
    ("name", "batch"),
    [("digits_forest", 50), ("digits_classifier", 50), ("detector", 3), ("embedder", 2)],
)
async def test_outputs_identical_to_bare_onnxruntime(
    executor: Executor, store: ModelStore, example_hashes: dict[str, str], name: str, batch: int
) -> None:
    h = example_hashes[name]
    inputs = _inputs(name, batch)
    result = await executor.run(h, inputs)
    bare = ort.InferenceSession(
        str(store.path(h)), sess_options=session_options(2), providers=["CPUExecutionProvider"]
    )
    expected = bare.run(None, inputs)
    assert list(result.outputs) == [o.name for o in bare.get_outputs()]
    for got, want in zip(result.outputs.values(), expected, strict=True):
        assert got.dtype == want.dtype
        assert np.array_equal(got, want)
    assert result.items == batch
    assert result.host_wall_s > 0
    assert executor.loaded() == [h]


async def test_digits_labels_are_digits(executor: Executor, example_hashes: dict[str, str]) -> None:
    x, y = load_digits(return_X_y=True)
    result = await executor.run(
        example_hashes["digits_classifier"], {"input": (x[:200] / 16.0).astype(np.float32)}
    )
    assert result.outputs["label"].shape == (200,)
    assert np.mean(result.outputs["label"] == y[:200]) > 0.9
    assert result.outputs["probabilities"].shape == (200, 10)


@pytest.mark.parametrize(
    ("inputs", "reason", "field"),
    [
        ({}, r"missing input 'input' \(float32 \[N, 64\]\)", "inputs.input"),
        (
            {"input": np.zeros((2, 64), np.float32), "extra": np.zeros(1)},
            r"unexpected input 'extra'; the model's inputs are 'input'",
            "inputs.extra",
        ),
        ({"input": np.zeros((2, 64))}, r"input 'input': dtype float64, expected float32",
         "inputs.input"),
        (
            {"input": np.zeros(64, np.float32)},
            r"input 'input': rank 1 \(shape \[64\]\), expected rank 2",
            "inputs.input",
        ),
        ({"input": np.zeros((2, 63), np.float32)}, r"input 'input': dim 1 is 63, expected 64",
         "inputs.input"),
        ({"input": [[0.0] * 64]}, r"input 'input': expected a numpy array, got list",
         "inputs.input"),
        ({"input": np.zeros((0, 64), np.float32)},
         r"^inputs: input 'input' has a batch of zero items", "inputs"),
    ],
)
async def test_bad_inputs_are_rejected_naming_the_problem(
    executor: Executor,
    example_hashes: dict[str, str],
    inputs: dict[str, object],
    reason: str,
    field: str,
) -> None:
    h = example_hashes["digits_classifier"]
    with pytest.raises(JobRejected, match=reason) as info:
        executor.validate_inputs(h, inputs)  # type: ignore[arg-type]
    assert info.value.reason == str(info.value)
    assert (info.value.code, info.value.field) == ("invalid_job", field)
    with pytest.raises(JobRejected, match=reason):
        await executor.run(h, inputs)  # type: ignore[arg-type]


async def test_inconsistent_batch_and_named_dims(executor: Executor, store: ModelStore) -> None:
    model = _graph_model(
        [helper.make_node("Add", ["a", "b"], ["y"])],
        [
            helper.make_tensor_value_info("a", F, ["N", "T"]),
            helper.make_tensor_value_info("b", F, ["N", "T"]),
        ],
        [helper.make_tensor_value_info("y", F, ["N", "T"])],
    )
    h = _put(store, model)
    ones = np.ones((3, 5), np.float32)
    with pytest.raises(JobRejected, match="inconsistent dim 'T': input 'a' has 5, input 'b' has 4"):
        executor.validate_inputs(h, {"a": ones, "b": np.ones((3, 4), np.float32)})
    with pytest.raises(JobRejected, match="batch sizes differ: input 'a' has 3 items"):
        executor.validate_inputs(h, {"a": ones, "b": np.ones((2, 5), np.float32)})
    result = await executor.run(h, {"a": ones, "b": ones})
    assert np.array_equal(result.outputs["y"], ones * 2)
    assert result.items == 3


async def test_unknown_model(executor: Executor) -> None:
    with pytest.raises(UnknownModelError, match="ef" * 32):
        await executor.run("ef" * 32, {"input": np.zeros((1, 64), np.float32)})


async def test_zipmap_outputs_are_an_inference_error(executor: Executor, store: ModelStore) -> None:
    x, y = load_digits(return_X_y=True)
    clf = LogisticRegression(max_iter=200).fit(x[:300] / 16.0, y[:300])
    model = to_onnx(  # zipmap left on: probabilities come back as a list of dicts
        clf, initial_types=[("input", FloatTensorType([None, 64]))], target_opset=17
    )
    h = _put(store, model)
    with pytest.raises(InferenceError, match=r"not a tensor.*zipmap=False"):
        await executor.run(h, {"input": _digits(2)})


async def test_onnxruntime_failure_is_an_inference_error(
    executor: Executor, store: ModelStore
) -> None:
    # valid graph, but a Reshape to [3, -1] fails at run time for a batch of 1 x 4 values
    model = _graph_model(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])],
        [helper.make_tensor_value_info("x", F, ["N", 4])],
        [helper.make_tensor_value_info("y", F, [None, None])],
        {"shape": np.array([3, -1], np.int64)},
    )
    h = _put(store, model)
    with pytest.raises(InferenceError, match="onnxruntime failed"):
        await executor.run(h, {"x": np.ones((1, 4), np.float32)})
    result = await executor.run(h, {"x": np.ones((3, 4), np.float32)})  # still usable
    assert result.outputs["y"].shape == (3, 4)


async def test_event_loop_keeps_ticking_during_heavy_inference(
    executor: Executor, example_hashes: dict[str, str]
) -> None:
    clock = WallClock()
    h = example_hashes["embedder"]
    await executor.load(h)
    inputs = _inputs("embedder", 16)  # ~3.2 GFLOP
    task = asyncio.ensure_future(executor.run(h, inputs))
    ticks = 0
    gaps: list[float] = []
    last = clock.perf_counter()
    while not task.done():
        await clock.sleep(0.001)
        now = clock.perf_counter()
        gaps.append(now - last)
        last = now
        ticks += 1
    result = await task
    # had inference run on the loop thread, one gap would cover the whole run
    assert ticks >= 5
    assert max(gaps) < 0.5 * result.host_wall_s


async def test_cancel_stops_the_run_and_executor_stays_usable(
    executor: Executor, example_hashes: dict[str, str]
) -> None:
    clock = WallClock()
    h = example_hashes["embedder"]
    await executor.load(h)
    task = asyncio.ensure_future(executor.run(h, _inputs("embedder", 64)))
    await clock.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    result = await executor.run(h, _inputs("embedder", 1))
    assert result.outputs["embedding"].shape == (1, 128)
    assert np.allclose(np.linalg.norm(result.outputs["embedding"], axis=1), 1.0, atol=1e-5)


async def test_closed_executor_refuses_work(
    store: ModelStore, example_hashes: dict[str, str]
) -> None:
    async with Executor(store, clock=WallClock()) as ex:
        h = example_hashes["digits_forest"]
        assert (await ex.run(h, {"input": _digits(4)})).items == 4
    with pytest.raises(InferenceError, match="executor is closed"):
        await ex.run(h, {"input": _digits(4)})


def test_bad_pool_size(store: ModelStore) -> None:
    with pytest.raises(InferenceError, match="max_workers must be >= 1"):
        Executor(store, 0)


class _StopAfter:
    """A stop flag that reads set after ``n`` looks (the executor looks once per chunk)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def is_set(self) -> bool:
        self.n -= 1
        return self.n < 0


@pytest.mark.parametrize(("name", "batch"), [("digits_classifier", 20), ("detector", 4)])
async def test_a_batch_suspended_at_an_item_boundary_resumes_to_bare_outputs(
    executor: Executor, store: ModelStore, example_hashes: dict[str, str], name: str, batch: int
) -> None:
    h = example_hashes[name]
    inputs = _inputs(name, batch)
    first = await executor.run_items(h, inputs, stop=_StopAfter(batch // 2))  # type: ignore[arg-type]
    assert first.stopped and first.start == 0 and first.done == batch // 2
    rest = await executor.run_items(h, inputs, start=first.done, chunk=3)
    assert not rest.stopped and rest.start == batch // 2 and rest.done == batch - batch // 2
    bare = ort.InferenceSession(
        str(store.path(h)), sess_options=session_options(2), providers=["CPUExecutionProvider"]
    )
    names = [o.name for o in bare.get_outputs()]
    # item by item, bare onnxruntime gives the same numbers, bit for bit
    per_item = [bare.run(None, {k: v[i:i + 1] for k, v in inputs.items()}) for i in range(batch)]
    whole = bare.run(None, inputs)
    for n, name_out in enumerate(names):
        got = np.concatenate([first.outputs[name_out], rest.outputs[name_out]], axis=0)
        assert got.dtype == whole[n].dtype and got.shape == whole[n].shape
        assert np.array_equal(got[: first.done], np.concatenate([p[n] for p in per_item])[
            : first.done])
        np.testing.assert_allclose(got, whole[n], rtol=1e-5, atol=1e-6)
    with pytest.raises(InferenceError, match="start: item 99"):
        await executor.run_items(h, inputs, start=99)
