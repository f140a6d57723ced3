"""A pipeline job in emulation: the whole model on one node against K stages on K nodes.

Starts a mosquitto, ``groundstation serve`` and ``--nodes`` ``flightsw node`` processes
(``--profile``, real time, no ground stations, the nodes 2 degrees apart on one orbit) and runs
``--runs`` jobs of ``--items`` items of the embedder (examples/models/embedder.onnx) each
way: pinned whole to one node, then as a ``--stages``-stage pipeline job (the ground picks
the group). Per way: the median wall time from submission to the recorded result, the
mission time the ground records (submitted to finished), the bytes each hop ships, the
largest difference of any output from bare onnxruntime on the whole batch (a node runs a
job's items in chunks, and onnxruntime's embedder is not bit-identical across batch sizes)
and whether the pipeline's outputs equal the whole model's on a node bit for bit.

``--micro-batches 1,2,4,8`` runs the pipeline job once per M given, streamed in M
micro-batches (``submit --micro-batches M``: M child jobs on one chain; M = 1 is the plain
pipeline job), side by side in one run: per M, items per mission second and per wall
second, and the speedup over the whole model on one node (its mission and wall medians over
theirs), with the power modes the stage runs chose (a node with work queued behind a job
runs it at its fastest mode, one alone at its least-energy mode that meets the job's
deadline, so the modes are part of what streaming changes). With the real profiles the embedder's
modelled run is a few milliseconds, and what a job takes is the host's own inference and
the emulator's messages; ``--seconds-per-item S`` makes the nodes slow (one item of the
whole model takes S modelled seconds, every power mode as fast), so that the modelled
stage runs outweigh those real costs, as a large model's would.

With more nodes than stages a third way, ``replan``, runs the pipeline job and puts its last
member in safe mode (a telecommand) as soon as stage 0 is handed on: the member before it
gives the job back and the ground places the last stage on another node (issue #18). Its
figures add the re-plans on record, the uplinks, and the stage runs per job (the stages
count if no finished stage ran again).
"""

from __future__ import annotations

import asyncio
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests" / "helpers"))

import numpy as np
import onnxruntime as ort
from _common import emit, parser
from mosquitto import MosquittoProcess
from procs import Procs

from flightsw.bus.mqtt import MqttBus
from flightsw.clock import WallClock
from flightsw.models.cost import analyse
from flightsw.models.partition import partition
from flightsw.protocol import Command, JobSubmit, decode, dump, parse, topics
from groundstation.client import GroundClient
from hardware_profiles import profile_path

MODEL = ROOT / "examples" / "models" / "embedder.onnx"
PROFILE = "jetson-orin-nano-super"  # the default of --profile


async def replan_run(gc: GroundClient, bus: MqttBus, parts: list[str], x: Any, job_id: str,
                     seen: dict[str, Any], counter: int) -> tuple[Any, int]:
    """One pipeline job whose last member enters safe mode once stage 0 is handed on; the
    record, and the stage runs its events show."""
    await gc.submit(parts[0], {"tokens": x}, stages=parts, job_id=job_id)
    while not any(e.get("job_id") == job_id and e.get("state") == "handed_over"
                  for e in seen["events"]):
        await asyncio.sleep(0.005)
    first = next(j for n, j in seen["jobs"] if j.job_id == job_id)
    last = first.pipeline.members[-1]
    await bus.publish(topics.command(last), dump(Command(cmd_id=f"safe-{job_id}",
                                                         name="enter_safe", counter=counter)))
    rec = await gc.wait(job_id, timeout_s=600)
    await bus.publish(topics.command(last), dump(Command(cmd_id=f"back-{job_id}",
                                                         name="leave_safe",
                                                         counter=counter + 1)))
    await asyncio.sleep(1.0)  # back online for the next run
    runs = sum(1 for e in seen["events"]
               if e.get("job_id") == job_id and e.get("state") == "running")
    return rec, runs


async def watch(sub: Any, into: list[Any], jobs: bool = False) -> None:
    async for msg in sub:
        if jobs:
            into.append((msg.topic, parse(JobSubmit, msg.payload)))
        else:
            obj = decode(msg.payload)
            if isinstance(obj, dict) and obj.get("kind") == "job_event":
                into.append(obj)


def slowed(profile: str, seconds_per_item: float, work: Path) -> str:
    """``profile`` made slow (a path to the new profile file), or ``profile`` itself at 0:
    every peak rate such that one item of the whole model takes ``seconds_per_item``
    modelled seconds (efficiency 1, dual execution counted), and every power mode as fast
    as the fastest, so a stage takes as long whichever mode the node picks."""
    if seconds_per_item <= 0:
        return profile
    text = profile_path(profile).read_text()
    flops = analyse(MODEL).flops_per_item * (2 if '"dual_execution"' in text else 1)
    rate = f"{flops / seconds_per_item:.6e}"
    subs = ((r"^(peak_ops\.\w+\s*=\s*)\S+", rate), (r"^(efficiency\s*=\s*)\S+", "1.0"),
            (r"^(throughput\s*=\s*)\S+", "1.0"))
    for pattern, value in subs:
        text, n = re.subn(pattern, lambda m, v=value: f"{m.group(1)}{v}", text,
                          flags=re.MULTILINE)
        if n == 0:
            raise SystemExit(f"--seconds-per-item: no {pattern} in profile {profile}")
    name = f"{profile}-slow"
    text = re.sub(r'^name = "[^"]+"', f'name = "{name}"', text, count=1, flags=re.MULTILINE)
    path = work / f"{name}.toml"
    path.write_text(text)
    return str(path)


def way_name(m: int) -> str:
    return "pipeline" if m == 1 else f"pipeline_mb{m}"


def modes_of(events: list[dict[str, Any]], job_id: str) -> dict[str, int]:
    """Stage runs of a job (and of its micro-batches) per power mode, from the nodes'
    ``running`` events (detail ``mode NAME``)."""
    got: dict[str, int] = {}
    for e in events:
        jid = str(e.get("job_id"))
        if e.get("state") == "running" and (jid == job_id or jid.startswith(f"{job_id}.mb")):
            mode = str(e.get("detail", "")).removeprefix("mode ")
            got[mode] = got.get(mode, 0) + 1
    return got


async def run(work: Path, nodes: int, stages: int, items: int, runs: int,
              profile: str, micro: list[int], seconds_per_item: float = 0.0
              ) -> dict[str, Any]:
    names = [f"sat-{i}" for i in range(nodes)]
    procs = Procs(work / "procs", epoch="2026-03-20T00:00:00Z", scale=1.0)
    broker = MosquittoProcess(data_dir=work / "broker")
    await broker.start()
    procs.ground(broker.url, work / "archive")
    for i, n in enumerate(names):
        # 2 degrees apart (242 km): within the crosslinks of the Orin profiles (580, 2,000 km)
        procs.node(broker.url, n, slowed(profile, seconds_per_item, work), arg_latitude=2.0 * i)
    x = np.random.default_rng(5).standard_normal((items, 256, 128)).astype(np.float32)
    sess = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    want = sess.run(None, {"tokens": x})
    plan = partition(MODEL.read_bytes(), stages)
    outputs: dict[str, dict[str, Any]] = {}
    out: dict[str, Any] = {"model": MODEL.name, "profile": profile, "items": items,
                           "seconds_per_item": seconds_per_item,
                           "stages": stages, "runs": runs,
                           "hop_bytes": [b * items for b in plan.boundary_bytes_per_item]}
    try:
        while not all((procs.logdir / n / "heartbeat").exists() for n in names):
            await asyncio.sleep(0.2)
        seen: dict[str, list[Any]] = {"events": [], "jobs": []}
        async with (
            MqttBus(broker.url, client_id="pipe-bench", clean_start=True) as bus,
            GroundClient(bus, WallClock(), client_id="pipe-bench", timeout_s=60) as gc,
            bus.subscribe("odc/sat/+/event", qos=1) as ev_sub,
            bus.subscribe("odc/sat/+/job", qos=1) as job_sub,
            asyncio.TaskGroup() as tg,
        ):
            watchers = [tg.create_task(watch(ev_sub, seen["events"])),
                        tg.create_task(watch(job_sub, seen["jobs"], jobs=True))]
            whole = await gc.upload_model(MODEL)
            parts = await gc.upload_stages(MODEL, stages)
            ways: dict[str, dict[str, Any]] = {"whole": {"model": whole, "node": names[0]}}
            for m in micro:
                ways[way_name(m)] = {"model": parts[0], "stages": parts, "micro_batches": m}
            if nodes > stages:
                ways["replan"] = {"model": parts[0], "stages": parts}
            for way, args in ways.items():
                walls, missions, diffs, replans, uplinks, ran = [], [], [], [], [], []
                modes: dict[str, int] = {}
                for r in range(runs + 1):  # the first run of each way warms the models up
                    t0 = time.perf_counter()
                    if way == "replan":
                        rec, n_ran = await replan_run(gc, bus, parts, x, f"{way}-{r}", seen,
                                                      10 * r + 1)
                        wall = time.perf_counter() - t0 - 1.0  # less the pause after it
                        ran.append(n_ran)
                    else:
                        rec = await gc.run(args["model"], {"tokens": x}, timeout_s=600,
                                           job_id=f"{way}-{r}", node=args.get("node"),
                                           stages=args.get("stages"),
                                           micro_batches=args.get("micro_batches", 1))
                        wall = time.perf_counter() - t0
                    replans.append(rec.replans)
                    uplinks.append(rec.attempts)
                    got = GroundClient.outputs(rec)
                    outputs.setdefault(way, got)
                    if r == 0:
                        continue
                    await asyncio.sleep(0.2)  # the last stage's events are in by now
                    for mode, n in modes_of(seen["events"], f"{way}-{r}").items():
                        modes[mode] = modes.get(mode, 0) + n
                    diffs.append(max(float(np.abs(got[o.name] - w).max())
                                     for o, w in zip(sess.get_outputs(), want, strict=True)))
                    walls.append(wall)
                    assert rec.finished_at is not None
                    missions.append(rec.finished_at - rec.submitted_at)
                out[way] = {"wall_s_median": round(statistics.median(walls), 3),
                            "mission_s_median": round(statistics.median(missions), 3),
                            "max_abs_diff_vs_bare": max(diffs),
                            "replans": replans[1:], "uplinks": uplinks[1:],
                            "stage_runs_by_mode": modes}
                if ran:
                    out[way]["stage_runs"] = ran[1:]
            # throughput side by side: items per second, and the speedup over one node
            one = out["whole"]
            out["micro_batches"] = [
                {"m": m, "items_per_s": round(items / out[w]["mission_s_median"], 2),
                 "items_per_s_wall": round(items / out[w]["wall_s_median"], 2),
                 "speedup_vs_one_node": round(one["mission_s_median"]
                                              / out[w]["mission_s_median"], 3),
                 "speedup_vs_one_node_wall": round(one["wall_s_median"]
                                                   / out[w]["wall_s_median"], 3),
                 "stage_runs_by_mode": out[w]["stage_runs_by_mode"]}
                for m in micro for w in [way_name(m)]]
            out["whole"]["items_per_s"] = round(items / one["mission_s_median"], 2)
            a = outputs["whole"]
            for way in ways:
                if way != "whole":
                    b = outputs[way]
                    out[f"{way}_equals_whole"] = sorted(a) == sorted(b) and all(
                        np.array_equal(a[k], b[k]) for k in a)
            for task in watchers:
                task.cancel()
    finally:
        procs.close()
        await broker.stop()
    return out


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--stages", type=int, default=3)
    p.add_argument("--items", type=int, default=16)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--profile", default=PROFILE, help="hardware profile of every node")
    p.add_argument("--micro-batches", default="1", metavar="M[,M...]",
                   help="run the pipeline job in M micro-batches, for each M given "
                        "(default 1: the whole batch through each stage in turn)")
    p.add_argument("--seconds-per-item", type=float, default=0.0, metavar="S",
                   help="make the nodes slow: one item of the whole model takes S modelled "
                        "seconds at any power mode (default 0: the profile as it is)")
    args = p.parse_args()
    if not args.seconds_per_item >= 0:
        p.error(f"--seconds-per-item: 0 or more, got {args.seconds_per_item}")
    try:
        micro = sorted({int(m) for m in args.micro_batches.split(",")})
    except ValueError:
        p.error(f"--micro-batches: comma-separated integers, got {args.micro_batches!r}")
    if micro[0] < 1 or micro[-1] > args.items:
        p.error(f"--micro-batches: each M from 1 to --items ({args.items}), got {micro}")
    with tempfile.TemporaryDirectory(prefix="odc-pipeline-") as tmp:
        result = asyncio.run(run(Path(tmp), args.nodes, args.stages, args.items, args.runs,
                                 args.profile, micro, args.seconds_per_item))
    emit(result, args.json)


if __name__ == "__main__":
    main()
