"""A mosquitto started through docker/mosquitto/entrypoint.sh on the host (no docker)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from mosquitto import find_mosquitto

from flightsw.broker import free_port

MOSQUITTO_DIR = Path(__file__).resolve().parents[2] / "docker" / "mosquitto"

StartBroker = Callable[..., int]


def pairs(accounts: Mapping[str, str]) -> str:
    """``{"u": "pw"}`` as the entrypoint's ``user:password`` list."""
    return ", ".join(f"{u}:{p}" for u, p in accounts.items())


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Until the broker accepts TCP connections (at most ~10 s); fail if it exits."""
    for _ in range(200):
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        with contextlib.suppress(subprocess.TimeoutExpired):  # doubles as a 50 ms pause
            code = proc.wait(timeout=0.05)
            pytest.fail(f"broker exited with {code}: {log.read_text()[-2000:]}")
    pytest.fail(f"broker not listening on {port}: {log.read_text()[-2000:]}")


class Brokers:
    """Brokers run by the entrypoint, each in its own directory under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, port: int | None = None, **env: str) -> int:
        """Run the entrypoint with ``env`` (``ODC_MQTT_*`` variables) on a free (or the
        given) 127.0.0.1 port; returns the port. Its run and data directories are
        ``root/broker-N``: a second ``start`` with ``ODC_MQTT_DATA_DIR`` of a first one
        reuses its database."""
        if find_mosquitto() is None or shutil.which("mosquitto_passwd") is None:
            reason = "mosquitto and mosquitto_passwd are needed (apt-get install mosquitto)"
            if os.environ.get("CI"):
                pytest.fail(reason + " and CI is set", pytrace=False)
            pytest.skip(reason)
        port = port or free_port()
        n = len(self.procs)
        full = {
            **os.environ,
            "PATH": f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/bin",
            "ODC_MQTT_PORT": str(port),
            "ODC_MQTT_BIND": "127.0.0.1",
            "ODC_MQTT_RUN_DIR": str(self.root / f"broker-{n}" / "run"),
            "ODC_MQTT_DATA_DIR": str(self.root / f"broker-{n}" / "data"),
            # the test's directories are private to this user: do not drop to mosquitto
            "ODC_MQTT_RUN_AS": "root",
            **env,
        }
        log_path = self.root / f"broker-{n}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                ["/bin/sh", str(MOSQUITTO_DIR / "entrypoint.sh")], env=full,
                stdout=log, stderr=subprocess.STDOUT,
            )
        self.procs.append(proc)
        _wait_listening(proc, port, log_path)
        return port

    def log(self, n: int) -> str:
        return (self.root / f"broker-{n}.log").read_text()

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=10)


@pytest.fixture
def brokers(tmp_path: Path) -> Iterator[Brokers]:
    """Entrypoint-run brokers for one test, stopped after it."""
    b = Brokers(tmp_path)
    try:
        yield b
    finally:
        b.stop_all()


@pytest.fixture
def start_broker(brokers: Brokers) -> StartBroker:
    """``start_broker(**env) -> port`` (see :meth:`Brokers.start`)."""
    return brokers.start


@pytest.fixture(scope="module")
def module_brokers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Brokers]:
    """Entrypoint-run brokers shared by one test module."""
    b = Brokers(tmp_path_factory.mktemp("brokers"))
    try:
        yield b
    finally:
        b.stop_all()
