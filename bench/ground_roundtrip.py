"""Ground round trip: jobs per second and submit-to-result latency, 4 nodes on loopback.

mosquitto, ``groundstation serve`` and four ``flightsw node`` processes (no modelled link
delay, real inference of the digits classifier, one item per job); the client submits jobs
one at a time (latency) and then with many in flight (throughput).

    .venv/bin/python bench/ground_roundtrip.py --json
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests" / "helpers"))
from _common import emit, parser
from mosquitto import MosquittoProcess  # the tests' mosquitto child process

from flightsw.bus.mqtt import MqttBus
from flightsw.clock import WallClock
from groundstation.client import GroundClient

MODEL = ROOT / "examples" / "models" / "digits_classifier.onnx"


def spawn(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT)


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


async def run(args: object, tmp: Path) -> dict[str, object]:
    n_lat: int = args.latency_jobs  # type: ignore[attr-defined]
    n_tp: int = args.throughput_jobs  # type: ignore[attr-defined]
    procs: list[subprocess.Popen[bytes]] = []
    anchor = f"{time.time():.3f}"
    clock_args = ["--epoch", "2026-03-20T00:00:00Z", "--clock-anchor", anchor,
                  "--time-scale", "1"]
    async with MosquittoProcess(data_dir=tmp / "mosq") as broker:
        try:
            procs.append(spawn([sys.executable, "-m", "groundstation.cli", "serve",
                                "--broker", broker.url, "--archive", str(tmp / "gs"),
                                "--log-level", "WARNING", *clock_args], tmp / "gs.log"))
            for i in range(4):
                procs.append(spawn([
                    sys.executable, "-m", "flightsw.cli", "node", "--id", f"n{i}",
                    "--profile", "jetson-agx-orin", "--altitude", "550", "--inclination",
                    "53", "--arg-latitude", str(90 * i), "--broker", broker.url,
                    "--data-dir", str(tmp / f"n{i}"), "--log-level", "WARNING", *clock_args,
                ], tmp / f"n{i}.log"))
            x = np.asarray(
                np.random.default_rng(0).integers(0, 16, size=(1, 64)), dtype=np.float32
            )
            async with (
                MqttBus(broker.url, client_id="bench-client", clean_start=True) as bus,
                GroundClient(bus, WallClock(), client_id="bench-client", timeout_s=30) as gc,
            ):
                model = await gc.upload_model(MODEL)
                # warm up: every node gets the model and a session
                warm = [await gc.submit(model, {"input": x}, node=f"n{i}") for i in range(4)]
                for j in warm:
                    await gc.wait(j, timeout_s=60)
                lat: list[float] = []
                for _ in range(n_lat):
                    t0 = time.perf_counter()
                    await gc.run(model, {"input": x}, timeout_s=30)
                    lat.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                await asyncio.gather(*(gc.run(model, {"input": x}, timeout_s=120)
                                       for _ in range(n_tp)))
                tp = n_tp / (time.perf_counter() - t0)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(10)
    return {
        "nodes": 4,
        "latency_jobs": n_lat,
        "latency_p50_ms": round(1000 * statistics.median(lat), 2),
        "latency_p99_ms": round(1000 * pct(lat, 0.99), 2),
        "latency_mean_ms": round(1000 * statistics.fmean(lat), 2),
        "throughput_jobs": n_tp,
        "jobs_per_s": round(tp, 1),
    }


def main() -> None:
    p = parser("ground round-trip benchmark")
    p.add_argument("--latency-jobs", type=int, default=200)
    p.add_argument("--throughput-jobs", type=int, default=500)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as td:
        result = asyncio.run(run(args, Path(td)))
    emit(result, args.json)


if __name__ == "__main__":
    main()
