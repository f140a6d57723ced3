"""docker/gen_compose.py: the committed compose files are its output; orbits and users."""

from __future__ import annotations

import importlib.util
import itertools
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("odc_gen_compose", DOCKER / "gen_compose.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


gen = _load()


@pytest.mark.parametrize(
    ("committed", "argv"),
    [
        ("compose.yaml", ["--passwords", "dev"]),
        ("compose.hostnet.yaml", ["--passwords", "dev", "--network", "host"]),
    ],
)
def test_committed_files_are_the_generator_output(
    tmp_path: Path, committed: str, argv: list[str]
) -> None:
    out = tmp_path / committed
    assert gen.main([*argv, "-o", str(out)]) == 0
    # the committed file lives in docker/, where it sees the broker config as ./mosquitto
    expected = out.read_text().replace(
        gen.os.path.relpath(DOCKER / "mosquitto", tmp_path), "./mosquitto"
    )
    assert (DOCKER / committed).read_text() == expected, (
        f"docker/{committed} is stale: run python3 docker/gen_compose.py {' '.join(argv)} "
        f"-o docker/{committed}"
    )


def test_default_constellation_has_one_node_per_profile() -> None:
    specs = gen.node_specs(6)
    assert [s.node_id for s in specs] == [f"sat-00{i}" for i in range(1, 7)]
    assert [s.profile for s in specs] == [p for p, _, _ in gen.PROFILES]
    suncatcher = specs[1]
    assert (suncatcher.altitude_km, suncatcher.inclination_deg) == (650.0, 97.98)


def test_walker_like_phasing_spreads_planes_and_slots() -> None:
    specs = gen.node_specs(16)  # 4 planes of 4
    raans = sorted({s.raan_deg for s in specs})
    assert raans == [0.0, 90.0, 180.0, 270.0]
    for raan in raans:
        lats = sorted(s.arg_latitude_deg for s in specs if s.raan_deg == raan)
        assert len(lats) == 4
        assert [b - a for a, b in itertools.pairwise(lats)] == [90.0, 90.0, 90.0]
    assert len({s.node_id for s in specs}) == 16


def test_every_node_is_a_broker_user_with_its_own_url() -> None:
    doc = gen.compose(gen.Settings(nodes=4, network="host", port=2883, passwords="random"))
    users = dict(
        pair.split(":", 1)
        for pair in doc["services"]["broker"]["environment"]["ODC_MQTT_USERS"].split()
    )
    assert set(users) == {"ground", "operator", "sat-001", "sat-002", "sat-003", "sat-004"}
    assert len(set(users.values())) == len(users)  # random: no two alike
    for node in ("sat-001", "sat-004"):
        svc = doc["services"][node]
        assert svc["network_mode"] == "host"
        assert f"ODC_BROKER=mqtt://{node}:{users[node]}@127.0.0.1:2883" in svc["environment"]
        assert svc["command"][svc["command"].index("--id") + 1] == node


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--nodes", "0"], "nodes: need 1..999, got 0"),
        (["--port", "70000"], "port: need 1..65535, got 70000"),
    ],
)
def test_bad_settings_name_the_field(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gen.main(argv) == 2
    assert message in capsys.readouterr().err


def test_random_passwords_file_is_private(tmp_path: Path) -> None:
    out = tmp_path / "c.yaml"
    assert gen.main(["--nodes", "2", "-o", str(out)]) == 0
    assert out.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("committed", ["compose.yaml", "compose.hostnet.yaml"])
def test_docker_compose_accepts_the_files(committed: str) -> None:
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.skip("docker-compose is not installed")
    done = subprocess.run([compose, "-f", str(DOCKER / committed), "config"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    host = committed == "compose.hostnet.yaml"
    assert ("network_mode: host" in done.stdout) == host
    assert ("published: 1883" in done.stdout or "127.0.0.1:1883:1883" in done.stdout) != host
    broker_host = "127.0.0.1" if host else "broker"
    assert f"mqtt://sat-006:sat-006-dev@{broker_host}:1883" in done.stdout
