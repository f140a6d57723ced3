"""Exactly-once under faults, with trust on: sealed nodes, warrants, and kills.

    .venv/bin/python bench/fault_run.py --json                 # 200 jobs, 3 nodes
    .venv/bin/python bench/fault_run.py --jobs 50 --json

Starts a persistent mosquitto, makes keys (``groundstation keys``), runs ``groundstation
serve --node-keys`` and three ``flightsw node`` processes with their keys and the ground's
public warrant key, submits ``--jobs`` digits jobs through a ground client, and while they
run kills (SIGKILL) one node (restarted), the ground service (restarted) and the broker
(restarted from its persisted state). Prints how many jobs ended done, failed or never
(lost), how many results were recorded twice, whether every output equals bare onnxruntime,
and how many node messages the ground refused.
"""

from __future__ import annotations

import asyncio
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
from node_harness import DIGITS, digits_inputs
from procs import Procs

from flightsw.bus.mqtt import MqttBus
from flightsw.clock import WallClock
from groundstation.cli.keys import make_keys
from groundstation.client import GroundClient
from groundstation.exceptions import GroundError

NODES = ("sat-a", "sat-b", "sat-c")


async def run(n_jobs: int, work: Path) -> dict[str, Any]:
    keys = work / "keys"
    make_keys(keys, list(NODES))
    procs = Procs(work / "procs", epoch="2026-03-20T00:00:00Z", scale=1.0)
    broker = MosquittoProcess(data_dir=work / "broker", config_extra="autosave_interval 1\n")
    await broker.start()
    url = broker.url

    def ground(name: str) -> None:
        procs.ground(url, work / "archive", name=name,
                     extra=["--node-keys", str(keys), "--lease", "30"])

    def node(n: str, name: str | None = None) -> None:
        procs.node(url, n, "jetson-orin-nano-super", arg_latitude=120.0 * NODES.index(n),
                   extra=["--node-key-file", str(keys / f"{n}.key"),
                          "--ground-public-key", str(keys / "ground.warrant.pub")])
        if name is not None:
            procs.procs[name] = procs.procs.pop(n)

    t0 = time.perf_counter()
    ground("ground")
    for n in NODES:
        node(n)
    sess = ort.InferenceSession(str(DIGITS), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(7)
    data = digits_inputs(64)
    inputs = {f"job-{i:04d}": data[rng.integers(0, 64, size=int(rng.integers(1, 9)))]
              for i in range(n_jobs)}
    faults: list[str] = []
    try:
        async with (
            MqttBus(url, client_id="fault-client", clean_start=True) as bus,
            GroundClient(bus, WallClock(), client_id="fault-client", timeout_s=60) as gc,
        ):
            model = await gc.upload_model(DIGITS)
            ids = list(inputs)
            third = len(ids) // 3
            for k, job_id in enumerate(ids):
                await gc.submit(model, {"input": inputs[job_id]}, job_id=job_id)
                if k == third:
                    procs.kill("sat-b")
                    faults.append("node sat-b SIGKILL")
                    node("sat-b", name="sat-b-2")
                elif k == 2 * third:
                    procs.kill("ground")
                    faults.append("ground SIGKILL")
                    ground("ground-2")
            await broker.kill()
            faults.append("broker SIGKILL")
            await asyncio.sleep(1.0)
            await broker.restart()
            recs = {}
            for job_id in ids:
                try:
                    recs[job_id] = await gc.wait(job_id, timeout_s=300)
                except GroundError:
                    continue
            equal = 0
            for job_id, rec in recs.items():
                if rec.state != "done":
                    continue
                got = GroundClient.outputs(await gc.result(job_id))
                want = sess.run(None, {"input": inputs[job_id]})
                equal += all(np.array_equal(got[o.name], w)
                             for o, w in zip(sess.get_outputs(), want, strict=True))
            table = await gc.jobs()
    finally:
        log = procs.log("ground-2") if "ground-2" in procs.procs else ""
        procs.close()
        await broker.stop()
    states = [r.state for r in recs.values()]
    return {
        "jobs": n_jobs,
        "done": states.count("done"),
        "failed": states.count("failed"),
        "lost": n_jobs - len([r for r in recs.values() if r.state in ("done", "failed")]),
        "duplicate_results": sum(r.duplicates for r in table),
        "rows": len(table),
        "outputs_equal": equal,
        "faults": faults,
        "refused_node_messages_logged": log.count("refused odc/sat/"),
        "wall_s": round(time.perf_counter() - t0, 1),
    }


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--jobs", type=int, default=200)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="odc-faults-") as tmp:
        result = asyncio.run(run(args.jobs, Path(tmp)))
    emit(result, args.json)


if __name__ == "__main__":
    main()
