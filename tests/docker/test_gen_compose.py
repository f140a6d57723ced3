"""docker/gen_compose.py: the committed compose files are its output; orbits and users."""

from __future__ import annotations

import importlib.util
import itertools
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

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
def test_committed_files_are_the_generator_output(committed: str, argv: list[str]) -> None:
    # as written into docker/: it sees the broker config as ./mosquitto and the secrets as
    # ./.generated/secrets
    settings = gen.settings_from_args(gen.build_parser().parse_args(argv), DOCKER)
    expected = gen.render(gen.compose(settings), gen._describe(settings), settings.passwords)
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


ROLE_VARS = {"node": "ODC_MQTT_NODES", "ground": "ODC_MQTT_GROUND",
             "operator": "ODC_MQTT_OPERATORS", "viewer": "ODC_MQTT_VIEWERS",
             "console": "ODC_MQTT_CONSOLES"}


def accounts(doc: dict[str, Any]) -> dict[str, dict[str, str]]:
    """role -> {user: password} from the broker's environment."""
    env = doc["services"]["broker"]["environment"]
    return {role: dict(p.split(":", 1) for p in env[var].split())
            for role, var in ROLE_VARS.items()}


def test_every_account_has_its_role_and_every_service_speaks_tls() -> None:
    doc = gen.compose(gen.Settings(nodes=4, network="host", port=2883, passwords="random",
                                   operators=("operator", "alice"), viewers=("wall",),
                                   consoles=("console",)))
    roles = accounts(doc)
    assert set(roles["node"]) == {"sat-001", "sat-002", "sat-003", "sat-004"}
    assert set(roles["ground"]) == {"ground"}
    assert set(roles["operator"]) == {"operator", "alice"}
    assert set(roles["viewer"]) == {"wall"}
    assert set(roles["console"]) == {"console"}
    users = {u: pw for r in roles.values() for u, pw in r.items()}
    assert len(set(users.values())) == len(users) == 9  # random: no two alike
    broker = doc["services"]["broker"]
    assert broker["environment"]["ODC_MQTT_TLS_DIR"] == "/etc/odc-tls"
    assert "./.generated/secrets/broker:/etc/odc-tls:ro" in broker["volumes"]
    assert "broker-data:/var/lib/odc-mosquitto" in broker["volumes"]  # persistence
    assert "broker-data" in doc["volumes"]
    for svc_name in ("sat-001", "sat-004", "ground"):
        svc = doc["services"][svc_name]
        user = svc_name
        assert svc["network_mode"] == "host"
        assert f"ODC_BROKER=mqtts://{user}:{users[user]}@127.0.0.1:2883" in svc["environment"]
        assert "ODC_CA_FILE=/etc/odc-tls/ca.crt" in svc["environment"]
        # a client container gets the CA certificate only, never the broker's key
        assert "./.generated/secrets/clients:/etc/odc-tls:ro" in svc["volumes"]
        assert not any("secrets/broker" in v or "secrets/ca" in v for v in svc["volumes"])
    assert doc["services"]["sat-004"]["command"][
        doc["services"]["sat-004"]["command"].index("--id") + 1] == "sat-004"
    # a node's data dir (models, telecommand counter, message sequence) is a volume of its own
    assert "sat-004-data:/var/lib/odc/node" in doc["services"]["sat-004"]["volumes"]
    assert {"archive", "broker-data", "sat-001-data", "sat-004-data"} <= set(doc["volumes"])


def test_node_keys_each_node_gets_only_its_own() -> None:
    doc = gen.compose(gen.Settings(nodes=3, node_keys=True))
    ground = doc["services"]["ground"]
    assert ground["command"][-2:] == ["--node-keys", "/etc/odc-keys"]
    assert "./.generated/secrets/node-keys:/etc/odc-keys:ro" in ground["volumes"]
    for node in ("sat-001", "sat-003"):
        svc = doc["services"][node]
        key, pub = f"/etc/odc-keys/{node}.key", "/etc/odc-keys/ground.warrant.pub"
        assert svc["command"][svc["command"].index("--node-key-file") + 1] == key
        assert svc["command"][svc["command"].index("--ground-public-key") + 1] == pub
        mounts = [v for v in svc["volumes"] if "node-keys" in v]
        assert mounts == [f"./.generated/secrets/node-keys/{node}.key:{key}:ro",
                          f"./.generated/secrets/node-keys/ground.warrant.pub:{pub}:ro"]
    off = gen.compose(gen.Settings(nodes=1, node_keys=False))
    assert "--node-key-file" not in off["services"]["sat-001"]["command"]
    assert "--node-keys" not in off["services"]["ground"]["command"]


@pytest.mark.slow  # runs `groundstation keys` twice (seconds of imports each)
def test_node_keys_are_made_once_and_private_on_the_host(tmp_path: Path) -> None:
    secrets = tmp_path / "s"
    assert gen.main(["--nodes", "2", "--node-keys", "--secrets", str(secrets),
                     "-o", str(tmp_path / "c.yaml")]) == 0
    keys = sorted((secrets / "node-keys").iterdir())
    assert [k.name for k in keys] == [
        "ground.warrant", "ground.warrant.pub", "sat-001.key", "sat-002.key"]
    # made by the project's own command: the ground and the nodes read them
    from flightsw.protocol.sign import load_keys
    from flightsw.protocol.warrant import WarrantSigner

    assert sorted(load_keys(secrets / "node-keys")) == ["sat-001", "sat-002"]
    WarrantSigner.from_file(secrets / "node-keys" / "ground.warrant")
    first = keys[2].read_text()
    assert secrets.stat().st_mode & 0o077 == 0  # the host guard: DIR is 0700
    assert all(k.stat().st_mode & 0o777 == 0o644 for k in keys)  # the containers' user reads
    assert gen.main(["--nodes", "3", "--node-keys", "--secrets", str(secrets),
                     "-o", str(tmp_path / "c.yaml")]) == 0
    assert keys[2].read_text() == first  # kept
    assert (secrets / "node-keys" / "sat-003.key").is_file()


def test_writing_a_file_makes_the_tls_material_once(tmp_path: Path) -> None:
    out, secrets = tmp_path / "c.yaml", tmp_path / "s"
    assert gen.main(["--nodes", "2", "--no-node-keys", "--secrets", str(secrets),
                     "-o", str(out)]) == 0
    ca = (secrets / "clients" / "ca.crt").read_bytes()
    assert (secrets / "broker" / "broker.key").stat().st_mode & 0o077 == 0
    assert (secrets / "ca" / "ca.key").stat().st_mode & 0o077 == 0
    assert "./s/broker:/etc/odc-tls:ro" in out.read_text()
    done = subprocess.run(["openssl", "verify", "-CAfile", str(secrets / "ca" / "ca.crt"),
                           str(secrets / "broker" / "broker.crt")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert gen.main(["--nodes", "3", "--no-node-keys", "--secrets", str(secrets),
                     "-o", str(out)]) == 0
    assert (secrets / "clients" / "ca.crt").read_bytes() == ca  # kept, not remade


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--nodes", "0"], "nodes: need 1..999, got 0"),
        (["--port", "70000"], "port: need 1..65535, got 70000"),
        # issue 14: this one used to exit 0 and leave the ground in a restart loop
        (["--station", "svalbard=78.23"],
         "station 'svalbard=78.23': expected NAME=LAT,LON[,ALT_M], got 1 number(s)"),
        (["--station", "x=91,0"], "latitude 91 not in [-90, 90]"),
        (["--station", "x=1,2,nan"], "non-finite"),
        (["--station", "=1,2"], "empty name"),
        (["--operators", "sat-001"], "operators: account 'sat-001' is taken (node)"),
        (["--viewers", "odc-probe"], "account 'odc-probe' is taken"),
        (["--viewers", "a b"], "viewers: account 'a b'"),
    ],
)
def test_bad_settings_name_the_field(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gen.main(argv) == 2
    assert message in capsys.readouterr().err


STATIONS = [
    "svalbard=78.23,15.41,500", "awarua=-46.53,168.38", "-46.53,168.38,10", "e=0,360",
    "w=0,-180", "top=90,0,100000", "low=0,0,-500", " spaced = 1 , 2 ",
    "svalbard=78.23", "x=1,2,3,4", "x=91,0", "x=0,361", "x=0,-181", "x=0,0,-501",
    "x=0,0,100001", "x=a,b", "x=inf,0", "x=0,nan", "=1,2", " =1,2", "x=", "x",
    "n" * 128 + "=1,2", "n" * 129 + "=1,2",
]


@pytest.mark.parametrize("spec", STATIONS)
def test_station_check_agrees_with_the_ground_station(spec: str) -> None:
    """gen_compose.py (standard library only) accepts exactly what `groundstation serve
    --station` and the retained GroundStations announcement accept."""
    from flightsw.exceptions import ConfigError, ProtocolError
    from flightsw.protocol.messages import StationInfo
    from groundstation.cli.serve import parse_station

    try:
        StationInfo.from_station(parse_station(spec))
        ground_ok = True
    except (ConfigError, ProtocolError):
        ground_ok = False
    try:
        gen.check_station(spec)
        ours = True
    except ValueError:
        ours = False
    assert ours == ground_ok


def test_random_passwords_file_is_private(tmp_path: Path) -> None:
    out = tmp_path / "c.yaml"
    assert gen.main(["--nodes", "2", "--no-node-keys", "--secrets", str(tmp_path / "s"),
                     "-o", str(out)]) == 0
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
    assert ("published: 8883" in done.stdout or "127.0.0.1:8883:8883" in done.stdout) != host
    broker_host = "127.0.0.1" if host else "broker"
    assert f"mqtts://sat-006:sat-006-dev@{broker_host}:8883" in done.stdout
