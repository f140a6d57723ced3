"""Emulation at scale: N nodes in node hosts, one ground station, J real inference jobs.

mosquitto, ``groundstation serve`` and ``--hosts`` ``flightsw nodes`` processes (the Walker
planes of a generated scenario dealt out between them with ``--only``) on 127.0.0.1, all on
one clock at time scale 1, telemetry and node state every 10 s. Once every node is online
the hosts idle for ``--settle`` seconds (their CPU is measured over that window), then a
ground client submits ``--jobs`` one-item jobs of the digits classifier (``--in-flight`` at
a time, the ground picks the node) and waits for each; every output is compared with the
same input run by bare onnxruntime. At the end the ground's archive is read back: the lag of
each telemetry message (reception mission time minus the time the node stamped it) and how
many of the nodes' messages arrived.

    .venv/bin/python bench/emulation_scale.py --nodes 100 --jobs 100 --json
    .venv/bin/python bench/emulation_scale.py --json          # 1,000 nodes, 1,000 jobs

Keys: ``rss_mb_per_node`` is the resident memory of the node hosts over the nodes (the
interpreter and libraries included); ``cpu_per_node`` the CPU of the hosts over the settle
window over the nodes (a fraction of one core); ``startup_s`` from starting the hosts to
the last node online; ``jobs_lost`` jobs neither done nor failed at the end.
"""

from __future__ import annotations

import asyncio
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests" / "helpers"))
from _common import emit, parser
from mosquitto import MosquittoProcess  # the tests' mosquitto child process

from flightsw.archive import ArchiveReader
from flightsw.bus.mqtt import MqttBus
from flightsw.clock import WallClock
from flightsw.protocol import decode
from flightsw.protocol.messages import tensors_to_arrays
from flightsw.timeutil import parse_iso
from groundstation.client import GroundClient
from groundstation.exceptions import GroundError, JobFailed

MODEL = ROOT / "examples" / "models" / "digits_classifier.onnx"
DATA = ROOT / "groundstation" / "demo" / "data" / "digits_heldout.npz"
EPOCH = "2026-03-20T00:00:00Z"
PERIOD_S = 10.0


def planes_for(n: int) -> int:
    """The largest divisor of ``n`` not above its square root (Walker planes)."""
    return max(d for d in range(1, math.isqrt(n) + 1) if n % d == 0)


def scenario_text(n: int) -> str:
    return f"""name = "emulation-scale"
start = "{EPOCH}"
duration_hours = 1.0
step_s = {PERIOD_S}

[constellation]
walker = {{ total = {n}, planes = {planes_for(n)}, phasing = 0, altitude_km = 550.0, \
inclination_deg = 53.0 }}

[profiles]
default = "jetson-agx-orin"

[scheduler]
policy = "local"

[[ground_stations]]
name = "weilheim"
lat_deg = 47.88
lon_deg = 11.08
alt_m = 600.0

[[jobs]]
name = "digits"
model = "{MODEL}"
origin = "ground"
rate_per_node_per_hour = 1.0
deadline_s = 600.0
"""


def host_patterns(n: int, hosts: int) -> list[str]:
    """``--only`` of each host: the planes dealt out in turn."""
    planes = planes_for(n)
    width = max(2, len(str(planes - 1)))
    return [",".join(f"P{p:0{width}d}S*" for p in range(k, planes, hosts))
            for k in range(hosts)]


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def spawn(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(argv, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT,
                            env=env)


async def wait_online(hosts: list[subprocess.Popen[bytes]], logs: list[Path],
                      timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    pending = set(range(len(hosts)))
    while pending:
        for k in list(pending):
            if "nodes online" in logs[k].read_text(errors="replace"):
                pending.discard(k)
            elif hosts[k].poll() is not None:
                tail = logs[k].read_text(errors="replace")[-2000:]
                raise RuntimeError(f"node host {k} exited ({hosts[k].returncode}): {tail}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"node hosts {sorted(pending)} not online in {timeout_s} s")
        await asyncio.sleep(0.2)


async def run_jobs(url: str, n_jobs: int, in_flight: int, sequential: int, x: np.ndarray,
                   expected: list[dict[str, np.ndarray]]) -> dict[str, Any]:
    done = failed = mismatched = duplicates = 0
    nodes: set[str] = set()
    reasons: dict[str, int] = {}
    roundtrip: list[float] = []
    seq_roundtrip: list[float] = []
    gate = asyncio.Semaphore(in_flight)
    async with (
        MqttBus(url, client_id="bench-client", clean_start=True) as bus,
        GroundClient(bus, WallClock(), client_id="bench-client", timeout_s=120) as gc,
    ):
        model = await gc.upload_model(MODEL)

        async def one(j: int) -> None:
            nonlocal done, failed, mismatched, duplicates
            row = x[j % len(x)][None, :]
            async with gate:
                t0 = time.perf_counter()
                try:
                    rec = await gc.run(model, {"input": row}, timeout_s=600,
                                       job_id=f"bench-{j:05d}-{uuid.uuid4().hex[:8]}")
                except JobFailed as exc:
                    failed += 1
                    reasons[str(exc)[:80]] = reasons.get(str(exc)[:80], 0) + 1
                    return
                except (GroundError, TimeoutError) as exc:  # no end seen: lost
                    reasons[type(exc).__name__] = reasons.get(type(exc).__name__, 0) + 1
                    return
                roundtrip.append(time.perf_counter() - t0)
            if rec.state != "done" or rec.outputs is None:
                failed += 1
                return
            done += 1
            duplicates += rec.duplicates
            if rec.node:
                nodes.add(rec.node)
            got = tensors_to_arrays(rec.outputs, "outputs")
            want = expected[j % len(x)]
            if not all(np.array_equal(got[k], want[k]) for k in want):
                mismatched += 1

        sequential = min(sequential, n_jobs)
        for j in range(sequential):  # one at a time: the round trip of an idle system
            await one(j)
        seq_roundtrip = list(roundtrip)
        t0 = time.perf_counter()
        await asyncio.gather(*(one(j) for j in range(sequential, n_jobs)))
        wall = time.perf_counter() - t0
    return {
        "jobs": n_jobs, "jobs_done": done, "jobs_failed": failed,
        "jobs_lost": n_jobs - done - failed, "duplicate_results": duplicates,
        "outputs_equal": done == n_jobs and mismatched == 0, "outputs_mismatched": mismatched,
        "failure_reasons": reasons, "nodes_used": len(nodes), "jobs_wall_s": round(wall, 1),
        "jobs_per_s": round((n_jobs - sequential) / wall, 1) if wall > 0 else None,
        "roundtrip_seq_p50_ms": round(1000 * statistics.median(seq_roundtrip), 1)
        if seq_roundtrip else None,
        "roundtrip_p50_ms": round(1000 * statistics.median(roundtrip), 1) if roundtrip else None,
        "roundtrip_p95_ms": round(1000 * pct(roundtrip, 0.95), 1) if roundtrip else None,
    }


def bare_outputs(x: np.ndarray) -> list[dict[str, np.ndarray]]:
    sess = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return [dict(zip(names, sess.run(None, {"input": x[i][None, :]}), strict=True))
            for i in range(len(x))]


def ingest(archive: Path, t_from: float, t_jobs: float) -> dict[str, Any]:
    lags: list[float] = []
    idle: list[float] = []
    per_node: dict[str, int] = {}
    states = 0
    with ArchiveReader(archive / "telemetry") as reader:
        for rec in reader.records(topics=["odc/sat/+/telemetry", "odc/sat/+/state"]):
            if rec.leaf == "state":
                states += 1
                continue
            sent = float(decode(rec.payload)["t"])
            if sent < t_from:
                continue
            lags.append(rec.t - sent)
            if sent < t_jobs:
                idle.append(rec.t - sent)
            per_node[rec.node or ""] = per_node.get(rec.node or "", 0) + 1
    return {
        "telemetry_ingested": len(lags), "states_ingested": states,
        "nodes_heard": len(per_node),
        "ingest_lag_p50_s": round(pct(lags, 0.5), 3),
        "ingest_lag_p95_s": round(pct(lags, 0.95), 3),
        "ingest_lag_max_s": round(max(lags), 3) if lags else None,
        "ingest_lag_idle_p95_s": round(pct(idle, 0.95), 3),
    }


async def run(args: Any, tmp: Path) -> dict[str, Any]:
    n, hosts_n = args.nodes, min(args.hosts, planes_for(args.nodes))
    fd_limit = raise_fd_limit()
    scenario = tmp / "scenario.toml"
    scenario.write_text(scenario_text(n))
    data = np.load(DATA)
    x = np.asarray(data["pixels"], dtype=np.float32)
    expected = bare_outputs(x)
    anchor = round(time.time(), 3)
    clock = ["--epoch", EPOCH, "--clock-anchor", f"{anchor:.3f}", "--time-scale", "1"]
    mission = WallClock(epoch=parse_iso(EPOCH), anchor=anchor)  # the processes' clock
    procs: list[subprocess.Popen[bytes]] = []
    result: dict[str, Any] = {"nodes": n, "hosts": hosts_n, "fd_limit": fd_limit}
    async with MosquittoProcess(data_dir=tmp / "mosq", persistence=False,
                                max_queued_messages=1000) as broker:
        try:
            ground = spawn([sys.executable, "-m", "groundstation.cli", "serve", "--broker",
                            broker.url, "--archive", str(tmp / "gs"), "--log-level", "WARNING",
                            *clock], tmp / "ground.log")
            procs.append(ground)
            logs = [tmp / f"host{k}.log" for k in range(hosts_n)]
            t_start = time.perf_counter()
            hosts = [spawn([sys.executable, "-m", "flightsw.cli", "nodes", "--scenario",
                            str(scenario), "--only", pat, "--broker", broker.url,
                            "--state-dir", str(tmp / "nodes"), "--telemetry-period",
                            str(PERIOD_S), "--state-period", str(PERIOD_S), *clock], log)
                     for pat, log in zip(host_patterns(n, hosts_n), logs, strict=True)]
            procs += hosts
            await wait_online(hosts, logs, timeout_s=max(120.0, 0.5 * n))
            result["startup_s"] = round(time.perf_counter() - t_start, 1)
            t_settled = mission.now()
            c0 = [cpu_s(p.pid) for p in hosts]
            g0 = cpu_s(ground.pid)
            await asyncio.sleep(args.settle)
            cpu = sum(cpu_s(p.pid) for p in hosts) - sum(c0)
            rss = sum(rss_mb(p.pid) for p in hosts)
            result |= {
                "rss_mb_total": round(rss, 1),
                "rss_mb_per_node": round(rss / n, 2),
                "cpu_per_node": round(cpu / args.settle / n, 5),
                "cpu_hosts_cores": round(cpu / args.settle, 3),
                "cpu_ground_cores": round((cpu_s(ground.pid) - g0) / args.settle, 3),
                "settle_s": args.settle,
            }
            t_jobs = mission.now()
            c1, g1 = [cpu_s(p.pid) for p in hosts], cpu_s(ground.pid)
            w1 = time.perf_counter()
            result |= await run_jobs(broker.url, args.jobs, args.in_flight,
                                     args.sequential_jobs, x, expected)
            w = time.perf_counter() - w1
            result["cpu_hosts_jobs_cores"] = round(
                (sum(cpu_s(p.pid) for p in hosts) - sum(c1)) / w, 3)
            result["cpu_ground_jobs_cores"] = round((cpu_s(ground.pid) - g1) / w, 3)
            result["rss_mb_per_node_after_jobs"] = round(
                sum(rss_mb(p.pid) for p in hosts) / n, 2)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(10)
    result |= ingest(tmp / "gs", t_settled, t_jobs)
    return result


def main() -> None:
    p = parser("emulation at scale: node hosts, a ground station, real inference jobs")
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--jobs", type=int, default=None, help="default: as many as nodes")
    p.add_argument("--hosts", type=int, default=2, help="node-host processes")
    p.add_argument("--settle", type=float, default=60.0, help="idle seconds measured")
    p.add_argument("--in-flight", type=int, default=50, help="jobs in flight at once")
    p.add_argument("--sequential-jobs", type=int, default=20,
                   help="of the jobs, this many first run one at a time")
    args = p.parse_args()
    if args.nodes < 1:
        raise SystemExit("--nodes: must be >= 1")
    args.jobs = args.nodes if args.jobs is None else args.jobs
    with tempfile.TemporaryDirectory() as td:
        result = asyncio.run(run(args, Path(td)))
    emit(result, args.json)


if __name__ == "__main__":
    main()
