"""Two hosts' worth of brokers on loopback: a site broker (per-node ACL, the shipped
docker/mosquitto configuration) bridged to a core broker (the ground station's) with
docker/mosquitto/bridge.conf.example. Node traffic goes up once, uplinks come down once,
and a node still cannot speak for another node through the bridge.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from bus_drain import drain

from flightsw.bus import Subscription
from flightsw.bus.mqtt import MqttBus

pytestmark = pytest.mark.mqtt

MOSQUITTO_DIR = Path(__file__).resolve().parents[2] / "docker" / "mosquitto"
StartBroker = Callable[..., int]  # the start_broker fixture of tests/docker/conftest.py

# the core's extra rules for the bridge account (docs/docker.md, "Bridged mosquitto")
CORE_ACL = """\
user bridge-site-b
topic write odc/sat/sat-101/#
topic write odc/sat/sat-102/#
topic read odc/sat/#
"""


def bridge_conf(example: str, core_port: int) -> str:
    """The shipped example, pointed at the core on loopback without TLS."""
    lines = []
    for line in example.splitlines():
        if line.startswith(("bridge_cafile", "bridge_insecure")):
            continue
        if line.startswith("address "):
            lines.append(f"address 127.0.0.1:{core_port}")
        elif line.startswith("remote_password "):
            lines.append("remote_password bridge-pw")
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


@contextlib.asynccontextmanager
async def connect(url: str, name: str) -> AsyncIterator[MqttBus]:
    async with MqttBus(url, name, clean_start=True, persistent_session=False,
                       connect_timeout_s=5.0) as bus:
        yield bus


SETTLE_S = 0.7  # quiet time that ends a drain


async def until(sub: Subscription, topic: str, limit_s: float = 10.0) -> None:
    """Wait for the first ``topic`` on ``sub`` (the bridge takes a moment to connect)."""
    async with asyncio.timeout(limit_s):
        while (await sub.get()).topic != topic:
            pass


async def test_bridged_site_and_core(tmp_path: Path, start_broker: StartBroker) -> None:
    (tmp_path / "core.acl").write_text(CORE_ACL)
    core = start_broker(ODC_MQTT_GROUND="ground:g-pw", ODC_MQTT_USERS="bridge-site-b:bridge-pw",
                        ODC_MQTT_ACL_EXTRA=str(tmp_path / "core.acl"))
    conf = tmp_path / "bridge.conf"
    conf.write_text(bridge_conf((MOSQUITTO_DIR / "bridge.conf.example").read_text(), core))
    site = start_broker(ODC_MQTT_NODES="sat-101:n1-pw, sat-102:n2-pw",
                        ODC_MQTT_BRIDGE_CONF=str(conf))
    async with (
        connect(f"mqtt://ground:g-pw@127.0.0.1:{core}", "ground") as ground,
        connect(f"mqtt://sat-101:n1-pw@127.0.0.1:{site}", "sat-101") as n1,
        connect(f"mqtt://sat-102:n2-pw@127.0.0.1:{site}", "sat-102") as n2,
        ground.subscribe("odc/sat/#") as at_core,
        n1.subscribe("odc/sat/sat-101/job") as n1_jobs,
        n2.subscribe("odc/sat/+/state") as n2_state,
    ):
        # the bridge connects asynchronously: wait until a first message makes it up
        for _ in range(100):
            await n1.publish("odc/sat/sat-101/status", b"hello", qos=1)
            with contextlib.suppress(TimeoutError):
                await until(at_core, "odc/sat/sat-101/status", 0.2)
                break
        else:
            pytest.fail("the bridge did not carry a message to the core within ~20 s")
        await drain(at_core, 0.3)

        await n1.publish("odc/sat/sat-101/telemetry", b"t")
        await n1.publish("odc/sat/sat-101/state", b"s")
        await n1.publish("odc/sat/sat-102/telemetry", b"forged")  # refused by the site ACL
        await ground.publish("odc/sat/sat-101/job", b"j")
        await ground.publish("odc/sat/sat-102/job", b"j2")
        for bus in (n1, ground):
            await bus.flush()
        up = sorted((m.topic, m.payload) for m in await drain(at_core, SETTLE_S))
        down = [(m.topic, m.payload) for m in await drain(n1_jobs, SETTLE_S)]
        shared = [(m.topic, m.payload) for m in await drain(n2_state, SETTLE_S)]

    # each message exactly once: no echo back over the bridge, no loop
    assert up == [
        ("odc/sat/sat-101/job", b"j"),
        ("odc/sat/sat-101/state", b"s"),
        ("odc/sat/sat-101/telemetry", b"t"),
        ("odc/sat/sat-102/job", b"j2"),
    ]
    assert down == [("odc/sat/sat-101/job", b"j")]
    assert shared == [("odc/sat/sat-101/state", b"s")]
