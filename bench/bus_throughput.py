"""Messages per second through mosquitto: MqttBus vs bare aiomqtt, in one process.

    .venv/bin/python bench/bus_throughput.py --json [--broker amqtt]

A mosquitto child process (no persistence) is started on a free port (or, with
``--broker amqtt``, the embedded amqtt broker in this process). For each
implementation, one publishing client and one subscribing client live in this process;
the publisher sends ``--messages`` msgpack payloads of ~60 bytes as fast as ``await
publish()`` allows and the figure is messages received / (last receive - first publish).
``bare`` uses ``aiomqtt.Client.publish`` and ``async for message in client.messages``
directly (this benchmark is the one place outside flightsw/bus/mqtt.py that imports
aiomqtt, as the baseline); ``bus`` uses :class:`flightsw.bus.MqttBus` publish and a
subscription. Runs alternate which implementation goes first; medians are reported, with
``ratio`` = bus / bare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import msgpack

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "helpers"))
from mosquitto import MosquittoProcess  # the tests' mosquitto child process

from flightsw.broker import EmbeddedBroker
from flightsw.bus import MqttBus
from flightsw.clock import WallClock

CLOCK = WallClock()
TOPIC = "sat/sat-0001/telemetry"
IDLE_TIMEOUT_S = 5.0  # a run ends early if nothing arrives for this long (QoS 0 loss)


def payload() -> bytes:
    """A telemetry-like msgpack record of 60 bytes."""
    record = {"t": 1_767_225_600.0, "node": "sat-001", "soc": 0.8312, "temp_k": 293.15,
              "mode": 2}
    out: bytes = msgpack.packb(record)
    return out


async def run_bare(url_port: int, n: int, qos: int, body: bytes) -> tuple[int, float]:
    async with aiomqtt.Client("127.0.0.1", url_port, identifier="bench-bare-sub") as sub, \
            aiomqtt.Client("127.0.0.1", url_port, identifier="bench-bare-pub") as pub:
        await sub.subscribe(TOPIC, qos)
        received = 0
        done = asyncio.Event()
        last = 0.0

        async def consume() -> None:
            nonlocal received, last
            async for _ in sub.messages:
                received += 1
                last = CLOCK.perf_counter()
                if received == n:
                    done.set()
                    return

        consumer = asyncio.create_task(consume())
        t0 = CLOCK.perf_counter()
        for _ in range(n):
            await pub.publish(TOPIC, body, qos)
        await _wait_done(done, lambda: received)
        consumer.cancel()
        return received, last - t0


async def run_bus(url: str, n: int, qos: int, body: bytes) -> tuple[int, float]:
    async with MqttBus(url, "bench-bus-sub", clean_start=True) as sub_bus, \
            MqttBus(url, "bench-bus-pub", clean_start=True) as pub, \
            sub_bus.subscribe(TOPIC, qos=qos) as sub:
        received = 0
        done = asyncio.Event()
        last = 0.0

        async def consume() -> None:
            nonlocal received, last
            async for _ in sub:
                received += 1
                last = CLOCK.perf_counter()
                if received == n:
                    done.set()
                    return

        consumer = asyncio.create_task(consume())
        t0 = CLOCK.perf_counter()
        for _ in range(n):
            await pub.publish(TOPIC, body, qos=qos)
        await _wait_done(done, lambda: received)
        consumer.cancel()
        return received, last - t0


async def _wait_done(done: asyncio.Event, count: Callable[[], int]) -> None:
    """Wait for all messages, or until none arrived for IDLE_TIMEOUT_S (losses)."""
    seen = -1
    while not done.is_set() and count() != seen:
        seen = count()
        try:
            async with asyncio.timeout(IDLE_TIMEOUT_S):
                await done.wait()
        except TimeoutError:
            continue


async def measure(n: int, reps: int, qos_levels: list[int], broker_kind: str) -> dict[str, Any]:
    body = payload()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        broker: MosquittoProcess | EmbeddedBroker
        if broker_kind == "mosquitto":
            broker = MosquittoProcess(data_dir=Path(tmp), persistence=False)
        else:
            broker = EmbeddedBroker(port=None)
        async with broker:
            impls: dict[str, Callable[[], Awaitable[tuple[int, float]]]]
            for qos in qos_levels:
                impls = {
                    "bare": lambda q=qos: run_bare(broker.port, n, q, body),  # type: ignore[misc]
                    "bus": lambda q=qos: run_bus(broker.url, n, q, body),  # type: ignore[misc]
                }
                await impls["bare"]()  # warm-up (imports, broker caches)
                rates: dict[str, list[float]] = {"bare": [], "bus": []}
                lost: dict[str, int] = {"bare": 0, "bus": 0}
                for rep in range(reps):
                    order = ["bare", "bus"] if rep % 2 == 0 else ["bus", "bare"]
                    for name in order:
                        received, seconds = await impls[name]()
                        rates[name].append(received / seconds)
                        lost[name] += n - received
                bare = statistics.median(rates["bare"])
                bus = statistics.median(rates["bus"])
                rows.append({
                    "qos": qos,
                    "messages": n,
                    "payload_bytes": len(body),
                    "bare_msgs_per_s": round(bare),
                    "bus_msgs_per_s": round(bus),
                    "ratio": round(bus / bare, 3),
                    "bare_runs": [round(r) for r in rates["bare"]],
                    "bus_runs": [round(r) for r in rates["bus"]],
                    "lost": lost,
                })
    return {"benchmark": "bus_throughput", "broker": broker_kind, "reps": reps, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000, help="per run (default 10000)")
    parser.add_argument("--reps", type=int, default=3, help="runs per implementation")
    parser.add_argument("--qos", type=int, nargs="+", default=[0, 1], choices=[0, 1])
    parser.add_argument("--broker", choices=["mosquitto", "amqtt"], default="mosquitto",
                        help="mosquitto child process (default) or amqtt in this process")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args.messages, args.reps, args.qos, args.broker))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print("| qos | messages | payload | bare aiomqtt msg/s | MqttBus msg/s | ratio |")
    print("|---|---|---|---|---|---|")
    for r in result["rows"]:
        print(f"| {r['qos']} | {r['messages']:,} | {r['payload_bytes']} B | "
              f"{r['bare_msgs_per_s']:,} | {r['bus_msgs_per_s']:,} | {r['ratio']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
