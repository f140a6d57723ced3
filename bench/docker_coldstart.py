"""Image sizes and node cold start in docker: container start to first telemetry on the broker.

    .venv/bin/python bench/docker_coldstart.py --json [--runs 5] [--image odc:latest]

Needs the images of ``docker/build-offline.sh``. A broker container (the project's
mosquitto image and docker/mosquitto configuration) runs on the host network at a free
127.0.0.1 port; this process subscribes to the node's topics as the ground station user.
Each run then starts a fresh node container (``docker run -d --network host``, a new
container every time, so nothing is warm but the host's page cache) and measures, from just
before ``docker run`` on the host's monotonic clock:

* ``run_s``: until ``docker run -d`` returns (container created and started);
* ``online_s``: until the node's ``status`` message says ``online`` (connected, subscribed);
* ``telemetry_s``: until its first ``telemetry`` message reaches the broker (cold start).

The node runs with its default 10 s telemetry period; its first telemetry goes out as the
telemetry task starts, so ``telemetry_s`` is start-up cost, not the period. Medians and
ranges are reported. Image sizes are ``docker image inspect``'s ``Size`` (uncompressed).
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from _common import emit, parser  # bench/ is on sys.path when run as a script

from flightsw.broker import free_port
from flightsw.bus import MqttBus
from flightsw.clock import WallClock
from flightsw.protocol import Status, parse

CLOCK = WallClock()
REPO = Path(__file__).resolve().parents[1]


def docker(*args: str, check: bool = True) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300,
                          check=False)
    if check and done.returncode != 0:
        raise SystemExit(f"docker {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def image_size_mb(image: str) -> float:
    return round(int(docker("image", "inspect", "-f", "{{.Size}}", image)) / 1e6, 1)


async def one_run(image: str, port: int, node: str, timeout_s: float) -> dict[str, float]:
    url = f"mqtt://ground:bench@127.0.0.1:{port}"
    marks: dict[str, float] = {}
    async with (
        MqttBus(url, f"bench-{uuid.uuid4().hex[:8]}", clean_start=True,
                persistent_session=False) as bus,
        bus.subscribe(f"odc/sat/{node}/status") as status,
        bus.subscribe(f"odc/sat/{node}/telemetry") as telemetry,
    ):
        await bus.flush()
        t0 = CLOCK.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            "docker", "run", "-d", "--rm", "--network", "host", "--name", f"bench-{node}",
            image, "flightsw", "node", "--id", node, "--profile", "jetson-agx-orin",
            "--altitude", "550", "--inclination", "53",
            "--broker", f"mqtt://{node}:bench@127.0.0.1:{port}",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        _, err = await proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"docker run: {err.decode().strip()}")
        marks["run_s"] = CLOCK.perf_counter() - t0

        async def online() -> None:
            while True:
                msg = await status.get()
                if not msg.retain and parse(Status, msg.payload).state == "online":
                    marks["online_s"] = CLOCK.perf_counter() - t0
                    return

        async def first_telemetry() -> None:
            await telemetry.get()
            marks["telemetry_s"] = CLOCK.perf_counter() - t0

        try:
            await asyncio.wait_for(asyncio.gather(online(), first_telemetry()), timeout_s)
        finally:
            docker("rm", "-f", f"bench-{node}", check=False)
    return marks


async def bench(image: str, broker_image: str, runs: int, timeout_s: float) -> dict[str, Any]:
    port = free_port()
    nodes = [f"bench-{i}" for i in range(runs)]
    node_accounts = " ".join(f"{n}:bench" for n in nodes)  # each in the node role
    broker = f"odc-bench-broker-{uuid.uuid4().hex[:8]}"
    docker("run", "-d", "--rm", "--network", "host", "--name", broker,
           "-v", f"{REPO / 'docker' / 'mosquitto'}:/etc/odc-mosquitto:ro",
           "-e", "ODC_MQTT_GROUND=ground:bench", "-e", f"ODC_MQTT_NODES={node_accounts}",
           "-e", f"ODC_MQTT_PORT={port}",
           "-e", "ODC_MQTT_BIND=127.0.0.1",
           "--entrypoint", "/bin/sh", broker_image, "/etc/odc-mosquitto/entrypoint.sh")
    try:
        for _ in range(100):  # until the broker's own health check passes
            probe = await asyncio.create_subprocess_exec(
                "docker", "exec", broker, "/bin/sh", "/etc/odc-mosquitto/healthcheck.sh",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )
            if await probe.wait() == 0:
                break
            await CLOCK.sleep(0.1)
        samples = [await one_run(image, port, n, timeout_s) for n in nodes]
    finally:
        docker("rm", "-f", broker, check=False)
    out: dict[str, Any] = {
        "image": image,
        "image_size_mb": image_size_mb(image),
        "broker_image": broker_image,
        "broker_image_size_mb": image_size_mb(broker_image),
        "runs": runs,
        "docker_server": docker("version", "-f", "{{.Server.Version}}"),
    }
    for key in ("run_s", "online_s", "telemetry_s"):
        values = [s[key] for s in samples]
        out[f"{key}_median"] = round(statistics.median(values), 3)
        out[f"{key}_min"] = round(min(values), 3)
        out[f"{key}_max"] = round(max(values), 3)
    return out


def main() -> int:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--image", default="odc:latest")
    p.add_argument("--broker-image", default="odc-mosquitto:latest")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per run")
    args = p.parse_args()
    emit(asyncio.run(bench(args.image, args.broker_image, args.runs, args.timeout)), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
