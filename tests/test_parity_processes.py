"""Simulator and emulator agree on one job, through real processes (issue #11).

For one job with the same model, profile, orbit, deadline and initial conditions:

* ``flightsw sim SCENARIO.toml --out DIR`` (a subprocess) runs one satellite with one
  explicit onboard arrival and no ground station; the job's result is read back from the
  telemetry archive it writes;
* a mosquitto broker, ``flightsw node`` and ``groundstation serve`` (subprocesses) run the
  same job submitted with ``groundstation submit --wait``; its job record is read back
  from the service with the ground client.

The modelled latency and energy must agree to 1e-9 relative, with the same power mode.
Cases from the issue: the Jetson's ``dual_execution`` mitigation (the simulator once
ignored it: 0.48x), the H100 on the tiny digits classifier (durations once taken as
differences of absolute times: 0.0 s, 0.0 J) and the H100 on the embedder.
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pytest
from procs import ROOT, Procs

from flightsw.archive import ArchiveReader
from flightsw.bus.mqtt import MqttBus
from flightsw.clock import WallClock
from flightsw.protocol import JobResult, parse
from groundstation.client import GroundClient
from groundstation.protocol import JobRecord

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

MODELS = ROOT / "examples" / "models"
EPOCH = "2026-03-20T00:00:00Z"
ALTITUDE_KM = 550.0
INCLINATION_DEG = 53.0
DEADLINE_S = 600.0
TIME_SCALE = 50.0  # mission seconds per wall second for the emulation
NODE = "sat-1"
REL = 1e-9


class Broker(Protocol):
    """What the test needs of the ``mosquitto`` fixture."""

    url: str


def digits(n: int) -> npt.NDArray[np.float32]:
    """The README's input: scikit-learn digits, float32 [n, 64]."""
    from sklearn.datasets import load_digits

    return np.asarray(load_digits().data[:n], dtype=np.float32)


def tokens(n: int) -> npt.NDArray[np.float32]:
    """The embedder's input: float32 [n, 256, 128] (examples/models/README.md)."""
    return np.random.default_rng(11).standard_normal((n, 256, 128)).astype(np.float32)


CASES = [
    pytest.param("jetson-agx-orin", "digits_classifier.onnx", 32, digits, id="orin-digits"),
    pytest.param("starcloud-h100", "digits_classifier.onnx", 32, digits, id="h100-digits"),
    pytest.param("starcloud-h100", "embedder.onnx", 8, tokens, id="h100-embedder"),
]


def scenario(path: Path, profile: str, model: Path, items: int) -> Path:
    """One satellite, no ground station (a result counts when finished), one onboard job
    of ``items`` items at 60 s."""
    path.write_text(
        f"""
name = "parity"
seed = 1
start = "{EPOCH}"
duration_hours = 0.05
step_s = 10.0
telemetry_period_s = 60.0

[constellation]
[[constellation.satellites]]
name = "{NODE}"
altitude_km = {ALTITUDE_KM}
inclination_deg = {INCLINATION_DEG}

[profiles]
default = "{profile}"

[scheduler]
policy = "local"

[[jobs]]
name = "one"
model = {json.dumps(str(model))}
items = {items}
origin = "onboard"
times_s = [60.0]
nodes = ["{NODE}"]
deadline_s = {DEADLINE_S}
"""
    )
    return path


async def run_sim(tmp_path: Path, profile: str, model: Path, items: int) -> JobResult:
    scen = scenario(tmp_path / "parity.toml", profile, model, items)
    out = tmp_path / "sim-out"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flightsw.cli", "sim", str(scen), "--out", str(out), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["jobs_submitted"] == 1 and metrics["jobs_completed"] == 1, metrics
    with ArchiveReader(out / "archive" / "telemetry") as reader:
        results = [parse(JobResult, r.payload)
                   for r in reader.records(topics=["odc/sat/+/result"])]
    assert len(results) == 1, results
    assert results[0].status == "done" and results[0].node == NODE
    return results[0]


async def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "groundstation.cli", *args, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return subprocess.CompletedProcess(list(args), proc.returncode, out.decode(), err.decode())


async def wait_until(pred: Any, what: str, procs: Procs, timeout: float = 20) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not await pred():
        if loop.time() > end:
            logs = "\n".join(f"--- {n}\n{procs.log(n)[-2000:]}" for n in procs.procs)
            pytest.fail(f"{what} within {timeout} s\n{logs}")
        await asyncio.sleep(0.2)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    p = Procs(tmp_path / "procs", epoch=EPOCH, scale=TIME_SCALE)
    yield p
    p.close()


def start_emulation(url: str, procs: Procs, tmp_path: Path, profile: str) -> None:
    procs.ground(url, tmp_path / "gs-archive")
    procs.node(url, NODE, profile, altitude=ALTITUDE_KM, inclination=INCLINATION_DEG)


async def run_emulated(
    url: str, procs: Procs, tmp_path: Path, model: Path, x: npt.NDArray[np.float32]
) -> JobRecord:
    """Submit the job to the running ground and node with ``groundstation submit --wait``;
    its job record (read with the ground client). Requests are resent until the service
    answers, so there is no wait for the service to start."""

    async def node_up() -> bool:
        return (procs.logdir / NODE / "heartbeat").exists()

    await wait_until(node_up, f"{NODE} wrote its heartbeat", procs, timeout=40)

    np.save(tmp_path / "in.npy", x)
    sub = await cli(
        "submit", str(model), str(tmp_path / "in.npy"), "--node", NODE,
        "--deadline", str(DEADLINE_S), "--job-id", "parity-1", "--wait",
        "--wait-timeout", "40", "-o", str(tmp_path / "out.npz"),
        "--broker", url, "--timeout", "40",
    )
    assert sub.returncode == 0, sub.stderr + "\n" + procs.log(NODE)[-3000:]
    assert sub.stdout.strip() == "parity-1"
    assert np.load(tmp_path / "out.npz").files
    async with (
        MqttBus(url, client_id="parity-client", clean_start=True) as bus,
        GroundClient(bus, WallClock(), client_id="parity-client", timeout_s=20) as gc,
    ):
        record = await gc.result("parity-1")
    assert record.state == "done" and record.node == NODE, record.reason
    assert record.items == len(x)
    return record


@pytest.mark.parametrize(("profile", "model_name", "items", "inputs"), CASES)
async def test_sim_and_emulated_node_agree_on_one_job(
    mosquitto: Broker, procs: Procs, tmp_path: Path,
    profile: str, model_name: str, items: int,
    inputs: Callable[[int], npt.NDArray[np.float32]],
) -> None:
    model = MODELS / model_name
    start_emulation(mosquitto.url, procs, tmp_path, profile)
    sim, node = await asyncio.gather(
        run_sim(tmp_path, profile, model, items),
        run_emulated(mosquitto.url, procs, tmp_path, model, inputs(items)),
    )
    print(
        f"{profile} {model_name} x{items}: "
        f"sim {sim.modelled_latency_s!r} s {sim.modelled_energy_j!r} J {sim.power_mode}; "
        f"node {node.modelled_latency_s!r} s {node.modelled_energy_j!r} J {node.power_mode}"
    )
    assert sim.items == items
    assert sim.power_mode is not None and sim.power_mode == node.power_mode
    assert node.modelled_latency_s is not None and node.modelled_energy_j is not None
    assert sim.modelled_latency_s > 0 and node.modelled_latency_s > 0
    assert sim.modelled_energy_j > 0 and node.modelled_energy_j > 0
    assert math.isclose(sim.modelled_latency_s, node.modelled_latency_s, rel_tol=REL,
                        abs_tol=0.0)
    assert math.isclose(sim.modelled_energy_j, node.modelled_energy_j, rel_tol=REL,
                        abs_tol=0.0)
