"""The Docker broker's roles, TLS and persistence, on a real mosquitto (no docker).

Runs the entrypoint the broker container runs (docker/mosquitto/entrypoint.sh) with the
host's mosquitto, the broker environment ``docker/gen_compose.py`` generates (accounts by
role) and TLS material from ``docker/make_secrets.py``, and proves each ACL rule both ways:
an allowed publish reaches a privileged subscriber and a forbidden one does not; an allowed
topic reaches a role's subscriber and a forbidden one does not. mosquitto drops refused
messages silently, so "does not" is checked against a sentinel sent after them on the same
ordered path (a QoS 1 message that must arrive after any wrongly delivered one), plus a
short quiet window.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from bus_drain import drain
from node_harness import running_node

from flightsw.bus import Subscription
from flightsw.bus.mqtt import MqttBus
from flightsw.clock import WallClock
from flightsw.exceptions import BusError
from flightsw.models.mlp_train import train_local
from groundstation.train_checkpoint import read_checkpoint
from groundstation.training import CHECKPOINT_NAME, run_training

pytestmark = pytest.mark.mqtt

DOCKER = Path(__file__).resolve().parents[2] / "docker"
MOSQUITTO_DIR = DOCKER / "mosquitto"
GRACE_S = 0.3  # quiet time after the sentinel


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"odc_{name}", DOCKER / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gen = _load("gen_compose")
secrets_mod = _load("make_secrets")

# Accounts as the generator makes them for three nodes (sat-001..3 = "sat-a, sat-b, ..."),
# plus two test-only accounts with their own rules: a spy that reads everything and a
# feeder that writes everything.
TEST_ACL = "user spy\ntopic read #\nuser feeder\ntopic write #\n"
A, B, C = "sat-001", "sat-002", "sat-003"


def train(node: str, leaf: str = "") -> str:
    """A training topic of job ``j1`` (flightsw/protocol/training.py): the node's inbox, or
    its ``grad``, ``done`` or ``ckpt`` leaf."""
    return f"odc/sat/{node}/train" + (f"/j1/{leaf}" if leaf else "")


TRAIN_LEAVES = ("grad", "done", "ckpt")


class Deployment:
    def __init__(self, port: int, passwords: dict[str, str], ca: Path) -> None:
        self.port = port
        self.passwords = passwords
        self.ca = ca

    def url(self, user: str, password: str | None = None) -> str:
        return f"mqtts://{user}:{password or self.passwords[user]}@127.0.0.1:{self.port}"

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


def broker_env(tmp: Path) -> tuple[dict[str, str], dict[str, str]]:
    """The generated broker environment for 3 nodes, and every account's password."""
    doc = gen.compose(gen.Settings(nodes=3, passwords="random", consoles=("console",)))
    env: dict[str, str] = {k: v for k, v in doc["services"]["broker"]["environment"].items()
                           if k.startswith("ODC_MQTT_") and k not in (
                               "ODC_MQTT_PORT", "ODC_MQTT_BIND", "ODC_MQTT_DATA_DIR")}
    passwords: dict[str, str] = {}
    for var in ("ODC_MQTT_NODES", "ODC_MQTT_GROUND", "ODC_MQTT_OPERATORS", "ODC_MQTT_VIEWERS",
                "ODC_MQTT_CONSOLES"):
        passwords.update(p.split(":", 1) for p in env[var].replace(",", " ").split())
    extra = {"spy": "spy-pw", "feeder": "feeder-pw"}
    passwords.update(extra)
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "test.acl").write_text(TEST_ACL)
    secrets_mod.ensure(tmp / "secrets")
    env |= {"ODC_MQTT_USERS": " ".join(f"{u}:{p}" for u, p in extra.items()),
            "ODC_MQTT_ACL_EXTRA": str(tmp / "test.acl"),
            "ODC_MQTT_TLS_DIR": str(tmp / "secrets" / "broker")}
    return env, passwords


# Brokers (tests/docker/conftest.py): started through the entrypoint, stopped after use
Brokers = Any


@pytest.fixture(scope="module")
def deployment(module_brokers: Brokers) -> Deployment:
    tmp = module_brokers.root / "deployment"
    env, passwords = broker_env(tmp)
    port = module_brokers.start(**env)
    return Deployment(port, passwords, tmp / "secrets" / "clients" / "ca.crt")


_ids = iter(range(10**6))


@contextlib.asynccontextmanager
async def connect(d: Deployment, user: str) -> AsyncIterator[MqttBus]:
    async with MqttBus(d.url(user), f"acl-{user}-{next(_ids)}", clean_start=True,
                       persistent_session=False, connect_timeout_s=5.0,
                       tls_context=d.tls()) as bus:
        yield bus


async def received_until(sub: Subscription, sentinel: str) -> set[str]:
    """Topics ``sub`` receives up to and including ``sentinel``, then a quiet window."""
    got: set[str] = set()
    async with asyncio.timeout(10):
        while True:
            msg = await sub.get()
            got.add(msg.topic)
            if msg.topic == sentinel:
                break
    got |= {m.topic for m in await drain(sub, GRACE_S)}
    got.discard(sentinel)
    return got


# (user, topic, allowed): what each role may publish.
PUBLISH: dict[str, list[tuple[str, bool]]] = {
    "operator": [
        ("odc/ground/req", True),
        # finding 4 of issue 13: the operator acted as a node under its own name
        ("odc/sat/operator/status", False),
        ("odc/sat/operator/result", False),
        (f"odc/sat/{A}/status", False),
        (f"odc/sat/{A}/result", False),
        (f"odc/sat/{A}/event", False),
        (f"odc/sat/{A}/job", False),
        (f"odc/sat/{A}/cmd", False),
        (f"odc/sat/{A}/model", False),
        (f"odc/sat/{A}/handover/{B}", False),
        ("odc/ground/stations", False),
        ("odc/ground/job/j1", False),
        ("odc/ground/rep/c1", False),
        # groundstation train sends each member its part, and speaks for no member
        (train(A), True),
        *((train(A, leaf), False) for leaf in TRAIN_LEAVES),
        ("odc/sat/operator/train/j1/done", False),
    ],
    "viewer": [
        ("odc/ground/req", False),
        ("odc/sat/viewer/status", False),
        (f"odc/sat/{A}/telemetry", False),
        (f"odc/sat/{A}/cmd", False),
        ("odc/ground/stations", False),
        ("odc/ground/job/j1", False),
        (train(A), False),
        *((train(A, leaf), False) for leaf in TRAIN_LEAVES),
    ],
    B: [
        *((f"odc/sat/{B}/{leaf}", True)
          for leaf in ("status", "telemetry", "state", "event", "result", "ack")),
        (f"odc/sat/{B}/handover/{A}", True),
        # sat-b cannot speak for sat-a, nor hand over a job as sat-a
        (f"odc/sat/{A}/status", False),
        (f"odc/sat/{A}/result", False),
        (f"odc/sat/{A}/telemetry", False),
        (f"odc/sat/{A}/state", False),
        (f"odc/sat/{A}/event", False),
        (f"odc/sat/{A}/handover/{B}", False),
        # nor uplink, to others or to itself
        (f"odc/sat/{A}/job", False),
        (f"odc/sat/{B}/job", False),
        (f"odc/sat/{B}/cmd", False),
        (f"odc/sat/{B}/model", False),
        ("odc/ground/stations", False),
        ("odc/ground/req", False),
        ("odc/ground/job/j1", False),
        # training: its own gradients, end and checkpoints, no other member's, no job
        *((train(B, leaf), True) for leaf in TRAIN_LEAVES),
        *((train(A, leaf), False) for leaf in TRAIN_LEAVES),
        (train(B), False),
        (train(A), False),
        (f"odc/sat/{B}/train/j1/loss", False),
        (f"odc/sat/{B}/train/j1/grad/x", False),
    ],
    "ground": [
        (f"odc/sat/{A}/job", True),
        (f"odc/sat/{A}/model", True),
        (f"odc/sat/{A}/cmd", False),  # telecommands are the console's
        ("odc/ground/stations", True),
        ("odc/ground/rep/c1", True),
        ("odc/ground/job/j1", True),
        # the ground cannot forge node traffic
        (f"odc/sat/{A}/status", False),
        (f"odc/sat/{A}/result", False),
        (f"odc/sat/{A}/telemetry", False),
        (f"odc/sat/{A}/state", False),
        (f"odc/sat/{A}/event", False),
        (f"odc/sat/{A}/ack", False),
        (f"odc/sat/{A}/handover/{B}", False),
        ("odc/ground/req", False),
        # training is between the operator and the members
        (train(A), False),
        *((train(A, leaf), False) for leaf in TRAIN_LEAVES),
    ],
}


@pytest.mark.parametrize("user", list(PUBLISH))
async def test_each_role_publishes_only_what_it_must(deployment: Deployment, user: str) -> None:
    cases = PUBLISH[user]
    sentinel = "odc/test/sentinel"
    async with (
        connect(deployment, "spy") as spy,
        connect(deployment, "feeder") as feeder,
        connect(deployment, user) as bus,
        spy.subscribe("#") as seen,
    ):
        for topic, _ in cases:
            await bus.publish(topic, f"{user} {topic}".encode(), qos=1)
        await bus.flush()  # every PUBACK: the broker has routed (or dropped) each one
        await feeder.publish(sentinel, b"end", qos=1)
        got = await received_until(seen, sentinel)
    allowed = {t for t, ok in cases if ok}
    assert sorted(got - allowed) == [], f"{user} published where it must not"
    assert sorted(allowed - got) == [], f"{user} could not publish where it must"


PUBLISH["console"] = [
    ("odc/ground/req", True),
    (f"odc/sat/{A}/cmd", True),
    *((f"odc/sat/{A}/{leaf}", False) for leaf in (
        "status", "telemetry", "state", "event", "result", "ack", "job", "model")),
    ("odc/sat/console/status", False),
    (f"odc/sat/{A}/handover/{B}", False),
    ("odc/ground/stations", False),
    ("odc/ground/job/j1", False),
    ("odc/ground/rep/c1", False),
    (train(A), False),
    *((train(A, leaf), False) for leaf in TRAIN_LEAVES),
]


# (reader, topic, allowed): what each role may read (subscribed to "#": mosquitto grants
# every subscription and filters each message on delivery).
READ: dict[str, list[tuple[str, bool]]] = {
    A: [
        (f"odc/sat/{B}/job", False),
        (f"odc/sat/{B}/cmd", False),
        (f"odc/sat/{B}/model", False),
        (f"odc/sat/{B}/telemetry", False),
        (f"odc/sat/{B}/result", False),
        (f"odc/sat/{B}/event", False),
        (f"odc/sat/{B}/handover/{C}", False),
        ("odc/ground/req", False),
        ("odc/ground/rep/c1", False),
        ("odc/ground/job/j1", False),
        (train(B), False),  # another member's part of the training set
        (train(B, "done"), False),
        (train(B, "ckpt"), False),
        (train(A), True),
        (train(A, "grad"), True),
        (train(B, "grad"), True),  # every member's gradients
        (f"odc/sat/{A}/job", True),
        (f"odc/sat/{A}/cmd", True),
        (f"odc/sat/{A}/model", True),
        (f"odc/sat/{B}/handover/{A}", True),
        (f"odc/sat/{B}/state", True),
        (f"odc/sat/{B}/status", True),  # a pipeline member checks the next one's
        ("odc/ground/stations", True),
    ],
    "ground": [
        ("odc/ground/rep/c1", False),
        ("odc/ground/job/j1", False),
        ("odc/test/other", False),
        *((f"odc/sat/{A}/{leaf}", True) for leaf in (
            "status", "telemetry", "state", "event", "result", "ack", "job", "model", "cmd")),
        (f"odc/sat/{A}/handover/{B}", True),
        (train(A), True),
        *((train(A, leaf), True) for leaf in TRAIN_LEAVES),
        ("odc/ground/req", True),
    ],
    "operator": [
        (f"odc/sat/{A}/job", False),
        (f"odc/sat/{A}/cmd", False),
        (f"odc/sat/{A}/model", False),
        (f"odc/sat/{A}/handover/{B}", False),
        ("odc/ground/req", False),
        (train(A), False),  # another operator's training set
        (train(A, "grad"), False),
        (train(A, "done"), True),
        (train(A, "ckpt"), True),
        *((f"odc/sat/{A}/{leaf}", True)
          for leaf in ("status", "telemetry", "state", "event", "result", "ack")),
        ("odc/ground/stations", True),
        ("odc/ground/rep/c1", True),
        ("odc/ground/job/j1", True),
    ],
    "console": [
        (f"odc/sat/{A}/job", False),
        (f"odc/sat/{A}/cmd", False),
        (f"odc/sat/{A}/model", False),
        (f"odc/sat/{A}/result", False),
        (f"odc/sat/{A}/handover/{B}", False),
        ("odc/ground/req", False),
        (train(A), False),
        *((train(A, leaf), False) for leaf in TRAIN_LEAVES),
        *((f"odc/sat/{A}/{leaf}", True)
          for leaf in ("status", "telemetry", "state", "event", "ack")),
        ("odc/ground/stations", True),
        ("odc/ground/rep/c1", True),
        ("odc/ground/job/j1", True),
    ],
    "viewer": [
        *((f"odc/sat/{A}/{leaf}", False)
          for leaf in ("state", "event", "result", "ack", "job", "cmd", "model")),
        (f"odc/sat/{A}/handover/{B}", False),
        ("odc/ground/req", False),
        ("odc/ground/rep/c1", False),
        (train(A), False),
        *((train(A, leaf), False) for leaf in TRAIN_LEAVES),
        (f"odc/sat/{A}/telemetry", True),
        (f"odc/sat/{A}/status", True),
        ("odc/ground/job/j1", True),
    ],
}


@pytest.mark.parametrize("user", list(READ))
async def test_each_role_reads_only_what_it_needs(deployment: Deployment, user: str) -> None:
    cases = READ[user]
    assert cases[-1][1], "the last case is the sentinel: it must be readable"
    async with (
        connect(deployment, "feeder") as feeder,
        connect(deployment, user) as bus,
        bus.subscribe("#") as seen,
    ):
        for topic, _ in cases:  # one publisher, QoS 1: delivered in this order
            await feeder.publish(topic, f"for {user}".encode(), qos=1)
        got = await received_until(seen, cases[-1][0])
    allowed = {t for t, ok in cases[:-1] if ok}
    assert sorted(got - allowed) == [], f"{user} read what it must not"
    assert sorted(allowed - got) == [], f"{user} could not read what it needs"


async def test_node_reads_the_retained_ground_stations(deployment: Deployment) -> None:
    """Store and forward in Docker needs it (issue 13, finding 4): the ground retains the
    list before the node connects; the node gets it on subscribing. A forged list from an
    operator, a viewer or a node never replaces it."""
    announcement = b"stations from the ground"
    async with connect(deployment, "ground") as ground:
        await ground.publish("odc/ground/stations", announcement, qos=1, retain=True)
        await ground.flush()
    for forger in ("operator", "viewer", B):
        async with connect(deployment, forger) as bus:
            await bus.publish("odc/ground/stations", b"forged", qos=1, retain=True)
            await bus.flush()
    async with connect(deployment, A) as node, node.subscribe("odc/ground/stations") as sub:
        async with asyncio.timeout(5):
            msg = await sub.get()
    assert (msg.payload, msg.retain) == (announcement, True)


async def test_training_runs_through_the_roles(deployment: Deployment,
                                              tmp_path: Path) -> None:
    """``groundstation train`` as the operator account, two real nodes as theirs: every
    message of a run (jobs, gradients, checkpoints, ends) passes the roles, and the run
    ends with the parameters one node training on all the data reaches."""
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 40)
    x = rng.standard_normal((40, 8)) * 0.5
    x[np.arange(40), y] += 1.5
    clock = WallClock()
    async with contextlib.AsyncExitStack() as stack:
        for n in (A, B):
            bus = await stack.enter_async_context(connect(deployment, n))
            await stack.enter_async_context(running_node(bus, clock, tmp_path / n, node_id=n))
        op = await stack.enter_async_context(connect(deployment, "operator"))
        run = await run_training(op, "acl-t1", [A, B], [8, 6, 3], x, y, steps=6, lr=0.05,
                                 seed=7, step_timeout_s=10.0, timeout_s=60, max_attempts=1,
                                 checkpoint_dir=tmp_path / "ck", checkpoint_every=3)
    assert (run.status, run.epoch, run.members) == ("done", 0, [A, B]), run.reason
    assert read_checkpoint(tmp_path / "ck" / CHECKPOINT_NAME).step == 6
    ref = train_local([8, 6, 3], x, y, steps=6, lr=0.05, seed=7)
    for got, want in zip(run.params, ref, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


async def test_wrong_password_and_plain_tcp_are_refused(deployment: Deployment) -> None:
    with pytest.raises(BusError):
        async with MqttBus(deployment.url(A, "wrong"), "acl-bad", clean_start=True,
                           persistent_session=False, connect_timeout_s=1.0,
                           tls_context=deployment.tls()):
            pass
    plain = deployment.url(A).replace("mqtts://", "mqtt://")
    with pytest.raises(BusError):
        async with MqttBus(plain, "acl-plain", clean_start=True, persistent_session=False,
                           connect_timeout_s=1.0):
            pass


def test_ca_file_from_the_environment_is_enough(deployment: Deployment) -> None:
    """How the containers and the host CLIs connect: ``mqtts://`` plus ``ODC_CA_FILE``."""
    script = (
        "import asyncio, sys\n"
        "from flightsw.bus.mqtt import MqttBus\n"
        "async def main():\n"
        "    async with MqttBus(sys.argv[1], 'ca-env', clean_start=True,\n"
        "                       persistent_session=False, connect_timeout_s=5.0):\n"
        "        pass\n"
        "asyncio.run(main())\n"
    )
    env = {**os.environ, "ODC_CA_FILE": str(deployment.ca)}
    done = subprocess.run([sys.executable, "-c", script, deployment.url("viewer")], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ODC_MQTT_NODES": "sat-001:ok sat-002"}, "ODC_MQTT_NODES: 'sat-002' has no password"),
        ({"ODC_MQTT_OPERATORS": "bad/name:pw"}, "user name 'bad/name'"),
        ({"ODC_MQTT_NODES": "sat-001:a", "ODC_MQTT_OPERATORS": "sat-001:b"},
         "user 'sat-001' is given twice"),
        ({}, "no accounts"),
        ({"ODC_MQTT_GROUND": "ground:g", "ODC_MQTT_TLS_DIR": "/nonexistent"},
         "no /nonexistent/broker.crt"),
        ({"ODC_MQTT_GROUND": "ground:g", "ODC_MQTT_AUTOSAVE_S": "0"}, "ODC_MQTT_AUTOSAVE_S"),
    ],
)
def test_entrypoint_refuses_bad_settings(tmp_path: Path, env: dict[str, str],
                                         message: str) -> None:
    full = {k: v for k, v in os.environ.items() if not k.startswith("ODC_MQTT_")}
    full |= {"ODC_MQTT_RUN_DIR": str(tmp_path / "run"), **env}
    done = subprocess.run(["/bin/sh", str(MOSQUITTO_DIR / "entrypoint.sh")], env=full,
                          capture_output=True, text=True, timeout=10, check=False)
    assert done.returncode == 2
    assert message in done.stderr


async def test_persistence_survives_a_broker_kill(tmp_path: Path, brokers: Brokers) -> None:
    """Issue 13, finding 8: with ``persistence false`` a broker kill -9 lost every session,
    queued message and retained status. Now what the broker held at its last autosave comes
    back: a node's persistent session with the job queued for it, and the retained
    status."""
    env, passwords = broker_env(tmp_path)
    env["ODC_MQTT_AUTOSAVE_S"] = "1"
    data = str(tmp_path / "persist")
    port = brokers.start(ODC_MQTT_DATA_DIR=data, **env)
    d = Deployment(port, passwords, tmp_path / "secrets" / "clients" / "ca.crt")

    def node_bus() -> MqttBus:
        return MqttBus(d.url(A), f"odc-node-{A}", persistent_session=True,
                       connect_timeout_s=5.0, tls_context=d.tls())

    first = node_bus()
    # the subscription entered before the bus outlives it in the broker's session
    async with first.subscribe(f"odc/sat/{A}/job", qos=1), first:
        await first.publish(f"odc/sat/{A}/status", b"online", qos=1, retain=True)
        await first.flush()
    async with connect(d, "ground") as ground:  # the node is away: the broker queues it
        await ground.publish(f"odc/sat/{A}/job", b"job-1", qos=1)
        await ground.flush()
    await asyncio.sleep(2.5)  # past an autosave
    brokers.procs[0].kill()
    brokers.procs[0].wait(timeout=10)
    brokers.start(port=port, ODC_MQTT_DATA_DIR=data, **env)
    second = node_bus()
    async with second.subscribe(f"odc/sat/{A}/job", qos=1) as jobs, second:
        async with asyncio.timeout(5):
            job = await jobs.get()
    assert job.payload == b"job-1"
    async with connect(d, "operator") as op, op.subscribe(f"odc/sat/{A}/status") as status:
        async with asyncio.timeout(5):
            st = await status.get()
    assert (st.payload, st.retain) == (b"online", True)
