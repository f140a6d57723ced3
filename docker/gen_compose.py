"""Write a docker-compose file for a constellation of N nodes (docs/docker.md).

docker-compose v1 has no per-replica index, so ``--scale node=N`` cannot give each node its
own id, MQTT user and orbit. This generator writes one service per node instead; the node
count is one setting::

    NODE_COUNT=12 python3 docker/gen_compose.py -o docker/.generated/compose.yaml
    docker-compose -f docker/.generated/compose.yaml up -d

Writing a file (``-o``) also makes the deployment's TLS material if it is missing
(``docker/make_secrets.py``, in ``--secrets``, default ``docker/.generated/secrets``).

Broker accounts have roles (``docker/mosquitto/roles/``): one per node (user = node id), the
ground station service, operators, viewers and consoles (``--operators``, ``--viewers``,
``--consoles``). Every
service reaches the broker over TLS (``mqtts://``, trusting the local CA through
``ODC_CA_FILE``); the broker persists its database to a volume.

The committed ``docker/compose.yaml`` (6 nodes, one per hardware profile, development
passwords, bridge network) and ``docker/compose.hostnet.yaml`` (the same on the host
network; a full file, not an override, because compose cannot drop the broker's published
port in an override and docker refuses published ports with host networking) are this
script's output; ``tests/docker/test_gen_compose.py`` checks they are in sync.

Node ``i`` (0-based) runs profile ``PROFILES[i % 6]`` at that profile's typical altitude and
inclination, in a Walker-like pattern: ``P = round(sqrt(N))`` planes spread in RAAN, nodes of a
plane spread in argument of latitude, each plane offset by ``360 / N`` degrees.

Standard library only (it runs before anything is installed). Output is YAML; strings are
written JSON-quoted, which YAML reads as double-quoted scalars.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_secrets  # a sibling script, not a package

__all__ = [
    "PROFILES", "NodeSpec", "Settings", "check_station", "compose", "main", "node_specs",
    "render", "settings_from_args", "to_yaml",
]

# (profile, altitude km, inclination deg): the orbit class each hardware would fly.
PROFILES: tuple[tuple[str, float, float], ...] = (
    ("starcloud-h100", 550.0, 53.0),  # rideshare-class mid-inclination shell
    ("suncatcher-tpu-v6e", 650.0, 97.98),  # Suncatcher paper: 650 km dawn-dusk SSO
    ("jetson-agx-orin", 550.0, 53.0),
    ("jetson-orin-nano-super", 525.0, 97.5),  # SSO rideshare
    ("pic64-hpsc", 550.0, 53.0),
    ("cubesat-6u", 500.0, 97.4),  # SSO rideshare, the common cubesat orbit
)
GROUND_USER = "ground"
CONSOLE_USER = "console"  # the account the ground's operations console connects as
PROBE_USER = "odc-probe"  # the broker's own health check (made inside the container)
MOSQUITTO_DIR = Path(__file__).resolve().parent / "mosquitto"
HERE = Path(__file__).resolve().parent
TLS_MOUNT = "/etc/odc-tls"  # broker: broker.crt, broker.key, ca.crt; clients: ca.crt
BROKER_DATA = "/var/lib/odc-mosquitto"  # the broker's persistence volume
NODE_DATA = "/var/lib/odc/node"  # a node's --data-dir, a volume per node
KEYS_MOUNT = "/etc/odc-keys"  # node: its own <id>.key, ground.warrant.pub; ground: all
WARRANT_PUB = "ground.warrant.pub"  # the ground's public job-signing key (groundstation keys)
_ACCOUNT = re.compile(r"[A-Za-z0-9_.-]{1,64}")

Yaml = dict[str, "Yaml"] | list["Yaml"] | str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """One node service: id (= MQTT user name), hardware profile and circular orbit."""

    node_id: str
    profile: str
    altitude_km: float
    inclination_deg: float
    raan_deg: float
    arg_latitude_deg: float


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the compose file depends on."""

    nodes: int = 6
    network: str = "bridge"  # "bridge" (service DNS names) or "host" (all on 127.0.0.1)
    # host network: the address every service reaches the broker at, and the broker binds
    # to (a Swarm stack over several hosts names the broker host's address here)
    broker_host: str = "127.0.0.1"
    port: int = 8883  # the broker's TLS listener
    passwords: str = "dev"  # "dev" = <user>-dev (documented), "random" = fresh secrets
    mosquitto_dir: str = "./mosquitto"  # as the compose file will see it (relative to it)
    secrets_dir: str = "./.generated/secrets"  # make_secrets.py output, as compose sees it
    operators: tuple[str, ...] = ("operator",)  # broker accounts of the operator role
    viewers: tuple[str, ...] = ("viewer",)  # broker accounts of the read-only viewer role
    consoles: tuple[str, ...] = ()  # accounts of the console role (operator + telecommands)
    # the ground serves the operations console (docs/console.md) on this port, connected
    # as its own console account; None: no console
    console_port: int | None = 8080
    node_keys: bool = True  # nodes seal their messages with per-node keys the ground checks
    stations: tuple[str, ...] = ()
    lease_s: float | None = None  # node lease (mission s); None = the CLIs' default
    telemetry_period_s: float | None = None  # None = the node's default
    max_payload_bytes: int | None = None  # largest job a node accepts; None = its default
    profiles: tuple[str, ...] = ()  # profiles to cycle through; () = all of PROFILES
    # the constellation from a scenario file instead (its nodes, orbits and profiles; read
    # with the flightsw package), run by `flightsw nodes`, nodes_per_container per container
    scenario: str | None = None  # the scenario file, as this process reads it
    scenario_dir: str = "."  # its directory, as the compose file sees it
    nodes_per_container: int = 1


_DEFAULT = Settings()
SCENARIO_MOUNT = "/etc/odc-scenario"  # the scenario file's directory in a node container


def scenario_node_ids(path: str) -> list[str]:
    """The node names of a scenario, as the simulator and ``flightsw nodes`` resolve them
    (needs the flightsw package: the one reader of scenarios)."""
    try:
        # here, not at the top: the generator runs on the standard library alone otherwise
        from flightsw.exceptions import FlightSwError  # noqa: PLC0415
        from flightsw.sim.scenario import load_scenario  # noqa: PLC0415
        from flightsw.sim.world import build_world  # noqa: PLC0415
    except ImportError as exc:
        raise ValueError(f"--scenario needs the flightsw package installed: {exc}") from None
    try:
        return build_world(load_scenario(path)).names
    except FlightSwError as exc:
        raise ValueError(f"--scenario: {exc}") from None


def node_specs(count: int, profiles: Sequence[str] = ()) -> list[NodeSpec]:
    """Ids ``sat-001``... with profiles cycling through ``profiles`` (default all of
    :data:`PROFILES`), each at its orbit class."""
    if count < 1 or count > 999:
        raise ValueError(f"nodes: need 1..999, got {count}")
    known = {p[0]: p for p in PROFILES}
    for name in profiles:
        if name not in known:
            raise ValueError(f"profiles: unknown profile {name!r}; known: {', '.join(known)}")
    cycle = [known[p] for p in profiles] if profiles else list(PROFILES)
    planes = max(1, round(math.sqrt(count)))
    per_plane = math.ceil(count / planes)
    specs = []
    for i in range(count):
        profile, altitude, inclination = cycle[i % len(cycle)]
        plane, slot = i % planes, i // planes
        specs.append(NodeSpec(
            node_id=make_secrets.node_id(i),
            profile=profile,
            altitude_km=altitude,
            inclination_deg=inclination,
            raan_deg=round(360.0 * plane / planes, 3),
            arg_latitude_deg=round((360.0 * slot / per_plane + 360.0 * plane / count) % 360, 3),
        ))
    return specs


def check_station(text: str) -> str:
    """``text`` if ``groundstation serve --station`` accepts it, else :class:`ValueError`
    naming what is wrong: ``NAME=LAT,LON[,ALT_M]`` (or ``LAT,LON[,ALT_M]``), a name of 1-128
    characters, finite numbers, latitude in [-90, 90], longitude in [-180, 360], height in
    [-500, 100000] m. (The ground's own rules: ``groundstation/cli/serve.py`` and
    ``flightsw/physics/ground.py``; ``tests/docker/test_gen_compose.py`` ties the two.)
    Checked here so a bad station fails at generation, not in the ground's restart loop."""
    name, sep, rest = text.partition("=")
    if not sep:
        name, rest = "station", text
    where = f"station {text!r}"
    if not name.strip():
        raise ValueError(f"{where}: empty name")
    if len(name.strip()) > 128:
        raise ValueError(f"{where}: name longer than 128 characters")
    parts = [p.strip() for p in rest.split(",")]
    if len(parts) not in (2, 3):
        raise ValueError(f"{where}: expected NAME=LAT,LON[,ALT_M], got {len(parts)} number(s)")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"{where}: {rest!r} has a non-numeric field") from None
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{where}: {rest!r} has a non-finite field")
    lat, lon, alt = values[0], values[1], values[2] if len(values) == 3 else 0.0
    if not -90.0 <= lat <= 90.0:
        raise ValueError(f"{where}: latitude {lat:g} not in [-90, 90]")
    if not -180.0 <= lon <= 360.0:
        raise ValueError(f"{where}: longitude {lon:g} not in [-180, 360]")
    if not -500.0 <= alt <= 100_000.0:
        raise ValueError(f"{where}: height {alt:g} m not in [-500, 100000]")
    return text


def _accounts(settings: Settings, nodes: Sequence[str]) -> dict[str, str]:
    """Every broker account and its role, checked: names the broker takes, none twice."""
    roles: dict[str, str] = {}
    consoles = settings.consoles
    if settings.console_port is not None and CONSOLE_USER not in consoles:
        consoles = (*consoles, CONSOLE_USER)  # the ground's console signs in as this one
    for role, names in (("node", nodes), ("ground", [GROUND_USER]),
                        ("operator", settings.operators), ("viewer", settings.viewers),
                        ("console", consoles)):
        for name in names:
            if not _ACCOUNT.fullmatch(name):
                raise ValueError(f"{role}s: account {name!r}: use 1-64 of A-Z a-z 0-9 _ . -")
            if name in roles or name == PROBE_USER:
                raise ValueError(f"{role}s: account {name!r} is taken "
                                 f"({roles.get(name, 'the broker health probe')})")
            roles[name] = role
    return roles


def _password(user: str, mode: str) -> str:
    if mode == "dev":
        return f"{user}-dev"
    if mode == "random":
        return secrets.token_urlsafe(18)
    raise ValueError(f"passwords: 'dev' or 'random', got {mode!r}")


def _fmt(x: float) -> str:
    return f"{x:g}"


def compose(settings: Settings) -> dict[str, Yaml]:
    """The compose file as a mapping (``version: "2.4"``: docker-compose v1 and v2 read it)."""
    if settings.network not in ("bridge", "host"):
        raise ValueError(f"network: 'bridge' or 'host', got {settings.network!r}")
    if not 1 <= settings.port <= 65535:
        raise ValueError(f"port: need 1..65535, got {settings.port}")
    if settings.scenario is None:
        specs = node_specs(settings.nodes, settings.profiles)
        ids = [s.node_id for s in specs]
    else:
        for given, what in ((settings.profiles, "--profiles"), (settings.lease_s, "--lease")):
            if given:
                raise ValueError(f"{what}: with --scenario the scenario decides it")
        if settings.nodes_per_container < 1:
            raise ValueError(f"nodes per container: need >= 1, got "
                             f"{settings.nodes_per_container}")
        specs, ids = [], scenario_node_ids(settings.scenario)
    for station in settings.stations:
        check_station(station)
    roles = _accounts(settings, ids)
    pw = {u: _password(u, settings.passwords) for u in roles}
    host = settings.broker_host if settings.network == "host" else "broker"

    def command_key(node: str) -> str:
        """The node's telecommand HMAC key (docs/protocol.md): per node, like its password."""
        return f"{node}-cmd-dev" if settings.passwords == "dev" else secrets.token_hex(16)

    def url(user: str) -> str:
        return f"mqtts://{user}:{pw[user]}@{host}:{settings.port}"

    def accounts(role: str) -> str:
        return " ".join(f"{u}:{pw[u]}" for u, r in roles.items() if r == role)

    # clients get the CA certificate only (never a key): ODC_CA_FILE points at it
    client_tls: Yaml = f"{settings.secrets_dir}/clients:{TLS_MOUNT}:ro"
    client_env: list[Yaml] = [f"ODC_CA_FILE={TLS_MOUNT}/ca.crt"]

    def common(service: dict[str, Yaml]) -> dict[str, Yaml]:
        if settings.network == "host":
            service["network_mode"] = "host"
        service["init"] = True
        return service

    clock_env: list[Yaml] = ["ODC_TIME_SCALE", "ODC_EPOCH", "ODC_CLOCK_ANCHOR"]
    broker_env: dict[str, Yaml] = {
        "ODC_MQTT_PORT": str(settings.port),
        "ODC_MQTT_NODES": accounts("node"),
        "ODC_MQTT_GROUND": accounts("ground"),
        "ODC_MQTT_OPERATORS": accounts("operator"),
        "ODC_MQTT_VIEWERS": accounts("viewer"),
        "ODC_MQTT_CONSOLES": accounts("console"),
        "ODC_MQTT_TLS_DIR": TLS_MOUNT,
        "ODC_MQTT_DATA_DIR": BROKER_DATA,
    }
    if settings.network == "host":
        broker_env["ODC_MQTT_BIND"] = settings.broker_host
    broker: dict[str, Yaml] = {
        "image": "${ODC_BROKER_IMAGE:-odc-mosquitto:latest}",
        "entrypoint": ["/bin/sh", "/etc/odc-mosquitto/entrypoint.sh"],
        "environment": broker_env,
        "volumes": [
            f"{settings.mosquitto_dir}:/etc/odc-mosquitto:ro",
            f"{settings.secrets_dir}/broker:{TLS_MOUNT}:ro",
            f"broker-data:{BROKER_DATA}",
        ],
        "healthcheck": {
            "test": ["CMD", "/bin/sh", "/etc/odc-mosquitto/healthcheck.sh"],
            "interval": "5s",
            "timeout": "8s",
            "retries": 10,
            "start_period": "2s",
        },
        "restart": "on-failure",
    }
    if settings.network == "bridge":
        broker["ports"] = [f"127.0.0.1:{settings.port}:{settings.port}"]
    after_broker: Yaml = {"broker": {"condition": "service_healthy"}}
    # docker/healthcheck.py is cheap (no onnxruntime import): check more often than the
    # image's 15 s so `up` reports healthy sooner
    odc_health: Yaml = {"interval": "5s", "timeout": "10s", "retries": 3, "start_period": "20s"}

    serve: list[Yaml] = ["groundstation", "serve", "--archive", "/var/lib/odc/archive"]
    for station in settings.stations:
        serve += ["--station", station]
    if settings.lease_s is not None:
        serve += ["--lease", _fmt(settings.lease_s)]
    ground_env: list[Yaml] = [f"ODC_BROKER={url(GROUND_USER)}", *client_env, *clock_env]
    if settings.console_port is not None:
        if not 1 <= settings.console_port <= 65535:
            raise ValueError(f"console port: need 1..65535, got {settings.console_port}")
        bind = "127.0.0.1" if settings.network == "host" else "0.0.0.0"
        serve += ["--http", f"{bind}:{settings.console_port}"]
        token = "console-dev" if settings.passwords == "dev" else secrets.token_urlsafe(18)
        ground_env += [f"ODC_CONSOLE_BROKER={url(CONSOLE_USER)}", f"ODC_CONSOLE_TOKEN={token}"]
        if settings.passwords == "dev":  # the nodes' documented dev telecommand keys
            ground_env.append("ODC_COMMAND_KEY_PATTERN={node}-cmd-dev")
    ground_volumes: list[Yaml] = ["archive:/var/lib/odc/archive", client_tls]
    if settings.node_keys:
        serve += ["--node-keys", KEYS_MOUNT]
        ground_volumes.append(f"{settings.secrets_dir}/node-keys:{KEYS_MOUNT}:ro")
    services: dict[str, Yaml] = {
        "broker": common(broker),
        "ground": common({
            "image": "${ODC_IMAGE:-odc:latest}",
            "command": serve,
            "environment": ground_env,
            "volumes": ground_volumes,
            "healthcheck": odc_health,
            "depends_on": after_broker,
            "restart": "on-failure",
        }),
    }
    if settings.console_port is not None and settings.network == "bridge":
        port = settings.console_port
        services["ground"]["ports"] = [f"127.0.0.1:{port}:{port}"]  # type: ignore[index]
    for s in specs:
        cmd: list[Yaml] = [
            "flightsw", "node", "--id", s.node_id, "--profile", s.profile,
            "--altitude", _fmt(s.altitude_km), "--inclination", _fmt(s.inclination_deg),
            "--raan", _fmt(s.raan_deg), "--arg-latitude", _fmt(s.arg_latitude_deg),
            "--data-dir", NODE_DATA,
        ]
        if settings.lease_s is not None:
            cmd += ["--lease", _fmt(settings.lease_s)]
        if settings.telemetry_period_s is not None:
            cmd += ["--telemetry-period", _fmt(settings.telemetry_period_s)]
        if settings.max_payload_bytes is not None:
            cmd += ["--max-payload", str(settings.max_payload_bytes)]
        node_volumes: list[Yaml] = [f"{s.node_id}-data:{NODE_DATA}", client_tls]
        if settings.node_keys:  # its own key only, and the ground's public warrant key
            key, pub = f"{KEYS_MOUNT}/{s.node_id}.key", f"{KEYS_MOUNT}/{WARRANT_PUB}"
            cmd += ["--node-key-file", key, "--ground-public-key", pub]
            node_volumes += [f"{settings.secrets_dir}/node-keys/{s.node_id}.key:{key}:ro",
                             f"{settings.secrets_dir}/node-keys/{WARRANT_PUB}:{pub}:ro"]
        services[s.node_id] = common({
            "image": "${ODC_IMAGE:-odc:latest}",
            "command": cmd,
            "environment": [
                f"ODC_BROKER={url(s.node_id)}",
                f"ODC_COMMAND_KEY={command_key(s.node_id)}",
                *client_env,
                *clock_env,
            ],
            # the node's data dir outlives the container, as the ground's archive does: its
            # models, telecommand counter and message sequence continue after a re-create
            "volumes": node_volumes,
            "healthcheck": odc_health,
            "depends_on": after_broker,
            "restart": "on-failure",
        })
    volumes: dict[str, Yaml] = {"archive": {}, "broker-data": {}}
    volumes.update({f"{s.node_id}-data": {} for s in specs})
    if settings.scenario is not None:
        k = settings.nodes_per_container
        groups = [ids[i:i + k] for i in range(0, len(ids), k)]
        width = max(2, len(str(len(groups))))
        scenario_file = f"{SCENARIO_MOUNT}/{Path(settings.scenario).name}"
        for g, members in enumerate(groups, start=1):
            name = f"nodes-{g:0{width}d}"
            cmd = ["flightsw", "nodes", "--scenario", scenario_file,
                   "--only", ",".join(members), "--state-dir", NODE_DATA]
            if settings.telemetry_period_s is not None:
                cmd += ["--telemetry-period", _fmt(settings.telemetry_period_s)]
            if settings.max_payload_bytes is not None:
                cmd += ["--max-payload", str(settings.max_payload_bytes)]
            host_volumes: list[Yaml] = [f"{name}-data:{NODE_DATA}", client_tls,
                                        f"{settings.scenario_dir}:{SCENARIO_MOUNT}:ro"]
            if settings.node_keys:  # its nodes' keys only, and the ground's public key
                cmd += ["--node-keys", KEYS_MOUNT,
                        "--ground-public-key", f"{KEYS_MOUNT}/{WARRANT_PUB}"]
                host_volumes += [f"{settings.secrets_dir}/node-keys/{m}.key:{KEYS_MOUNT}/{m}.key:ro"
                                 for m in members]
                host_volumes.append(f"{settings.secrets_dir}/node-keys/{WARRANT_PUB}:"
                                    f"{KEYS_MOUNT}/{WARRANT_PUB}:ro")
            services[name] = common({
                "image": "${ODC_IMAGE:-odc:latest}",
                "command": cmd,
                "environment": [
                    # each node its own account, password and telecommand key
                    f"ODC_BROKER=mqtts://{{node}}:{{password}}@{host}:{settings.port}",
                    "ODC_NODE_PASSWORDS=" + " ".join(f"{m}:{pw[m]}" for m in members),
                    "ODC_COMMAND_KEYS=" + " ".join(f"{m}:{command_key(m)}" for m in members),
                    *client_env,
                    *clock_env,
                ],
                "volumes": host_volumes,
                "healthcheck": odc_health,
                "depends_on": after_broker,
                "restart": "on-failure",
            })
            volumes[f"{name}-data"] = {}
    return {"version": "2.4", "services": services, "volumes": volumes}


def _scalar(value: Yaml) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    assert isinstance(value, str)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


_WIDTH = 100


def _flow(items: Yaml, start: int, indent: int) -> str | None:
    """``[a, b, ...]`` for a list of scalars, wrapped at ``_WIDTH``; else ``None``."""
    if not isinstance(items, list) or any(isinstance(i, dict | list) for i in items):
        return None
    out, col = "[", start + 1
    for n, item in enumerate(items):
        word = _scalar(item) + ("," if n < len(items) - 1 else "]")
        if col + len(word) > _WIDTH and col > indent + 1:
            out = out.rstrip() + "\n" + " " * indent
            col = indent
        out += word + " "
        col += len(word) + 1
    return out.rstrip()


def to_yaml(value: Yaml, indent: int = 0) -> str:
    """Block-style YAML for nested dicts and lists of scalars (enough for compose)."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            flow = _flow(item, len(pad) + len(key) + 2, indent + 4) if item else None
            if flow is not None:
                lines.append(f"{pad}{key}: {flow}")
            elif isinstance(item, dict | list) and item:
                lines.append(f"{pad}{key}:")
                lines.append(to_yaml(item, indent + 2))
            elif isinstance(item, dict):
                lines.append(f"{pad}{key}: {{}}")
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list):
                raise TypeError("to_yaml: nested collections inside lists are not supported")
            lines.append(f"{pad}- {_scalar(item)}")
    else:
        lines.append(pad + _scalar(value))
    return "\n".join(lines)


HEADER = """\
# Generated by docker/gen_compose.py ({args}); edit the generator, not this file.
# Credentials: {creds}
"""


def render(doc: dict[str, Yaml], args: str, passwords: str) -> str:
    creds = (
        "development defaults <user>-dev (docs/docker.md); not for a shared network."
        if passwords == "dev"
        else "random passwords generated for this file: keep it private."
    )
    return HEADER.format(args=args, creds=creds) + to_yaml(doc) + "\n"


def _describe(settings: Settings) -> str:
    """The generator arguments that reproduce ``settings`` (for the file's header)."""
    words = [f"--nodes {settings.nodes}", f"--passwords {settings.passwords}"]
    if settings.network != "bridge":
        words.append(f"--network {settings.network}")
    if settings.port != _DEFAULT.port:
        words.append(f"--port {settings.port}")
    if settings.operators != _DEFAULT.operators:
        words.append(f"--operators {','.join(settings.operators)}")
    if settings.viewers != _DEFAULT.viewers:
        words.append(f"--viewers {','.join(settings.viewers)}")
    if settings.consoles != _DEFAULT.consoles:
        words.append(f"--consoles {','.join(settings.consoles)}")
    if settings.console_port != _DEFAULT.console_port:
        words.append("--no-console" if settings.console_port is None
                     else f"--console-port {settings.console_port}")
    if settings.node_keys != _DEFAULT.node_keys:
        words.append("--node-keys" if settings.node_keys else "--no-node-keys")
    words += [f"--station {st}" for st in settings.stations]
    if settings.lease_s is not None:
        words.append(f"--lease {_fmt(settings.lease_s)}")
    if settings.telemetry_period_s is not None:
        words.append(f"--telemetry-period {_fmt(settings.telemetry_period_s)}")
    if settings.max_payload_bytes is not None:
        words.append(f"--max-payload {settings.max_payload_bytes}")
    if settings.profiles:
        words.append(f"--profiles {','.join(settings.profiles)}")
    if settings.scenario is not None:
        words[0] = f"--scenario {Path(settings.scenario).name}"
        words.append(f"--nodes-per-container {settings.nodes_per_container}")
    return " ".join(words)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gen_compose.py", description=__doc__.split("\n")[0])
    p.add_argument("--nodes", type=int, default=int(os.environ.get("NODE_COUNT", "6")),
                   help="number of node services (env NODE_COUNT, default 6)")
    p.add_argument("--network", choices=("bridge", "host"), default="bridge",
                   help="bridge: services reach the broker by name; host: all on 127.0.0.1")
    p.add_argument("--port", type=int, default=_DEFAULT.port,
                   help=f"broker TLS port (default {_DEFAULT.port})")
    p.add_argument("--passwords", choices=("dev", "random"), default="random",
                   help="random (default) or the documented development passwords")
    p.add_argument("--station", action="append", default=[], metavar="NAME=LAT,LON[,ALT_M]",
                   help="ground station (repeat); none = always in contact")
    p.add_argument("--lease", type=float, default=None, help="job lease, mission seconds")
    p.add_argument("--telemetry-period", type=float, default=None, help="mission seconds")
    p.add_argument("--max-payload", type=int, default=None, help="largest job a node takes, bytes")
    p.add_argument("--profiles", default="", metavar="A,B,...",
                   help="hardware profiles to cycle through (default: all six)")
    p.add_argument("--operators", default=",".join(_DEFAULT.operators), metavar="A,B,...",
                   help="broker accounts with the operator role (default: operator)")
    p.add_argument("--viewers", default=",".join(_DEFAULT.viewers), metavar="A,B,...",
                   help="broker accounts with the read-only viewer role (default: viewer; "
                        "'' for none)")
    p.add_argument("--consoles", default=",".join(_DEFAULT.consoles), metavar="A,B,...",
                   help="broker accounts with the console role: an operator that may send "
                        "telecommands (default: none)")
    p.add_argument("--console-port", type=int, default=_DEFAULT.console_port, metavar="PORT",
                   help="the ground serves the operations console there (default 8080; "
                        "bridge network: published on 127.0.0.1)")
    p.add_argument("--no-console", dest="console_port", action="store_const", const=None,
                   help="no operations console")
    p.add_argument("--secrets", type=Path, default=make_secrets.DEFAULT_DIR, metavar="DIR",
                   help="TLS material (docker/make_secrets.py; default docker/.generated/secrets)")
    p.add_argument("--node-keys", action=argparse.BooleanOptionalAction,
                   default=_DEFAULT.node_keys,
                   help="per-node message keys: each node seals what it publishes, the ground "
                        f"checks (default {'on' if _DEFAULT.node_keys else 'off'})")
    p.add_argument("--no-secrets", action="store_true",
                   help="with -o: do not make missing TLS material")
    p.add_argument("--scenario", type=Path, default=None, metavar="FILE",
                   help="the constellation of a scenario file (as `flightsw sim` reads it; "
                        "needs the flightsw package), run by `flightsw nodes` in containers "
                        "(instead of --nodes and --profiles)")
    p.add_argument("--nodes-per-container", type=int, default=1, metavar="K",
                   help="with --scenario: nodes per container (default 1)")
    p.add_argument("-o", "--out", type=Path, default=None, help="output file (default stdout)")
    return p


def _relative(path: Path, out_dir: Path) -> str:
    """``path`` as a compose file in ``out_dir`` sees it (``./...`` or ``../...``)."""
    rel = os.path.relpath(path.resolve(), out_dir)
    return rel if rel == ".." or rel.startswith("../") else f"./{rel}"


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def settings_from_args(args: argparse.Namespace, out_dir: Path) -> Settings:
    """The settings of parsed arguments for a compose file written in ``out_dir``."""
    return Settings(
        nodes=args.nodes, network=args.network, port=args.port, passwords=args.passwords,
        mosquitto_dir=_relative(MOSQUITTO_DIR, out_dir.resolve()),
        secrets_dir=_relative(args.secrets, out_dir.resolve()),
        operators=_names(args.operators), viewers=_names(args.viewers),
        consoles=_names(args.consoles), node_keys=args.node_keys,
        console_port=args.console_port,
        stations=tuple(args.station), lease_s=args.lease,
        telemetry_period_s=args.telemetry_period, max_payload_bytes=args.max_payload,
        profiles=tuple(p for p in args.profiles.split(",") if p),
        scenario=str(args.scenario) if args.scenario is not None else None,
        scenario_dir=(_relative(args.scenario.parent, out_dir.resolve())
                      if args.scenario is not None else "."),
        nodes_per_container=args.nodes_per_container,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = settings_from_args(args, args.out.parent if args.out else Path.cwd())
    try:
        doc = compose(settings)
    except ValueError as exc:
        print(f"gen_compose.py: error: {exc}", file=sys.stderr)
        return 2
    text = render(doc, _describe(settings), args.passwords)
    if args.out is None:
        sys.stdout.write(text)
    else:
        if not args.no_secrets:
            try:
                made = make_secrets.ensure(args.secrets)
                if settings.node_keys:
                    ids = ([make_secrets.node_id(i) for i in range(settings.nodes)]
                           if settings.scenario is None else scenario_node_ids(settings.scenario))
                    keyed = make_secrets.ensure_node_keys(args.secrets, ids)
                    made += [f"keys {', '.join(keyed)}"] if keyed else []
            except make_secrets.SecretsError as exc:
                print(f"gen_compose.py: error: {exc}", file=sys.stderr)
                return 2
            if made:
                print(f"gen_compose.py: made {', '.join(made)} in {args.secrets}",
                      file=sys.stderr)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        if args.passwords == "random":
            args.out.chmod(0o600)
    return 0


if __name__ == "__main__":
    sys.exit(main())
