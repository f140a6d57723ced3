"""The broker configuration of docker/mosquitto (entrypoint.sh + acl) on a real mosquitto.

Runs the same entrypoint the broker container runs, with the host's mosquitto binary, and
checks who may publish and read what: a node only under its own topics, the ground station
everywhere it uplinks, operators only through the ground station's request topic.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from bus_drain import drain

from flightsw.bus.mqtt import MqttBus
from flightsw.exceptions import BusError

pytestmark = pytest.mark.mqtt

MOSQUITTO_DIR = Path(__file__).resolve().parents[2] / "docker" / "mosquitto"
StartBroker = Callable[..., int]  # the start_broker fixture of tests/docker/conftest.py
USERS = {"ground": "g-pw", "operator": "o-pw", "sat-001": "s1-pw", "sat-002": "s2-pw"}


@pytest.fixture
def broker_port(start_broker: StartBroker) -> int:
    port: int = start_broker(USERS)
    return port


@contextlib.asynccontextmanager
async def connect(port: int, user: str, password: str | None = None) -> AsyncIterator[MqttBus]:
    url = f"mqtt://{user}:{password or USERS[user]}@127.0.0.1:{port}"
    async with MqttBus(url, f"acl-test-{user}", clean_start=True, persistent_session=False,
                       connect_timeout_s=5.0) as bus:
        yield bus


SETTLE_S = 0.5  # quiet time that ends a drain


def test_entrypoint_rejects_missing_password(tmp_path: Path) -> None:
    env = {**os.environ, "ODC_MQTT_USERS": "ground:ok sat-001",
           "ODC_MQTT_RUN_DIR": str(tmp_path / "run")}
    done = subprocess.run(["/bin/sh", str(MOSQUITTO_DIR / "entrypoint.sh")], env=env,
                          capture_output=True, text=True, timeout=10, check=False)
    assert done.returncode == 2
    assert "'sat-001' has no password" in done.stderr


async def test_wrong_password_is_refused(broker_port: int) -> None:
    with pytest.raises(BusError):
        async with MqttBus(f"mqtt://sat-001:wrong@127.0.0.1:{broker_port}", "acl-bad",
                           clean_start=True, persistent_session=False, connect_timeout_s=1.0):
            pass


async def test_node_publishes_only_under_its_own_topics(broker_port: int) -> None:
    async with (
        connect(broker_port, "ground") as ground,
        connect(broker_port, "sat-001") as n1,
        ground.subscribe("odc/sat/#") as watcher,
    ):
        await n1.publish("odc/sat/sat-001/telemetry", b"own")
        await n1.publish("odc/sat/sat-002/telemetry", b"forged")
        await n1.publish("odc/sat/sat-001/handover/sat-002", b"handover")
        await n1.flush()
        got = {(m.topic, m.payload) for m in await drain(watcher, SETTLE_S)}
    assert got == {
        ("odc/sat/sat-001/telemetry", b"own"),
        ("odc/sat/sat-001/handover/sat-002", b"handover"),
    }


async def test_node_reads_only_what_is_addressed_to_it(broker_port: int) -> None:
    async with (
        connect(broker_port, "ground") as ground,
        connect(broker_port, "sat-001") as n1,
        connect(broker_port, "sat-002") as n2,
        n1.subscribe("odc/sat/#") as spy,
        n2.subscribe("odc/sat/#") as inbox,
    ):
        await ground.publish("odc/sat/sat-002/job", b"job")
        await ground.publish("odc/sat/sat-002/cmd", b"cmd")
        await n2.publish("odc/sat/sat-002/state", b"state")
        await n2.publish("odc/sat/sat-002/telemetry", b"telemetry")
        await n1.publish("odc/sat/sat-001/handover/sat-002", b"handover")
        for bus in (ground, n1, n2):
            await bus.flush()
        spied = {m.topic for m in await drain(spy, SETTLE_S)}
        delivered = {m.topic for m in await drain(inbox, SETTLE_S)}
    # sat-001 sees the shared state only, never sat-002's jobs, commands or telemetry
    assert spied == {"odc/sat/sat-002/state"}
    assert delivered == {
        "odc/sat/sat-002/job", "odc/sat/sat-002/cmd", "odc/sat/sat-002/state",
        "odc/sat/sat-001/handover/sat-002",
    }


async def test_ground_cannot_forge_node_traffic_and_operator_cannot_uplink(
    broker_port: int,
) -> None:
    async with (
        connect(broker_port, "ground") as ground,
        connect(broker_port, "operator") as op,
        connect(broker_port, "sat-001") as n1,
        n1.subscribe("odc/sat/#") as node_view,
        ground.subscribe("odc/#") as ground_view,
    ):
        await ground.publish("odc/sat/sat-001/telemetry", b"forged by ground")
        await op.publish("odc/sat/sat-001/job", b"operator bypassing the ground station")
        await op.publish("odc/ground/req", b"request")
        await ground.publish("odc/ground/rep/cli-1", b"reply")
        for bus in (ground, op):
            await bus.flush()
        assert [m.topic for m in await drain(node_view, SETTLE_S)] == []
        seen = {m.topic for m in await drain(ground_view, SETTLE_S)}
    assert seen == {"odc/ground/req", "odc/ground/rep/cli-1"}
