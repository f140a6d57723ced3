"""A mosquitto started through docker/mosquitto/entrypoint.sh on the host (no docker)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mosquitto import find_mosquitto

from flightsw.broker import free_port

MOSQUITTO_DIR = Path(__file__).resolve().parents[2] / "docker" / "mosquitto"

StartBroker = Callable[..., int]


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Until the broker accepts TCP connections (at most ~10 s); fail if it exits."""
    for _ in range(200):
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        with contextlib.suppress(subprocess.TimeoutExpired):  # doubles as a 50 ms pause
            code = proc.wait(timeout=0.05)
            pytest.fail(f"broker exited with {code}: {log.read_text()[-2000:]}")
    pytest.fail(f"broker not listening on {port}: {log.read_text()[-2000:]}")


@pytest.fixture
def start_broker(tmp_path: Path) -> Iterator[StartBroker]:
    """``start_broker(users, conf_dir=..., **env) -> port``: the broker container's
    entrypoint run with the host's mosquitto on a free 127.0.0.1 port; stopped after the
    test. Skips (fails under ``CI``) without mosquitto and mosquitto_passwd."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(users: dict[str, str], conf_dir: Path = MOSQUITTO_DIR, **extra: str) -> int:
        if find_mosquitto() is None or shutil.which("mosquitto_passwd") is None:
            reason = "mosquitto and mosquitto_passwd are needed (apt-get install mosquitto)"
            if os.environ.get("CI"):
                pytest.fail(reason + " and CI is set", pytrace=False)
            pytest.skip(reason)
        port = free_port()
        run_dir = tmp_path / f"broker-{len(procs)}"
        env = {
            **os.environ,
            "PATH": f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/bin",
            "ODC_MQTT_USERS": ", ".join(f"{u}:{p}" for u, p in users.items()),
            "ODC_MQTT_PORT": str(port),
            "ODC_MQTT_BIND": "127.0.0.1",
            "ODC_MQTT_CONF_DIR": str(conf_dir),
            "ODC_MQTT_RUN_DIR": str(run_dir),
            # tmp_path is private to this user: do not drop to the mosquitto user
            "ODC_MQTT_RUN_AS": "root",
            **extra,
        }
        log_path = tmp_path / f"broker-{len(procs)}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                ["/bin/sh", str(MOSQUITTO_DIR / "entrypoint.sh")], env=env,
                stdout=log, stderr=subprocess.STDOUT,
            )
        procs.append(proc)
        _wait_listening(proc, port, log_path)
        return port

    try:
        yield start
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
