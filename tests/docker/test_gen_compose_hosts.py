"""docker/gen_compose.py --scenario: a scenario's nodes, K per container, run by
``flightsw nodes``; and one generated container's command run for real on the host."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from mosquitto import MosquittoProcess

from flightsw.bus.mqtt import MqttBus
from flightsw.protocol import decode
from groundstation.cli.keys import make_keys

DOCKER = Path(__file__).resolve().parents[2] / "docker"
NAMES = ["a1", "a2", "a3", "b1", "b2", "b3", "c1"]

SCENARIO = """
name = "c7"
start = "2026-03-20T00:00:00Z"
duration_hours = 1.0

[constellation]
satellites = [
  { name = "a1", altitude_km = 550.0, inclination_deg = 53.0 },
  { name = "a2", altitude_km = 550.0, inclination_deg = 53.0, arg_latitude_deg = 51.0 },
  { name = "a3", altitude_km = 550.0, inclination_deg = 53.0, arg_latitude_deg = 102.0 },
  { name = "b1", altitude_km = 650.0, inclination_deg = "sso", raan_deg = "dawn-dusk" },
  { name = "b2", altitude_km = 650.0, inclination_deg = "sso", arg_latitude_deg = 90.0 },
  { name = "b3", altitude_km = 650.0, inclination_deg = "sso", arg_latitude_deg = 180.0 },
  { name = "c1", altitude_km = 500.0, inclination_deg = 97.4 },
]

[profiles]
default = "jetson-agx-orin"
nodes = { b1 = "suncatcher-tpu-v6e", b2 = "suncatcher-tpu-v6e" }

[scheduler]
policy = "local"

[[jobs]]
name = "triage"
flops_per_item = 1e9
rate_per_node_per_hour = 1.0
deadline_s = 600.0
"""


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("odc_gen_compose_h", DOCKER / "gen_compose.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


gen = _load()


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "scn" / "c7.toml"
    path.parent.mkdir()
    path.write_text(SCENARIO)
    return path


def _services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in doc["services"].items() if k.startswith("nodes-")}


def _env(service: dict[str, Any]) -> dict[str, str]:
    return dict(e.split("=", 1) for e in service["environment"] if "=" in e)


def test_k_nodes_per_container_each_node_once(scenario: Path) -> None:
    doc = gen.compose(gen.Settings(scenario=str(scenario), scenario_dir="./scn",
                                   nodes_per_container=3, passwords="dev"))
    hosts = _services(doc)
    assert list(hosts) == ["nodes-01", "nodes-02", "nodes-03"]
    assert not any(k.startswith("sat-") for k in doc["services"])
    members = []
    for name, svc in hosts.items():
        cmd = svc["command"]
        assert cmd[:4] == ["flightsw", "nodes", "--scenario", "/etc/odc-scenario/c7.toml"]
        only = cmd[cmd.index("--only") + 1].split(",")
        members.append(only)
        env = _env(svc)
        assert env["ODC_BROKER"] == "mqtts://{node}:{password}@broker:8883"
        assert env["ODC_NODE_PASSWORDS"] == " ".join(f"{m}:{m}-dev" for m in only)
        assert env["ODC_COMMAND_KEYS"] == " ".join(f"{m}:{m}-cmd-dev" for m in only)
        keys = [v for v in svc["volumes"] if v.endswith(".key:ro")]
        assert [k.rsplit("/", 1)[1] for k in keys] == [f"{m}.key:ro" for m in only]
        assert "./scn:/etc/odc-scenario:ro" in svc["volumes"]
        assert f"{name}-data:/var/lib/odc/node" in svc["volumes"]
        assert f"{name}-data" in doc["volumes"]
    assert members == [NAMES[0:3], NAMES[3:6], NAMES[6:7]]
    accounts = doc["services"]["broker"]["environment"]["ODC_MQTT_NODES"].split()
    assert [a.split(":")[0] for a in accounts] == NAMES


def test_scenario_settings_errors_name_the_option(scenario: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--profiles: with --scenario the scenario decides"):
        gen.compose(gen.Settings(scenario=str(scenario), profiles=("cubesat-6u",)))
    with pytest.raises(ValueError, match="nodes per container: need >= 1, got 0"):
        gen.compose(gen.Settings(scenario=str(scenario), nodes_per_container=0))
    bad = tmp_path / "bad.toml"
    bad.write_text(SCENARIO.replace('name = "c1"', 'name = "a1"'))
    with pytest.raises(ValueError, match=r"--scenario: .*names must be unique"):
        gen.compose(gen.Settings(scenario=str(bad)))


def test_cli_writes_the_file_and_the_nodes_keys(scenario: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "compose.yaml"
    secrets = tmp_path / "secrets"
    proc = subprocess.run(
        [sys.executable, str(DOCKER / "gen_compose.py"), "--scenario", str(scenario),
         "--nodes-per-container", "4", "--passwords", "dev", "--network", "host",
         "--secrets", str(secrets), "-o", str(out)],
        capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert "(--scenario c7.toml --passwords dev --network host --nodes-per-container 4)" in text
    assert '"a1,a2,a3,b1"' in text and '"b2,b3,c1"' in text  # the --only of each container
    assert sorted(p.stem for p in (secrets / "node-keys").glob("*.key")) == sorted(NAMES)


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"})


def _host_path(arg: str, mounts: dict[str, str]) -> str:
    """``arg`` with a container mount point at its start replaced by the host directory."""
    for inside, outside in mounts.items():
        if arg == inside or arg.startswith(inside + "/"):
            return outside + arg[len(inside):]
    return arg


@pytest.mark.mqtt
async def test_a_generated_container_command_runs_its_nodes(
    mosquitto_factory: Any, scenario: Path, tmp_path: Path
) -> None:
    """The command and environment of ``nodes-01`` as generated, run on the host: plain
    MQTT to a local mosquitto instead of TLS to the broker service, the container's mounts
    mapped to directories here; each node logs in with its own account."""
    accounts = tmp_path / "passwords"
    for k, user in enumerate([*NAMES, "observer"]):
        subprocess.run(["mosquitto_passwd", "-b", *(["-c"] if k == 0 else []), str(accounts),
                        user, f"{user}-dev"], check=True, capture_output=True)
    broker: MosquittoProcess = await mosquitto_factory(password_file=accounts)
    doc = gen.compose(gen.Settings(scenario=str(scenario), nodes_per_container=3,
                                   passwords="dev"))
    svc = doc["services"]["nodes-01"]
    keys = tmp_path / "keys"
    make_keys(keys, NAMES)
    mounts = {"/etc/odc-scenario": str(scenario.parent), "/var/lib/odc/node": str(tmp_path / "st"),
              "/etc/odc-keys": str(keys)}
    argv = [_host_path(a, mounts) for a in svc["command"]]
    env = _env(svc)
    env["ODC_BROKER"] = env["ODC_BROKER"].replace("mqtts://", "mqtt://").replace(
        "@broker:8883", f"@127.0.0.1:{broker.port}")
    env.pop("ODC_CA_FILE")
    log = tmp_path / "host.log"
    host = _start([sys.executable, "-m", "flightsw.cli", *argv[1:]], env, log)
    try:
        end = time.monotonic() + 60
        while "3 nodes online" not in log.read_text():
            assert host.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < end, log.read_text()[-3000:]
            await asyncio.sleep(0.2)
        seen: dict[str, Any] = {}
        url = f"mqtt://observer:observer-dev@127.0.0.1:{broker.port}"
        async with MqttBus(url, client_id="observer", clean_start=True) as bus, \
                bus.subscribe("odc/sat/+/status", qos=1) as sub:
            async for msg in sub:
                body = decode(msg.payload)
                seen[body["node"]] = body
                if len(seen) == 3:
                    break
        assert sorted(seen) == ["a1", "a2", "a3"]
        assert all(b["state"] == "online" and "auth" in b for b in seen.values())
        assert sorted(p.name for p in (tmp_path / "st").iterdir()) == ["a1", "a2", "a3",
                                                                       "heartbeat"]
    finally:
        host.terminate()
        host.wait(30)
    assert host.returncode == 0, log.read_text()[-3000:]
