"""Pipeline-parallel inference across a satellite cluster: how throughput scales with the
number of stages and the inter-satellite link rate (issue 18's scaling question).

    .venv/bin/python bench/cluster_jobs.py --json
    .venv/bin/python bench/cluster_jobs.py --model embedder --stages 1,2,3,4 --json

A steady-state pipeline model over the stages of a real cut. For an ONNX model
(``embedder``, ``detector``, ``digits``) the stages and the bytes crossing each cut come from
``flightsw.models.partition``; for ``dense-405b`` (a dense decoder of the size of Llama 3.1
405B: 126 layers, 16,384 hidden, 810 GFLOP and 32 KiB of bf16 activations per token
between layers, 810 GB of bf16 weights; Meta's model card figures) the 126 layers are
split as evenly as layers allow. Each stage runs on one node of ``--profile`` (its
effective ops/s and memory bandwidth, a roofline per micro-batch of ``--micro-batch``
items); a boundary ships its activations at the ISL rate; with ``--micro-batches`` in flight
the pipeline beats at its slowest stage or link and fills over (K-1) beats plus (K-1)
hops of processing and propagation latency. Reported per (stages, ISL rate):

* ``items_per_s``: steady throughput with the bubble;
* ``speedup_vs_one_node``: over one node running the whole model (as if it could hold it);
* ``comm_share``: share of the slowest stage's time spent shipping, if not overlapped;
* ``straggler_share``: throughput lost when members in eclipse drop to ``--eclipse-mode``
  (a Walker shell, where at any time some of the cluster is in shadow; a dawn-dusk
  formation like Suncatcher's never is: ``--formation`` reports 0);
* ``required_isl_gbps``: the rate at which shipping takes as long as the slowest stage's
  compute, above which the links no longer limit throughput;
* ``fits``: whether each stage's weights fit one node's memory.

With ``--train``: data-parallel training steps of a dense model of ``--params`` over K
members (``--stages``), each member computing ``--tokens`` per step, then a ring all-reduce
of its bf16 gradients over the ISLs; the same keys, per training token.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, parser

from flightsw.models.cost import analyse
from flightsw.models.partition import partition
from hardware_profiles import load_profile

ONNX = {
    "embedder": ROOT / "examples/models/embedder.onnx",
    "detector": ROOT / "examples/models/detector.onnx",
    "digits": ROOT / "examples/models/digits_classifier.onnx",
}
LIGHT_KM_S = 299_792.458


@dataclass(frozen=True)
class StageLoad:
    flops: float  # per item
    weight_bytes: float
    out_bytes: float  # per item, shipped to the next stage (0 for the last)


def dense_405b(k: int) -> list[StageLoad]:
    layers, flops, act, weights = 126, 810e9, 16_384 * 2, 810e9
    per = [layers // k + (1 if i < layers % k else 0) for i in range(k)]
    return [StageLoad(flops * n / layers, weights * n / layers, act if i < k - 1 else 0.0)
            for i, n in enumerate(per)]


def onnx_stages(path: Path, k: int) -> list[StageLoad]:
    data = path.read_bytes()
    plan = partition(data, k)
    out = []
    for st in plan.stages:
        w = analyse(st.model).weight_bytes
        out.append(StageLoad(st.flops_per_item, float(w), float(st.out_bytes_per_item)))
    return out


def pipeline(stages: list[StageLoad], *, ops: float, mem_bw: float, isl_bps: float,
             hop_s: float, batch: int, in_flight: int) -> dict[str, float]:
    comp = [max(s.flops * batch / ops, s.weight_bytes / mem_bw) for s in stages]
    comm = [8.0 * s.out_bytes * batch / isl_bps if s.out_bytes > 0 else 0.0 for s in stages]
    k = len(stages)
    beat = max(max(c, m) for c, m in zip(comp, comm, strict=True))
    # the pipeline fills over k - 1 beats and k - 1 hops; a hop's latency is in flight
    # beside the next micro-batch, so it lengthens the fill, not the beat
    total_s = (in_flight + k - 1) * beat + (k - 1) * hop_s
    slow = max(range(k), key=lambda i: max(comp[i], comm[i]))
    return {
        "items_per_s": in_flight * batch / total_s,
        "comm_share": comm[slow] / (comp[slow] + comm[slow]),
        "beat_s": beat,
        "max_comp_s": max(comp),
        "max_out_bytes": max(s.out_bytes for s in stages) * batch,
    }


def study(model: str, stage_counts: list[int], isl_gbps: list[float], profile: str,
          eclipse_mode: str, formation: bool, batch: int, in_flight: int) -> list[dict[str, Any]]:
    prof = load_profile(profile)
    full = prof.effective_ops_per_s(prof.fastest_mode)
    modes = {m.name: m for m in prof.compute.power_modes}
    if eclipse_mode not in modes:
        raise SystemExit(f"--eclipse-mode: {eclipse_mode!r} is not a mode of {profile}: "
                         f"{sorted(modes)}")
    shade = prof.effective_ops_per_s(modes[eclipse_mode])
    mem_bw = prof.compute.memory_bandwidth_bps
    memory = prof.compute.memory_bytes
    hop_s = prof.links.processing_latency_s + prof.links.isl_max_range_km / LIGHT_KM_S
    one = dense_405b(1) if model == "dense-405b" else onnx_stages(ONNX[model], 1)
    single = pipeline(one, ops=full, mem_bw=mem_bw, isl_bps=math.inf, hop_s=0.0,
                      batch=batch, in_flight=in_flight)["items_per_s"]
    rows = []
    for k in stage_counts:
        stages = dense_405b(k) if model == "dense-405b" else onnx_stages(ONNX[model], k)
        fits = all(s.weight_bytes <= memory for s in stages)
        for g in isl_gbps:
            kw = {"mem_bw": mem_bw, "isl_bps": g * 1e9, "hop_s": hop_s, "batch": batch,
                  "in_flight": in_flight}
            sun = pipeline(stages, ops=full, **kw)  # type: ignore[arg-type]
            dark = pipeline(stages, ops=shade, **kw)  # type: ignore[arg-type]
            straggle = 0.0 if formation or k == 1 else 1.0 - dark["items_per_s"] / sun[
                "items_per_s"]
            need = 8.0 * sun["max_out_bytes"] / sun["max_comp_s"] / 1e9 if k > 1 else 0.0
            rows.append({
                "model": model, "stages": k, "isl_gbps": g, "fits": fits,
                "items_per_s": round(sun["items_per_s"] * (1.0 - straggle), 3),
                "speedup_vs_one_node": round(sun["items_per_s"] * (1 - straggle) / single, 3),
                "comm_share": round(sun["comm_share"], 4),
                "straggler_share": round(straggle, 4),
                "required_isl_gbps": round(need, 3),
            })
    return rows


def training(members: list[int], isl_gbps: list[float], profile: str, params: float,
             tokens_per_member_step: float, formation: bool,
             eclipse_mode: str) -> list[dict[str, Any]]:
    """Data-parallel training steps: each member computes its share (6 FLOPs per parameter
    per token), then a ring all-reduce of bf16 gradients, 2 (K-1)/K of them through each
    link, plus 2 (K-1) hops of latency; the slowest member sets the step."""
    prof = load_profile(profile)
    full = prof.effective_ops_per_s(prof.fastest_mode)
    modes = {m.name: m for m in prof.compute.power_modes}
    shade = prof.effective_ops_per_s(modes[eclipse_mode])
    hop_s = prof.links.processing_latency_s + prof.links.isl_max_range_km / LIGHT_KM_S
    grad_bytes = 2.0 * params
    rows = []
    for k in members:
        for g in isl_gbps:
            comp = 6.0 * params * tokens_per_member_step / full
            slow = comp if formation or k == 1 else 6.0 * params * tokens_per_member_step / shade
            ring = 0.0 if k == 1 else 2 * (k - 1) / k * 8 * grad_bytes / (g * 1e9) + 2 * (
                k - 1) * hop_s
            step = slow + ring
            one = comp  # one member alone, same tokens per step
            rows.append({
                "mode": "train", "stages": k, "isl_gbps": g,
                "items_per_s": round(k * tokens_per_member_step / step, 1),
                "speedup_vs_one_node": round(k * one / step, 3),
                "comm_share": round(ring / step, 4),
                "straggler_share": round((slow - comp) / step, 4),
                "required_isl_gbps": round(
                    2 * (k - 1) / k * 8 * grad_bytes / comp / 1e9, 1) if k > 1 else 0.0,
            })
    return rows


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--model", default="dense-405b", choices=["dense-405b", *ONNX])
    p.add_argument("--stages", default="1,3,9,27,42,63,81")
    p.add_argument("--isl-gbps", default="10,100,1000,10000,40000")
    p.add_argument("--profile", default="suncatcher-tpu-v6e")
    p.add_argument("--eclipse-mode", default="cap100")
    p.add_argument("--formation", action="store_true",
                   help="members share sunlight (a dawn-dusk formation): no straggling")
    p.add_argument("--micro-batch", type=int, default=64, help="items per micro-batch")
    p.add_argument("--micro-batches", type=int, default=256, help="micro-batches in flight")
    p.add_argument("--train", action="store_true",
                   help="data-parallel training of a dense model (--params) instead")
    p.add_argument("--params", type=float, default=1.2e9, help="parameters (--train)")
    p.add_argument("--tokens", type=float, default=16_384,
                   help="tokens per member per step (--train)")
    a = p.parse_args()
    if a.train:
        rows = training([int(x) for x in a.stages.split(",")],
                        [float(x) for x in a.isl_gbps.split(",")], a.profile, a.params,
                        a.tokens, a.formation, a.eclipse_mode)
        emit({"rows": rows, "profile": a.profile, "params": a.params, "tokens": a.tokens,
              "formation": a.formation}, a.json)
        return
    rows = study(a.model, [int(x) for x in a.stages.split(",")],
                 [float(x) for x in a.isl_gbps.split(",")], a.profile, a.eclipse_mode,
                 a.formation, a.micro_batch, a.micro_batches)
    emit({"rows": rows, "profile": a.profile, "micro_batch": a.micro_batch,
          "micro_batches": a.micro_batches, "formation": a.formation}, a.json)


if __name__ == "__main__":
    main()
