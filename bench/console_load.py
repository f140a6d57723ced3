"""Console load: 200 nodes at 1 Hz telemetry, the ground alone vs the ground + console.

A separate process publishes real ``Telemetry`` messages of ``--nodes`` nodes at 1 Hz each
(spread evenly over the second, as unsynchronised nodes would) to a real mosquitto. The
ground station runs as ``groundstation serve`` in its own process, alternately without and
with ``--http`` (A/B/A/B... in one sitting, ``--rounds`` of each). Measured per run, over a
window after a warm-up:

* the ground's ingest rate (messages archived per second, from its heartbeat file, which
  carries its own timestamps) and its CPU use (``/proc/PID/stat``);
* with the console, the update lag of the page's feed: for every node row pushed on the
  WebSocket, the time from the telemetry's publication (its ``t``; the clocks are the same
  host clock at scale 1) to its arrival at a WebSocket client in this process.

Output keys: ``nodes``, ``update_lag_p50_s``, ``update_lag_p95_s``, ``ingest_ratio`` (median
ingest rate with the console / without), ``ground_cpu_ratio`` (same, CPU seconds per
second), the per-run figures, and the rows pushed per second.

    nice -n 10 .venv/bin/python bench/console_load.py --json
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "helpers"))
from _common import emit, parser
from mosquitto import MosquittoProcess  # the tests' mosquitto child process

from flightsw.broker import free_port

ROOT = Path(__file__).resolve().parents[1]

PUBLISHER = textwrap.dedent(
    """
    import sys, time
    import paho.mqtt.client as mqtt
    from flightsw.protocol import Status, Telemetry, CircularOrbitInfo, dump
    port, n = int(sys.argv[1]), int(sys.argv[2])
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-console-pub")
    c.connect("127.0.0.1", port)
    c.loop_start()
    now = time.time()
    for i in range(n):
        orbit = CircularOrbitInfo(altitude_km=550.0, inclination_deg=53.0,
                                  raan_deg=(i * 37) % 360, arg_latitude_deg=(i * 11) % 360,
                                  epoch=now)
        st = Status(node=f"n{i:03d}", state="online", t=now, profile="jetson-orin-nano-super",
                    orbit=orbit)
        # not retained: a ground started later would count 200 of them in its window
        c.publish(f"odc/sat/n{i:03d}/status", dump(st), qos=1)
    seq = 0
    start = time.time()
    while True:
        for i in range(n):
            due = start + seq + i / n
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            t = time.time()
            tm = Telemetry(
                node=f"n{i:03d}", seq=seq, t=t, profile="jetson-orin-nano-super",
                lat_deg=(i * 7 + seq) % 140 - 70.0, lon_deg=(i * 13 + seq) % 360 - 180.0,
                alt_km=550.0, sunlit=1.0, beta_deg=10.0, solar_w=60.0, load_w=30.0,
                battery_wh=80.0, soc=0.2 + (i % 80) / 100, temperature_c=20.0 + i % 50,
                power_mode="15W", safe_mode=False, paused=False, queue_depth=i % 4,
                jobs_running=0, jobs_done=seq, jobs_failed=0, energy_used_j=float(seq),
                upsets=0)
            c.publish(f"odc/sat/n{i:03d}/telemetry", dump(tm), qos=0)
        seq += 1
    """
)


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def heartbeat(path: Path) -> tuple[float, int] | None:
    try:
        t, n = path.read_text().split()[:2]
        return float(t), int(n)
    except (OSError, ValueError):
        return None


async def wait_heartbeat(path: Path, after: float | None) -> tuple[float, int]:
    async with asyncio.timeout(120.0):
        while True:
            hb = heartbeat(path)
            if hb is not None and (after is None or hb[0] > after):
                return hb
            await asyncio.sleep(0.05)


async def one_run(broker: MosquittoProcess, work: Path, console: bool, warmup_s: float,
                  window_s: float) -> dict[str, Any]:
    archive = work / f"archive-{time.monotonic_ns()}"
    port = free_port()
    argv = [sys.executable, "-m", "groundstation.cli", "serve", "--broker", broker.url,
            "--archive", str(archive), "--log-level", "WARNING"]
    if console:
        argv += ["--http", f"127.0.0.1:{port}", "--operator-token", "bench"]
    log = (work / f"ground-{port}.log").open("wb")
    proc = await asyncio.create_subprocess_exec(*argv, cwd=ROOT, stdout=log, stderr=log)
    lags: list[float] = []
    rows = 0
    measuring = False
    try:
        hb_path = archive / "heartbeat"
        await wait_heartbeat(hb_path, None)
        ws_task = None
        if console:
            async def follow() -> None:
                async with aiohttp.ClientSession() as s:
                    for _ in range(200):
                        try:
                            ws = await s.ws_connect(f"http://127.0.0.1:{port}/ws")
                            break
                        except aiohttp.ClientError:
                            await asyncio.sleep(0.1)
                    try:
                        await read(ws)
                    finally:
                        await ws.close()

            async def read(ws: aiohttp.ClientWebSocketResponse) -> None:
                nonlocal rows
                async for msg in ws:
                    data = json.loads(msg.data)
                    got = time.time()
                    if measuring:
                        for n in data.get("nodes", []):
                            if "t" in n:
                                lags.append(got - n["t"])
                                rows += 1

            ws_task = asyncio.create_task(follow())
        await asyncio.sleep(warmup_s)
        t0, n0 = await wait_heartbeat(hb_path, None)
        c0 = cpu_s(proc.pid)
        measuring = True
        w0 = time.monotonic()
        await asyncio.sleep(window_s)
        t1, n1 = await wait_heartbeat(hb_path, t0 + window_s - 0.5)
        c1 = cpu_s(proc.pid)
        measuring = False
        elapsed = time.monotonic() - w0
        if ws_task is not None:
            ws_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ws_task
        out: dict[str, Any] = {
            "console": console,
            "ingest_per_s": round((n1 - n0) / (t1 - t0), 2),
            "ground_cpu_s_per_s": round((c1 - c0) / elapsed, 3),
        }
        if console:
            lags.sort()
            out["update_lag_p50_s"] = round(statistics.median(lags), 3) if lags else None
            out["update_lag_p95_s"] = round(lags[int(0.95 * (len(lags) - 1))], 3) if lags else None
            out["rows_pushed_per_s"] = round(rows / elapsed, 1)
        return out
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        log.close()


async def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, default=200)
    p.add_argument("--rounds", type=int, default=2, help="runs of each kind, alternating")
    p.add_argument("--warmup", type=float, default=5.0, help="host seconds")
    p.add_argument("--window", type=float, default=20.0, help="host seconds measured per run")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="odc-console-bench-") as tmp:
        work = Path(tmp)
        async with MosquittoProcess(data_dir=work / "mosquitto", persistence=False) as broker:
            pub = await asyncio.create_subprocess_exec(
                sys.executable, "-c", PUBLISHER, str(broker.port), str(args.nodes), cwd=ROOT)
            try:
                runs = []
                for _ in range(args.rounds):
                    for console in (False, True):
                        runs.append(await one_run(broker, work, console, args.warmup,
                                                  args.window))
            finally:
                pub.terminate()
                await pub.wait()
    off = [r for r in runs if not r["console"]]
    on = [r for r in runs if r["console"]]
    med = statistics.median
    lags = [r["update_lag_p95_s"] for r in on if r["update_lag_p95_s"] is not None]
    emit({
        "nodes": args.nodes,
        "telemetry_hz_per_node": 1.0,
        "offered_per_s": args.nodes,
        "update_lag_p95_s": max(lags) if lags else None,
        "update_lag_p50_s": med([r["update_lag_p50_s"] for r in on]),
        "ingest_ratio": round(med([r["ingest_per_s"] for r in on])
                              / med([r["ingest_per_s"] for r in off]), 4),
        "ground_cpu_ratio": round(med([r["ground_cpu_s_per_s"] for r in on])
                                  / med([r["ground_cpu_s_per_s"] for r in off]), 3),
        "runs": runs,
        "cpus": os.cpu_count(),
    }, args.json)


if __name__ == "__main__":
    asyncio.run(main())
