"""Telemetry ingest: bare aiomqtt subscriber vs the ground station's ingest-to-archive.

One run, one mosquitto, one message stream (real Telemetry messages) published by a
separate process, received first by a bare aiomqtt subscriber and then by the ground
station service (``GroundStation``), which archives every message. Also measures archive
write and read records per second.

    .venv/bin/python bench/telemetry_ingest.py --json
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import aiomqtt

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "helpers"))
from _common import emit, parser
from mosquitto import MosquittoProcess  # the tests' mosquitto child process

from flightsw.archive import ArchiveReader, ArchiveWriter
from flightsw.bus.mqtt import MqttBus
from flightsw.clock import WallClock
from flightsw.protocol import Telemetry, dump
from groundstation.service import GroundStation

PUBLISHER = textwrap.dedent(
    """
    import sys, time
    import paho.mqtt.client as mqtt
    port, n, payload_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    payload = open(payload_file, "rb").read()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-pub")
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    for i in range(n):
        c.publish(f"odc/sat/n{i % 8}/telemetry", payload, qos=1)
        if i % 1000 == 999:
            while len(c._out_messages) > 2000:
                time.sleep(0.001)
    while len(c._out_messages):
        time.sleep(0.01)
    c.loop_stop(); c.disconnect()
    """
)


def sample_payload() -> bytes:
    return dump(Telemetry(
        node="n0", seq=1, t=1.8e9, profile="jetson-agx-orin", lat_deg=10.0, lon_deg=20.0,
        alt_km=550.0, sunlit=1.0, beta_deg=12.0, solar_w=80.0, load_w=40.0, battery_wh=90.0,
        soc=0.9, temperature_c=21.0, power_mode="60W", safe_mode=False, paused=False,
        queue_depth=3, jobs_running=1, jobs_done=10, jobs_failed=0, energy_used_j=123.0,
        upsets=0,
    ))


def publish(port: int, n: int, payload_file: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", PUBLISHER, str(port), str(n),
                             str(payload_file)])


async def raw_rate(broker: MosquittoProcess, n: int, payload_file: Path) -> float:
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="bench-raw") as c:
        await c.subscribe("odc/sat/#", qos=1)
        proc = publish(broker.port, n, payload_file)
        got = 0
        t0 = 0.0
        async for _ in c.messages:
            got += 1
            if got == 1:
                t0 = time.perf_counter()
            if got == n:
                break
        dt = time.perf_counter() - t0
        proc.wait()
    return (n - 1) / dt


async def ingest_rate(broker: MosquittoProcess, n: int, payload_file: Path,
                      archive: Path) -> float:
    async with (
        MqttBus(broker.url, client_id="bench-ground", clean_start=True) as bus,
        GroundStation(bus, WallClock(), archive) as gs,
    ):
        proc = publish(broker.port, n, payload_file)
        while gs.ingested == 0:
            await asyncio.sleep(0.0005)
        t0 = time.perf_counter()
        first = gs.ingested
        while gs.ingested < n:
            await asyncio.sleep(0.001)
        dt = time.perf_counter() - t0
        proc.wait()
    return (n - first) / dt


def archive_rates(tmp: Path, payload: bytes, n: int) -> tuple[float, float]:
    d = tmp / "archive-io"
    t0 = time.perf_counter()
    with ArchiveWriter(d) as w:
        for i in range(n):
            w.append(1.8e9 + i * 0.01, f"odc/sat/n{i % 8}/telemetry", payload)
    write = n / (time.perf_counter() - t0)
    r = ArchiveReader(d)
    t0 = time.perf_counter()
    count = sum(1 for _ in r.records())
    read = count / (time.perf_counter() - t0)
    assert count == n
    return write, read


async def main() -> None:
    p = parser("telemetry ingest benchmark")
    p.add_argument("--messages", type=int, default=20_000)
    p.add_argument("--archive-records", type=int, default=500_000)
    args = p.parse_args()
    payload = sample_payload()
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        pf = tmp / "payload.bin"
        pf.write_bytes(payload)
        async with MosquittoProcess(data_dir=tmp / "mosq") as broker:
            raw = await raw_rate(broker, args.messages, pf)
            ingest = await ingest_rate(broker, args.messages, pf, tmp / "gs")
            raw2 = await raw_rate(broker, args.messages, pf)
        write, read = archive_rates(tmp, payload, args.archive_records)
    raw_mean = (raw + raw2) / 2
    emit({
        "messages": args.messages,
        "payload_bytes": len(payload),
        "raw_msgs_per_s": round(raw_mean),
        "raw_runs_msgs_per_s": [round(raw), round(raw2)],
        "ingest_msgs_per_s": round(ingest),
        "ratio": round(ingest / raw_mean, 3),
        "archive_write_records_per_s": round(write),
        "archive_read_records_per_s": round(read),
    }, args.json)


if __name__ == "__main__":
    asyncio.run(main())
