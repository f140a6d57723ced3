"""A scenario's constellation in containers, two nodes per container (``flightsw nodes``).

``docker/gen_compose.py --scenario S --nodes-per-container 2`` for a 4-satellite scenario on
the host network (TLS, role ACLs, node keys, dev passwords, a free port): the broker, the
ground station and two node-host containers come up healthy; a job submitted from the host
to each of the four nodes (``groundstation submit --node``) comes back done on that node
with exactly what bare onnxruntime computes; ``down -v`` leaves nothing behind.

The image is ``$ODC_IMAGE`` (default ``odc:latest``), built by ``docker/build-offline.sh``
unless ``ODC_TEST_SKIP_BUILD`` is set. Skipped without a docker engine unless ``CI`` is set.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from docker_engine import require_docker, run

from flightsw.broker import free_port
from flightsw.clock import WallClock

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "examples" / "models" / "digits_classifier.onnx"
VENV_BIN = Path(sys.executable).parent
NODES = ("n1", "n2", "n3", "n4")
SERVICES = ("broker", "ground", "nodes-01", "nodes-02")

SCENARIO = """
name = "four"
start = "2026-03-20T00:00:00Z"
duration_hours = 1.0

[constellation]
satellites = [
  { name = "n1", altitude_km = 550.0, inclination_deg = 53.0 },
  { name = "n2", altitude_km = 550.0, inclination_deg = 53.0, arg_latitude_deg = 90.0 },
  { name = "n3", altitude_km = 650.0, inclination_deg = "sso", raan_deg = "dawn-dusk" },
  { name = "n4", altitude_km = 500.0, inclination_deg = 97.4, arg_latitude_deg = 45.0 },
]

[profiles]
default = "jetson-agx-orin"
nodes = { n3 = "suncatcher-tpu-v6e" }

[scheduler]
policy = "local"

[[jobs]]
name = "triage"
flops_per_item = 1e9
rate_per_node_per_hour = 1.0
deadline_s = 600.0
"""


@dataclass
class Deployment:
    project: str
    compose_file: Path
    port: int
    workdir: Path

    def compose(self, *args: str, timeout: float = 180) -> str:
        return run("docker-compose", "-p", self.project, "-f", str(self.compose_file), *args,
                   timeout=timeout).stdout

    def objects(self) -> list[str]:
        label = f"label=com.docker.compose.project={self.project}"
        return (run("docker", "ps", "-a", "-q", "--filter", label).stdout.split()
                + run("docker", "volume", "ls", "-q", "--filter", label).stdout.split())


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    require_docker("docker-compose")
    if not os.environ.get("ODC_TEST_SKIP_BUILD"):
        run("bash", str(REPO / "docker" / "build-offline.sh"), timeout=1200)
    workdir = tmp_path_factory.mktemp("compose-hosts")
    (workdir / "scenario").mkdir()
    (workdir / "scenario" / "four.toml").write_text(SCENARIO)
    port = free_port()
    compose_file = workdir / "compose.yaml"
    run(sys.executable, str(REPO / "docker" / "gen_compose.py"), "--scenario",
        str(workdir / "scenario" / "four.toml"), "--nodes-per-container", "2",
        "--network", "host", "--port", str(port), "--passwords", "dev", "--no-console",
        "--telemetry-period", "2", "--secrets", str(workdir / "secrets"),
        "-o", str(compose_file))
    dep = Deployment(f"odchosts{uuid.uuid4().hex[:8]}", compose_file, port, workdir)
    try:
        dep.compose("up", "-d", timeout=300)
        yield dep
    finally:
        try:
            dep.compose("down", "-v", "--remove-orphans", "--timeout", "5")
        finally:
            for oid in dep.objects():  # never leave anything behind
                run("docker", "rm", "-f", oid, check=False)
                run("docker", "volume", "rm", "-f", oid, check=False)


async def _wait_healthy(dep: Deployment, timeout_s: float = 180.0) -> None:
    clock = WallClock()
    deadline = clock.perf_counter() + timeout_s
    ids = {s: dep.compose("ps", "-q", s).strip() for s in SERVICES}
    status: dict[str, str] = {}
    while clock.perf_counter() < deadline:
        for svc, cid in ids.items():
            status[svc] = run("docker", "inspect", "-f",
                              "{{.State.Status}} {{.State.Health.Status}}", cid).stdout.strip()
        if all(s == "running healthy" for s in status.values()):
            return
        await clock.sleep(1.0)
    raise AssertionError(f"not healthy after {timeout_s:.0f} s: {status}\n"
                         f"{dep.compose('logs', '--tail', '30')[-4000:]}")


async def test_jobs_reach_every_node_of_the_node_host_containers(deployment: Deployment
                                                                 ) -> None:
    await _wait_healthy(deployment)
    x = np.asarray(np.random.default_rng(3).integers(0, 16, size=(3, 64)), dtype=np.float32)
    inp = deployment.workdir / "in.npy"
    np.save(inp, x)
    session = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    want = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"input": x}),
                    strict=True))
    env = {**os.environ,
           "ODC_CA_FILE": str(deployment.workdir / "secrets" / "clients" / "ca.crt")}
    url = f"mqtts://operator:operator-dev@127.0.0.1:{deployment.port}"
    for node in NODES:
        out = deployment.workdir / f"{node}.npz"
        proc = await asyncio.create_subprocess_exec(
            str(VENV_BIN / "groundstation"), "submit", str(MODEL), str(inp), "--node", node,
            "--wait", "-o", str(out), "--broker", url, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), 180)
        assert proc.returncode == 0, err.decode()
        assert err.decode().startswith(f"done on {node}"), err.decode()
        got = np.load(out)
        for name, array in want.items():
            assert np.array_equal(got[name], array), (node, name)


def test_down_leaves_nothing_behind(deployment: Deployment) -> None:
    deployment.compose("down", "-v", "--remove-orphans", "--timeout", "5")
    assert deployment.objects() == []
