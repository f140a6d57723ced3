"""Data-parallel training across node processes: the cost of checkpoints, and a run that
loses a member mid-way and goes on from its last checkpoint (issue #18).

Starts a mosquitto and ``--nodes`` + 1 ``flightsw node`` processes (``--profile``, real
time; the last is a spare) and trains the 64-32-10 MLP on the 300 training digits that ship
with the package, ``--steps`` full-batch Adam steps, ``--runs`` times each way: without
checkpoints; with a checkpoint every ``--every`` steps; and with checkpoints while the
second member is SIGKILLed once the checkpoint file has reached ``--kill-after`` steps (the
run goes on from it on the others and the spare; the killed node is started again for the
next run). Per way: the median wall time of the client's ``run_training``, the median host
time per member, and for the killed runs the step each resumed from, the step the killed
epoch had reached, the steps computed in all, and the held-out accuracy against one node
training on the whole set in this process.
"""

from __future__ import annotations

import asyncio
import signal
import statistics
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests" / "helpers"))

import numpy as np
from _common import emit, parser
from mosquitto import MosquittoProcess
from procs import Procs

from flightsw.bus.mqtt import MqttBus
from flightsw.models.mlp_train import accuracy, train_local
from groundstation.train_checkpoint import read_checkpoint
from groundstation.training import CHECKPOINT_NAME, TrainingRun, run_training

SIZES = [64, 32, 10]
TRAIN = 300
LR, SEED = 0.01, 4


def digits() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    data = resources.files("groundstation.demo") / "data" / "digits_heldout.npz"
    with resources.as_file(data) as path, np.load(path) as d:
        return d["pixels"] / 16.0, d["labels"].astype(np.int64)


async def wait_up(procs: Procs, names: list[str], since: float) -> None:
    end = time.monotonic() + 60
    while not all((procs.logdir / n / "heartbeat").exists()
                  and (procs.logdir / n / "heartbeat").stat().st_mtime > since for n in names):
        if time.monotonic() > end:
            raise RuntimeError("nodes did not start")
        await asyncio.sleep(0.2)


async def run(work: Path, nodes: int, steps: int, every: int, kill_after: int, runs: int,
              profile: str) -> dict[str, Any]:
    names = [f"sat-{i}" for i in range(nodes)]
    spare = f"sat-{nodes}"
    procs = Procs(work / "procs", epoch="2026-03-20T00:00:00Z", scale=1.0)
    broker = MosquittoProcess(data_dir=work / "broker")
    await broker.start()
    t_start = time.time()
    for i, n in enumerate([*names, spare]):
        procs.node(broker.url, n, profile, arg_latitude=2.0 * i)
    x, y = digits()
    xt, yt = x[:TRAIN], y[:TRAIN]
    ref = train_local(SIZES, xt, yt, steps=steps, lr=LR, seed=SEED)
    acc_one = accuracy(ref, x[TRAIN:], y[TRAIN:])
    out: dict[str, Any] = {"profile": profile, "nodes": nodes, "steps": steps,
                           "every": every, "kill_after": kill_after, "runs": runs,
                           "accuracy_one_node": acc_one}
    ways: dict[str, list[dict[str, Any]]] = {"plain": [], "checkpoints": [], "killed": []}
    try:
        await wait_up(procs, [*names, spare], t_start)
        async with MqttBus(broker.url, client_id="bench-train", clean_start=True) as bus:
            for r in range(runs):
                for way, rows in ways.items():
                    job = f"bench-{way}-{r}"
                    ck = work / job
                    kw: dict[str, Any] = {} if way == "plain" else {
                        "checkpoint_dir": ck, "checkpoint_every": every}
                    t0 = time.perf_counter()
                    task = asyncio.create_task(run_training(
                        bus, job, names, SIZES, xt, yt, steps=steps, lr=LR, seed=SEED,
                        step_timeout_s=5.0, timeout_s=240, spares=[spare] if way == "killed"
                        else [], **kw))
                    if way == "killed":
                        f = ck / CHECKPOINT_NAME
                        while not f.exists() or read_checkpoint(f).step < kill_after:
                            await asyncio.sleep(0.005)
                        procs.kill(names[1], signal.SIGKILL)
                    res: TrainingRun = await task
                    wall = time.perf_counter() - t0
                    row: dict[str, Any] = {
                        "wall_s": wall, "status": res.status,
                        "member_host_s": statistics.median(d.host_wall_s for d in res.done),
                        "steps_computed": res.steps_computed,
                        "accuracy": accuracy(res.params, x[TRAIN:], y[TRAIN:]),
                        "max_abs_diff_vs_one_node": max(
                            float(np.abs(p - q).max()) for p, q in zip(res.params, ref,
                                                                       strict=True))}
                    if res.replans:
                        row["resumed_from"] = res.replans[-1].from_step
                        row["reached"] = res.replans[-1].reached_step
                        row["replans"] = [f"epoch {p.epoch} from {p.from_step}: {p.reason}"
                                          for p in res.replans]
                    rows.append(row)
                    if way == "killed":  # the killed node back for the next run
                        t_back = time.time()
                        procs.node(broker.url, names[1], profile, arg_latitude=2.0)
                        await wait_up(procs, [names[1]], t_back)
    finally:
        procs.close()
        await broker.stop()
    for way, rows in ways.items():
        out[way] = {
            "wall_s_median": statistics.median(r["wall_s"] for r in rows),
            "member_host_s_median": statistics.median(r["member_host_s"] for r in rows),
            "accuracy": [r["accuracy"] for r in rows],
            "max_abs_diff_vs_one_node": max(r["max_abs_diff_vs_one_node"] for r in rows),
            "steps_computed": [r["steps_computed"] for r in rows],
        }
        if way == "killed":
            out[way]["resumed_from"] = [r["resumed_from"] for r in rows]
            out[way]["reached"] = [r["reached"] for r in rows]
        out[way]["replans"] = [r.get("replans", []) for r in rows]
    return out


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--every", type=int, default=10)
    p.add_argument("--kill-after", type=int, default=20)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--profile", default="jetson-orin-nano-super")
    args = p.parse_args()
    if args.nodes < 2 or not 1 <= args.every <= args.kill_after < args.steps:
        p.error("need --nodes >= 2 and 1 <= --every <= --kill-after < --steps")
    with tempfile.TemporaryDirectory() as d:
        out = asyncio.run(run(Path(d), args.nodes, args.steps, args.every, args.kill_after,
                              args.runs, args.profile))
    emit(out, args.json)


if __name__ == "__main__":
    main()
