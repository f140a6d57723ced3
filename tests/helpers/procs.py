"""Start real ``flightsw node`` and ``groundstation serve`` processes for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class Procs:
    """Owns child processes; ``close()`` terminates (then kills) every one still running."""

    def __init__(self, logdir: Path, *, epoch: str, scale: float) -> None:
        self.logdir = logdir
        logdir.mkdir(parents=True, exist_ok=True)
        self.epoch = epoch
        self.scale = scale
        self.anchor = time.time()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def clock_args(self) -> list[str]:
        return [
            "--epoch",
            self.epoch,
            "--time-scale",
            str(self.scale),
            "--clock-anchor",
            f"{self.anchor:.6f}",
        ]

    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = (self.logdir / f"{name}.log").open("wb")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        self.procs[name] = p
        return p

    def node(
        self,
        url: str,
        node_id: str,
        profile: str,
        *,
        altitude: float = 550.0,
        inclination: float = 53.0,
        arg_latitude: float = 0.0,
        extra: list[str] | None = None,
    ) -> subprocess.Popen[bytes]:
        argv = [
            sys.executable,
            "-m",
            "flightsw.cli",
            "node",
            "--id",
            node_id,
            "--profile",
            profile,
            "--altitude",
            str(altitude),
            "--inclination",
            str(inclination),
            "--arg-latitude",
            str(arg_latitude),
            "--broker",
            url,
            "--data-dir",
            str(self.logdir / node_id),
            "--log-level",
            "INFO",
            *self.clock_args(),
            *(extra or []),
        ]
        return self.spawn(node_id, argv)

    def ground(
        self, url: str, archive: Path, extra: list[str] | None = None, name: str = "ground"
    ) -> subprocess.Popen[bytes]:
        argv = [
            sys.executable,
            "-m",
            "groundstation.cli",
            "serve",
            "--broker",
            url,
            "--archive",
            str(archive),
            *self.clock_args(),
            *(extra or []),
        ]
        return self.spawn(name, argv)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        p = self.procs[name]
        p.send_signal(sig)
        p.wait(10)

    def log(self, name: str) -> str:
        return (self.logdir / f"{name}.log").read_text(errors="replace")

    def close(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
