"""The committed example models: accuracy stated in their README, sizes, opset, batch dim."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx
import onnxruntime as ort
import pytest


def _make_models(examples_dir: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_models", examples_dir / "make_models.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_models", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["digits_classifier", "digits_forest"])
def test_held_out_accuracy_matches_readme(examples_dir: Path, name: str) -> None:
    split = _make_models(examples_dir).digits_split()
    assert len(split.y_test) == 450  # 25 % of the 1,797 digits
    session = ort.InferenceSession(
        str(examples_dir / f"{name}.onnx"), providers=["CPUExecutionProvider"]
    )
    label = session.run(["label"], {"input": split.x_test})[0]
    accuracy = float(np.mean(label == split.y_test))
    readme = (examples_dir / "README.md").read_text(encoding="utf-8")
    stated = re.search(rf"`{name}\.onnx`: held-out test accuracy ([0-9.]+) %", readme)
    assert stated is not None, f"README states no accuracy for {name}"
    assert f"{accuracy * 100:.2f}" == stated.group(1)
    assert accuracy > 0.9


def test_files_are_small_fixed_opset_and_batch_dynamic(examples_dir: Path) -> None:
    files = sorted(examples_dir.glob("*.onnx"))
    assert len(files) == 4
    assert sum(f.stat().st_size for f in files) < 8_000_000
    for f in files:
        assert f.stat().st_size < 2_000_000, f
        model = onnx.load(str(f))
        onnx.checker.check_model(model)
        assert {o.domain: o.version for o in model.opset_import}.get("", 0) == 17
        weights = {i.name for i in model.graph.initializer}
        for vi in model.graph.input:
            if vi.name not in weights:
                first = vi.type.tensor_type.shape.dim[0]
                assert not first.HasField("dim_value"), f"{f.name}: batch dim is fixed"
