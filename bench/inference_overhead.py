"""Overhead of the node's executor over bare onnxruntime, same model, same batches.

    .venv/bin/python bench/inference_overhead.py --json

For each model and batch size, one bare ``onnxruntime.InferenceSession`` and one
:class:`flightsw.models.Executor` (same session options, same thread count) run the same
inputs, interleaved (alternating which goes first) for ``--reps`` repetitions after a warm-up.
The executor is timed end to end around ``await executor.run(...)``, so validation, the hop
to the inference thread and back, and the result wrapping are all inside its figure. Each sample
repeats the call enough times to last ~20 ms (once for heavy batches). Medians of the samples
are reported as items per second; ``ratio`` is node / raw throughput, the median over the
back-to-back pairs (goal >= 0.95 for batch jobs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from flightsw.clock import WallClock
from flightsw.models import Executor, ModelStore, session_options

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "models"
DEFAULT_MODELS = ("embedder", "detector", "digits_classifier")
SAMPLE_S = 0.02  # target length of one timed sample


def make_inputs(spec_name: str, shape: tuple[int | None, ...], batch: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    dims = [batch if d is None else d for d in shape]
    return {spec_name: rng.random(dims, dtype=np.float32)}


async def measure(
    model: str, batches: list[int], reps: int, warmup: int, threads: int | None
) -> list[dict[str, Any]]:
    clock = WallClock()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = ModelStore(Path(tmp))
        h = store.put_file(EXAMPLES / f"{model}.onnx")
        async with Executor(store, clock=clock, intra_op_threads=threads) as executor:
            session = ort.InferenceSession(
                str(store.path(h)),
                sess_options=session_options(executor.intra_op_threads),
                providers=["CPUExecutionProvider"],
            )
            (spec,) = executor.input_specs(h)
            assert spec.shape is not None
            for batch in batches:
                inputs = make_inputs(spec.name, spec.shape, batch)
                for _ in range(warmup):
                    session.run(None, inputs)
                    await executor.run(h, inputs)
                # calls per sample: enough for ~20 ms, so timer and scheduler noise average out
                t0 = clock.perf_counter()
                session.run(None, inputs)
                calls = max(1, math.ceil(SAMPLE_S / max(clock.perf_counter() - t0, 1e-6)))
                raw: list[float] = []
                node: list[float] = []

                async def time_node(
                    inputs: dict[str, Any] = inputs, node: list[float] = node, calls: int = calls
                ) -> None:
                    t0 = clock.perf_counter()
                    for _ in range(calls):
                        await executor.run(h, inputs)
                    node.append((clock.perf_counter() - t0) / calls)

                def time_raw(
                    inputs: dict[str, Any] = inputs, raw: list[float] = raw, calls: int = calls
                ) -> None:
                    t0 = clock.perf_counter()
                    for _ in range(calls):
                        session.run(None, inputs)
                    raw.append((clock.perf_counter() - t0) / calls)

                for rep in range(reps):
                    if rep % 2 == 0:
                        time_raw()
                        await time_node()
                    else:
                        await time_node()
                        time_raw()
                raw_ips = batch / statistics.median(raw)
                node_ips = batch / statistics.median(node)
                rows.append(
                    {
                        "model": model,
                        "batch": batch,
                        "raw_items_per_s": round(raw_ips, 2),
                        "node_items_per_s": round(node_ips, 2),
                        # median of per-pair ratios: a pair runs back to back, so both
                        # halves see the same load from other processes
                        "ratio": round(
                            statistics.median(r / n for r, n in zip(raw, node, strict=True)), 4
                        ),
                    }
                )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print a JSON list of rows")
    parser.add_argument(
        "--models", default=",".join(DEFAULT_MODELS), help="example model names, comma-separated"
    )
    parser.add_argument("--batches", default="1,8,32", help="batch sizes, comma-separated")
    parser.add_argument("--reps", type=int, default=21, help="timed runs per engine (median)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs per engine first")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    args = parser.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",")]
    rows: list[dict[str, Any]] = []
    for model in args.models.split(","):
        rows += asyncio.run(measure(model, batches, args.reps, args.warmup, args.threads))
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(
            f"{'model':18s} {'batch':>5s} {'raw items/s':>12s} {'node items/s':>12s} {'ratio':>6s}"
        )
        for r in rows:
            print(
                f"{r['model']:18s} {r['batch']:5d} {r['raw_items_per_s']:12.1f} "
                f"{r['node_items_per_s']:12.1f} {r['ratio']:6.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
