"""Build the example ONNX models into this directory, and their README.

    .venv/bin/python examples/models/make_models.py

Deterministic (fixed seeds, fixed opset 17) and takes a few seconds. Four models whose FLOPs
per item span six orders of magnitude:

* ``digits_forest.onnx``: random forest on scikit-learn's digits (TreeEnsembleClassifier).
* ``digits_classifier.onnx``: MLP on the same data (MatMul, Relu, Softmax).
* ``detector.onnx``: small conv net with seeded random weights: boxes and scores per cell.
* ``embedder.onnx``: token-wise MLP stack with residuals and LayerNorm, the heavy batch job.

The digits models are trained on a stratified 75 % of the 1,797 images and their accuracy is
measured with onnxruntime on the held-out 25 % (``digits_split``); the tests recompute it.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from flightsw.models.cost import analyse  # needs the project installed (pip install -e .)

HERE = Path(__file__).resolve().parent
OPSET = 17
IR_VERSION = 8  # readable by onnxruntime >= 1.14
SEED = 20251102  # Starcloud-1 launch date
TEST_FRACTION = 0.25
DETECTOR_SIZE = 96  # input image side, pixels
DETECTOR_CELLS = 12  # output grid side: 96 / 2**3
EMBED_TOKENS = 256
EMBED_DIM = 128
EMBED_HIDDEN = 512
EMBED_BLOCKS = 3

Array = npt.NDArray[Any]


@dataclass(frozen=True)
class Split:
    x_train: Array
    x_test: Array
    y_train: Array
    y_test: Array


def digits_split() -> Split:
    """Digits images as float32 [n, 64] in [0, 1], stratified 75/25 split with a fixed seed."""
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=TEST_FRACTION, random_state=0, stratify=y
    )
    return Split(x_tr, x_te, y_tr.astype(np.int64), y_te.astype(np.int64))


def onnx_accuracy(model: bytes, x: Array, y: Array) -> float:
    """Fraction of ``x`` whose ``label`` output from onnxruntime equals ``y``."""
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    label = session.run(["label"], {session.get_inputs()[0].name: x})[0]
    return float(np.mean(label.reshape(-1) == y))


def _sklearn_to_onnx(estimator: Any, name: str, doc: str) -> onnx.ModelProto:
    model: onnx.ModelProto = to_onnx(
        estimator,
        initial_types=[("input", FloatTensorType([None, 64]))],
        options={id(estimator): {"zipmap": False}},
        target_opset={"": OPSET, "ai.onnx.ml": 3},
    )
    model.graph.name = name
    model.doc_string = doc
    return model


def build_digits_classifier(split: Split) -> onnx.ModelProto:
    mlp = MLPClassifier(hidden_layer_sizes=(64,), max_iter=400, tol=1e-5, random_state=0)
    # one BLAS thread: multi-threaded sums change the last bits of the weights from run to run
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        # a fixed iteration budget keeps the build fast and repeatable; accuracy is reported
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(split.x_train, split.y_train)
    return _sklearn_to_onnx(
        mlp,
        "digits_classifier",
        "MLP 64-64-10 (ReLU) on scikit-learn digits; input float32 [N, 64] pixels / 16; "
        "outputs label int64 [N] and probabilities float32 [N, 10].",
    )


def build_digits_forest(split: Split) -> onnx.ModelProto:
    forest = RandomForestClassifier(n_estimators=16, max_depth=8, random_state=0)
    forest.fit(split.x_train, split.y_train)
    return _sklearn_to_onnx(
        forest,
        "digits_forest",
        "Random forest (16 trees, depth <= 8) on scikit-learn digits; input float32 [N, 64] "
        "pixels / 16; outputs label int64 [N] and probabilities float32 [N, 10].",
    )


def _he(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> Array:
    weights: Array = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    return weights


def _const(name: str, array: Array) -> TensorProto:
    return numpy_helper.from_array(np.ascontiguousarray(array), name)


def _finish(graph: onnx.GraphProto, doc: str) -> onnx.ModelProto:
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="orbital-dc-emulator",
        doc_string=doc,
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def build_detector(rng: np.random.Generator) -> onnx.ModelProto:
    """Conv backbone (3 conv + pool stages, a depthwise-separable block) and three heads.

    Outputs per image: ``boxes`` [N, 144, 4] (cx, cy, w, h in [0, 1] per 8x8-pixel cell of a
    12x12 grid), ``scores`` [N, 144] objectness, ``scene`` [N, 3] class probabilities.
    """
    nodes: list[onnx.NodeProto] = []
    inits: list[TensorProto] = []
    x = "image"
    channels = 3
    for i, width in enumerate((16, 32, 64)):
        inits += [
            _const(f"conv{i}.w", _he(rng, (width, channels, 3, 3), channels * 9)),
            _const(f"conv{i}.b", np.zeros(width, np.float32)),
        ]
        nodes += [
            helper.make_node(
                "Conv", [x, f"conv{i}.w", f"conv{i}.b"], [f"conv{i}"], pads=[1, 1, 1, 1]
            ),
            helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"]),
            helper.make_node(
                "MaxPool", [f"relu{i}"], [f"pool{i}"], kernel_shape=[2, 2], strides=[2, 2]
            ),
        ]
        x, channels = f"pool{i}", width
    # depthwise 3x3 (group = channels) then pointwise 1x1: a MobileNet-style block
    inits += [
        _const("dw.w", _he(rng, (channels, 1, 3, 3), 9)),
        _const("dw.b", np.zeros(channels, np.float32)),
        _const("pw.w", _he(rng, (channels, channels, 1, 1), channels)),
        _const("pw.b", np.zeros(channels, np.float32)),
        _const("box.w", _he(rng, (4, channels, 1, 1), channels) * 0.1),
        _const("box.b", np.zeros(4, np.float32)),
        _const("score.w", _he(rng, (1, channels, 1, 1), channels) * 0.1),
        _const("score.b", np.full(1, -2.0, np.float32)),
        _const("scene.w", _he(rng, (3, channels), channels)),
        _const("scene.b", np.zeros(3, np.float32)),
        _const("box_shape", np.array([0, 4, DETECTOR_CELLS * DETECTOR_CELLS], np.int64)),
        _const("score_shape", np.array([0, DETECTOR_CELLS * DETECTOR_CELLS], np.int64)),
    ]
    nodes += [
        helper.make_node("Conv", [x, "dw.w", "dw.b"], ["dw"], pads=[1, 1, 1, 1], group=channels),
        helper.make_node("Relu", ["dw"], ["dw_relu"]),
        helper.make_node("Conv", ["dw_relu", "pw.w", "pw.b"], ["pw"]),
        helper.make_node("Relu", ["pw"], ["features"]),
        helper.make_node("Conv", ["features", "box.w", "box.b"], ["box_logits"]),
        helper.make_node("Sigmoid", ["box_logits"], ["box_grid"]),
        helper.make_node("Reshape", ["box_grid", "box_shape"], ["box_flat"]),
        helper.make_node("Transpose", ["box_flat"], ["boxes"], perm=[0, 2, 1]),
        helper.make_node("Conv", ["features", "score.w", "score.b"], ["score_logits"]),
        helper.make_node("Sigmoid", ["score_logits"], ["score_grid"]),
        helper.make_node("Reshape", ["score_grid", "score_shape"], ["scores"]),
        helper.make_node("GlobalAveragePool", ["features"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["pooled_flat"]),
        helper.make_node("Gemm", ["pooled_flat", "scene.w", "scene.b"], ["scene_logits"], transB=1),
        helper.make_node("Softmax", ["scene_logits"], ["scene"], axis=-1),
    ]
    cells = DETECTOR_CELLS * DETECTOR_CELLS
    graph = helper.make_graph(
        nodes,
        "detector",
        [
            helper.make_tensor_value_info(
                "image", TensorProto.FLOAT, ["N", 3, DETECTOR_SIZE, DETECTOR_SIZE]
            )
        ],
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["N", cells, 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", cells]),
            helper.make_tensor_value_info("scene", TensorProto.FLOAT, ["N", 3]),
        ],
        inits,
    )
    return _finish(
        graph,
        "Toy object detector (seeded random weights, not trained): image float32 "
        f"[N, 3, {DETECTOR_SIZE}, {DETECTOR_SIZE}] -> boxes [N, {cells}, 4], scores [N, {cells}], "
        "scene [N, 3].",
    )


def build_embedder(rng: np.random.Generator) -> onnx.ModelProto:
    """Token-wise MLP blocks (x + W2 relu(W1 x)), LayerNorm, mean pool, L2 normalise."""
    nodes: list[onnx.NodeProto] = []
    inits: list[TensorProto] = []
    x = "tokens"
    for i in range(EMBED_BLOCKS):
        p = f"block{i}"
        inits += [
            _const(f"{p}.w1", _he(rng, (EMBED_DIM, EMBED_HIDDEN), EMBED_DIM)),
            _const(f"{p}.b1", np.zeros(EMBED_HIDDEN, np.float32)),
            _const(f"{p}.w2", _he(rng, (EMBED_HIDDEN, EMBED_DIM), EMBED_HIDDEN) * 0.5),
            _const(f"{p}.b2", np.zeros(EMBED_DIM, np.float32)),
            _const(f"{p}.gamma", np.ones(EMBED_DIM, np.float32)),
            _const(f"{p}.beta", np.zeros(EMBED_DIM, np.float32)),
        ]
        nodes += [
            helper.make_node("MatMul", [x, f"{p}.w1"], [f"{p}.h"]),
            helper.make_node("Add", [f"{p}.h", f"{p}.b1"], [f"{p}.hb"]),
            helper.make_node("Relu", [f"{p}.hb"], [f"{p}.a"]),
            helper.make_node("MatMul", [f"{p}.a", f"{p}.w2"], [f"{p}.o"]),
            helper.make_node("Add", [f"{p}.o", f"{p}.b2"], [f"{p}.ob"]),
            helper.make_node("Add", [x, f"{p}.ob"], [f"{p}.res"]),
            helper.make_node(
                "LayerNormalization",
                [f"{p}.res", f"{p}.gamma", f"{p}.beta"],
                [f"{p}.out"],
                axis=-1,
                epsilon=1e-5,
            ),
        ]
        x = f"{p}.out"
    nodes += [
        helper.make_node("ReduceMean", [x], ["pooled"], axes=[1], keepdims=0),
        helper.make_node("ReduceL2", ["pooled"], ["norm"], axes=[1], keepdims=1),
        helper.make_node("Div", ["pooled", "norm"], ["embedding"]),
    ]
    graph = helper.make_graph(
        nodes,
        "embedder",
        [
            helper.make_tensor_value_info(
                "tokens", TensorProto.FLOAT, ["N", EMBED_TOKENS, EMBED_DIM]
            )
        ],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", EMBED_DIM])],
        inits,
    )
    return _finish(
        graph,
        f"Token-wise MLP embedder (seeded random weights, not trained): tokens float32 "
        f"[N, {EMBED_TOKENS}, {EMBED_DIM}] -> embedding [N, {EMBED_DIM}] (unit L2 norm).",
    )


def _si(value: float) -> str:
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.3g} {prefix}"
    return f"{value:.3g} "


def write_readme(out: Path, rows: list[dict[str, Any]], accuracy: dict[str, float]) -> None:
    lines = [
        "# Example models",
        "",
        "Generated by `make_models.py` (deterministic, opset 17, dynamic batch dimension `N`):",
        "",
        "    .venv/bin/python examples/models/make_models.py",
        "",
        "FLOPs and bytes per item come from `flightsw.models.cost.analyse` (counting rules in",
        "`docs/models.md`); bytes per item are activation bytes read and written.",
        "",
        "| file | input | outputs | FLOPs/item | bytes/item | weights | file |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| `{r['file']}` | {r['input']} | {r['outputs']} | {_si(r['flops'])}FLOP | "
            f"{_si(r['bytes'])}B | {_si(r['weights'])}B | {_si(r['size'])}B |"
        )
    lines += [
        "",
        "## Accuracy on held-out digits",
        "",
        "scikit-learn's digits data set (1,797 8x8 images, shipped with scikit-learn), split",
        "75/25 stratified with `random_state=0`; accuracy measured with onnxruntime on the",
        f"{TEST_FRACTION:.0%} held out ({len(digits_split().y_test)} images);",
        "`tests/flightsw/models/test_examples.py` recomputes these figures.",
        "",
    ]
    for name, acc in accuracy.items():
        lines.append(f"- `{name}`: held-out test accuracy {acc * 100:.2f} %")
    lines += [
        "",
        "`detector.onnx` and `embedder.onnx` carry seeded random weights: they exercise the",
        "executor and the cost model with realistic shapes and FLOPs, not a trained task.",
        "",
    ]
    (out / "README.md").write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output directory")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    split = digits_split()
    rng = np.random.default_rng(SEED)
    models = {
        "digits_forest.onnx": build_digits_forest(split),
        "digits_classifier.onnx": build_digits_classifier(split),
        "detector.onnx": build_detector(rng),
        "embedder.onnx": build_embedder(rng),
    }
    rows: list[dict[str, Any]] = []
    accuracy: dict[str, float] = {}
    for file, model in models.items():
        data = model.SerializeToString()
        (out / file).write_bytes(data)
        cost = analyse(data)
        if cost.uncounted:
            print(f"warning: {file}: uncounted op types {cost.uncounted}", file=sys.stderr)
        spec = cost.inputs[0]
        rows.append(
            {
                "file": file,
                "input": f"`{spec.name}` {spec.describe()}",
                "outputs": ", ".join(f"`{o}`" for o in cost.outputs),
                "flops": cost.flops_per_item,
                "bytes": cost.bytes_per_item,
                "weights": cost.weight_bytes,
                "size": len(data),
            }
        )
        if file.startswith("digits_"):
            accuracy[file] = onnx_accuracy(data, split.x_test, split.y_test)
        extra = f"  test accuracy {accuracy[file] * 100:.2f} %" if file in accuracy else ""
        print(
            f"{file:24s} {len(data) / 1e6:6.3f} MB  {cost.flops_per_item:14,.0f} FLOP/item  "
            f"sha256 {cost.model_hash[:16]}{extra}"
        )
    write_readme(out, rows, accuracy)
    return 0


if __name__ == "__main__":
    sys.exit(main())
