"""`groundstation models upload | submit | jobs | result | tail` as a user runs them."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mosquitto import MosquittoProcess
from node_harness import DIGITS, digits_inputs, running_node
from procs import ROOT

from flightsw.bus.mqtt import MqttBus
from flightsw.clock import WallClock
from flightsw.timeutil import parse_iso
from groundstation.service import GroundStation

pytestmark = pytest.mark.mqtt


async def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "groundstation.cli", *args, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return subprocess.CompletedProcess(list(args), proc.returncode, out.decode(), err.decode())


@pytest.mark.timeout(300)  # many CLI processes, each importing onnx: slow on a loaded host
async def test_client_commands_against_a_running_service(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    clock = WallClock(epoch=parse_iso("2026-03-20T00:00:00Z"), scale=10)
    url = mosquitto.url
    x = digits_inputs(8)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "bad.npy", x.astype(np.float64))
    async with (
        MqttBus(url, client_id="gs") as gbus,
        GroundStation(gbus, clock, tmp_path / "archive"),
        MqttBus(url, client_id="node") as nbus,
        running_node(nbus, clock, tmp_path / "n1", node_id="n1", telemetry_period_s=2.0),
    ):
        up = await cli("models", "upload", str(DIGITS), "--broker", url)
        assert up.returncode == 0, up.stderr
        assert up.stdout.strip() == hashlib.sha256(DIGITS.read_bytes()).hexdigest()

        sub = await cli("submit", str(DIGITS), str(tmp_path / "x.npy"), "--wait",
                        "-o", str(tmp_path / "o.npz"), "--broker", url, "--node", "n1")
        assert sub.returncode == 0, sub.stderr
        job_id = sub.stdout.strip()
        assert set(np.load(tmp_path / "o.npz").files) == {"label", "probabilities"}

        # inputs that do not fit the model are refused at submission, by the node's own check
        bad = await cli("submit", str(DIGITS), str(tmp_path / "bad.npy"), "--wait",
                        "--broker", url)
        assert bad.returncode == 2
        assert "input 'input': dtype float64, expected float32" in bad.stderr

        jobs = await cli("jobs", "--json", "--broker", url)
        assert jobs.returncode == 0, jobs.stderr
        table = {j["job_id"]: j for j in json.loads(jobs.stdout)}
        assert table[job_id]["state"] == "done" and table[job_id]["node"] == "n1"
        assert len(table) == 1
        text = await cli("jobs", "--broker", url)
        assert job_id in text.stdout and "done" in text.stdout

        res = await cli("result", job_id, "-o", str(tmp_path / "r.npz"), "--broker", url)
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["outputs"]["label"]["shape"] == [8]
        saved, again = np.load(tmp_path / "o.npz"), np.load(tmp_path / "r.npz")
        assert all(np.array_equal(saved[k], again[k]) for k in saved.files)

        missing = await cli("result", "no-such-job", "--broker", url)
        assert missing.returncode == 2 and "no-such-job" in missing.stderr

        tail = await cli("tail", "--count", "3", "--plain", "--broker", url)
        assert tail.returncode == 0, tail.stderr
        rows = tail.stdout.strip().splitlines()
        assert rows[0].split()[:3] == ["node", "profile", "mission"]  # a header, piped too
        assert len(rows) == 4 and all(r.startswith("n1 ") for r in rows[1:])


async def test_no_service_gives_a_clear_error(mosquitto: MosquittoProcess) -> None:
    res = await cli("jobs", "--broker", mosquitto.url, "--timeout", "2")
    assert res.returncode == 2
    assert "groundstation serve" in res.stderr


async def test_bad_broker_url_is_named() -> None:
    res = await cli("jobs", "--broker", "http://nowhere")
    assert res.returncode == 2
    assert "http://nowhere" in res.stderr
