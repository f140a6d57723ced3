"""Pipeline stages of an ONNX graph: where to cut it into K parts, and the parts.

A cut falls between two nodes of the graph's (topological) node order; the tensors that
cross it, produced before and read after (graph inputs and outputs included, so a later
stage or the end still gets them), are what the stage boundary carries per item. The
cost of a plan is its slowest stage: the stage's FLOPs per item over the node's
effective ops/s plus the bytes its boundary ships at the link rate. Cut points are chosen
by dynamic programming over every position to minimise that slowest stage, ties going to
fewer boundary bytes, which balances modelled time and keeps the activations crossing each
cut small.

Each stage is a standalone ONNX model (``onnx.utils.Extractor``) whose inputs are the
tensors crossing into it and whose outputs are those crossing out of it; running the
stages in order on the same inputs gives the unsplit model's outputs
(``run_stages``; tests hold them equal).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnx.utils
import onnxruntime as ort

from flightsw.exceptions import CostModelError
from flightsw.models.cost import node_costs

__all__ = ["Plan", "Stage", "partition", "run_stages"]


@dataclass(frozen=True)
class Stage:
    """One part of a partitioned graph."""

    index: int
    model: bytes  # a standalone ONNX model
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    flops_per_item: float
    out_bytes_per_item: int  # what its boundary ships on per item (0 for the last)


@dataclass(frozen=True)
class Plan:
    """A graph cut into stages, and the figures the choice was made on."""

    stages: tuple[Stage, ...]
    cuts: tuple[int, ...]  # node positions: stage k ends before node cuts[k]
    flops_per_item: float
    slowest_stage_s_per_item: float

    @property
    def boundary_bytes_per_item(self) -> tuple[int, ...]:
        return tuple(s.out_bytes_per_item for s in self.stages[:-1])


def _crossing(model: onnx.ModelProto, weights: frozenset[str]) -> list[list[str]]:
    """For each position p in [0, n], the tensors produced before node p (or fed to the
    graph) and read at node p or later (or a graph output), in a stable order."""
    nodes = list(model.graph.node)
    n = len(nodes)
    init = {i.name for i in model.graph.initializer} | set(weights)
    born: dict[str, int] = {i.name: 0 for i in model.graph.input if i.name not in init}
    last: dict[str, int] = {}
    for k, node in enumerate(nodes):
        for name in node.input:
            if name and name not in init:
                last[name] = max(last.get(name, -1), k)
        for name in node.output:
            if name:
                born.setdefault(name, k + 1)
    for out in model.graph.output:
        last[out.name] = n  # the end reads every graph output
    order = list(born)
    return [[t for t in order if born[t] <= p and last.get(t, -1) >= p] for p in range(n + 1)]


def partition(
    source: bytes,
    k: int,
    *,
    ops_per_s: float = 1e12,
    link_bps: float = math.inf,
) -> Plan:
    """Cut the ONNX model ``source`` (file bytes) into ``k`` stages minimising the slowest
    stage's modelled seconds per item (compute at ``ops_per_s`` plus its boundary bytes at
    ``link_bps``); :class:`CostModelError` if the graph has fewer nodes than stages."""
    if k < 1:
        raise CostModelError(f"stages: must be at least 1, got {k}")
    costs = node_costs(source)
    model = costs.model
    n = len(costs.flops)
    if k > n:
        raise CostModelError(f"stages: {k} stages need at least {k} nodes, the graph has {n}")
    crossing = _crossing(model, costs.weights)

    def boundary(p: int) -> int:
        return sum(costs.tensor_bytes.get(t) or 0 for t in crossing[p])

    prefix = np.concatenate([[0.0], np.cumsum(costs.flops)])
    ship = [8.0 * boundary(p) / link_bps if link_bps < math.inf else 0.0 for p in range(n + 1)]
    bytes_at = [boundary(p) for p in range(n + 1)]
    # best[j][p]: (slowest stage s, boundary bytes) of the first p nodes in j stages
    inf = (math.inf, math.inf)
    best = [[inf] * (n + 1) for _ in range(k + 1)]
    back = [[0] * (n + 1) for _ in range(k + 1)]
    best[0][0] = (0.0, 0.0)
    for j in range(1, k + 1):
        for p in range(j, n - (k - j) + 1):
            out_s = ship[p] if p < n else 0.0
            for q in range(j - 1, p):
                prev = best[j - 1][q]
                if prev[0] == math.inf:
                    continue
                stage_s = (prefix[p] - prefix[q]) / ops_per_s + out_s
                cand = (max(prev[0], stage_s), prev[1] + (bytes_at[p] if p < n else 0))
                if cand < best[j][p]:
                    best[j][p] = cand
                    back[j][p] = q
    cuts: list[int] = []
    p = n
    for j in range(k, 0, -1):
        p = back[j][p]
        cuts.append(p)
    bounds = [*sorted(cuts)[1:], n]  # stage ends; the first start is 0
    starts = [0, *bounds[:-1]]
    graph_inputs = {i.name for i in model.graph.input}
    stages = []
    # the stages keep the graph's dynamic batch: extract from the unbound model, with the
    # value infos shape inference gives its intermediate tensors
    extractor = onnx.utils.Extractor(onnx.shape_inference.infer_shapes(model))
    for idx, (a, b) in enumerate(zip(starts, bounds, strict=True)):
        ins = [t for t in crossing[a] if a > 0 or t in graph_inputs]
        outs = crossing[b] if b < n else [o.name for o in model.graph.output]
        part = extractor.extract_model(ins, outs)
        stages.append(Stage(
            index=idx,
            model=part.SerializeToString(),
            inputs=tuple(ins),
            outputs=tuple(outs),
            flops_per_item=float(prefix[b] - prefix[a]),
            out_bytes_per_item=bytes_at[b] if b < n else 0,
        ))
    return Plan(
        stages=tuple(stages),
        cuts=tuple(bounds[:-1]),
        flops_per_item=float(prefix[n]),
        slowest_stage_s_per_item=float(best[k][n][0]),
    )


def run_stages(
    plan: Plan, feeds: Mapping[str, npt.NDArray[Any]]
) -> dict[str, npt.NDArray[Any]]:
    """Run the stages in order with onnxruntime (the reference for a distributed run):
    the unsplit model's outputs by name."""
    values: dict[str, npt.NDArray[Any]] = dict(feeds)
    for stage in plan.stages:
        sess = ort.InferenceSession(stage.model, providers=["CPUExecutionProvider"])
        got = sess.run(list(stage.outputs), {n: values[n] for n in stage.inputs})
        values.update(zip(stage.outputs, got, strict=True))
    return {name: values[name] for name in plan.stages[-1].outputs}
