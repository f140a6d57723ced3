"""NodeHost in-process over a real mosquitto: per-node broker accounts, one inference pool,
and a node the broker refuses stopping the host with that node's error."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from mosquitto import MosquittoProcess
from node_harness import DIGITS

from flightsw.bus.mqtt import MqttBus
from flightsw.bus.url import parse_broker_url
from flightsw.clock import WallClock
from flightsw.exceptions import BusError, ConfigError
from flightsw.node.host import NodeHost, node_broker_url, parse_pairs
from flightsw.node.roster import NodeSettings, scenario_roster
from flightsw.protocol import decode
from flightsw.sim.scenario import load_scenario

pytestmark = [pytest.mark.mqtt]

SCENARIO = f"""
start = "2026-03-20T00:00:00Z"
duration_hours = 1.0

[constellation]
walker = {{ total = 4, planes = 2, phasing = 1, altitude_km = 550.0, inclination_deg = 53.0 }}

[profiles]
default = "jetson-agx-orin"

[scheduler]
policy = "local"

[[jobs]]
name = "digits"
model = "{DIGITS}"
rate_per_node_per_hour = 1.0
deadline_s = 600.0
"""


def _accounts(path: Path, users: list[str]) -> Path:
    for k, user in enumerate(users):
        subprocess.run(["mosquitto_passwd", "-b", *(["-c"] if k == 0 else []), str(path),
                        user, f"pw-{user}"], check=True, capture_output=True)
    return path


def test_broker_url_template() -> None:
    assert node_broker_url("mqtt://{node}:pw-{node}@h:1", "P00S01") == "mqtt://P00S01:pw-P00S01@h:1"
    assert node_broker_url("mqtt://h:1", "P00S01") == "mqtt://h:1"
    passwords = parse_pairs("P00S01:a/b@c  P00S02:x\n")
    assert passwords == {"P00S01": "a/b@c", "P00S02": "x"}
    url = node_broker_url("mqtts://{node}:{password}@h:1", "P00S01", passwords)
    assert url == "mqtts://P00S01:a%2Fb%40c@h:1"
    assert parse_broker_url(url).password == "a/b@c"
    with pytest.raises(ConfigError, match="no password for node P00S03"):
        node_broker_url("mqtt://{node}:{password}@h:1", "P00S03", passwords)
    with pytest.raises(ConfigError, match="ODC_COMMAND_KEYS: 'P00S04' is not node:secret"):
        parse_pairs("P00S01:a P00S04", "ODC_COMMAND_KEYS")


def test_a_host_needs_distinct_nodes(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(SCENARIO)
    roster = scenario_roster(load_scenario(tmp_path / "s.toml"), NodeSettings(state_dir=tmp_path))
    with pytest.raises(ConfigError, match="at least one node"):
        NodeHost([], "mqtt://127.0.0.1:1", WallClock())
    with pytest.raises(ConfigError, match="distinct ids"):
        NodeHost([roster[0], roster[0]], "mqtt://127.0.0.1:1", WallClock())


async def test_nodes_with_their_own_accounts_and_one_refused(
    mosquitto_factory: Callable[..., Awaitable[MosquittoProcess]], tmp_path: Path
) -> None:
    (tmp_path / "s.toml").write_text(SCENARIO)
    sc = load_scenario(tmp_path / "s.toml")
    # accounts for the nodes of plane 0 and an observer; P01S00 has none
    accounts = _accounts(tmp_path / "passwords", ["P00S00", "P00S01", "observer"])
    broker = await mosquitto_factory(password_file=accounts)
    template = f"mqtt://{{node}}:{{password}}@127.0.0.1:{broker.port}"
    passwords = {n: f"pw-{n}" for n in ("P00S00", "P00S01", "P01S00")}
    settings = NodeSettings(state_dir=tmp_path / "state")
    clock = WallClock()
    observer = f"mqtt://observer:pw-observer@127.0.0.1:{broker.port}"
    async with MqttBus(observer, client_id="observer", clean_start=True) as bus:
        async with (
            bus.subscribe("odc/sat/+/status", qos=1) as sub,
            NodeHost(scenario_roster(sc, settings, "P00*"), template, clock,
                     start_concurrency=1, passwords=passwords) as host,
        ):
            assert sorted(host.nodes) == ["P00S00", "P00S01"]
            assert all(n.executor.pool is host.pool for n in host.nodes.values())
            seen: dict[str, str] = {}
            while len(seen) < 2 or set(seen.values()) != {"online"}:
                body = decode((await asyncio.wait_for(anext(aiter(sub)), 10)).payload)
                seen[body["node"]] = body["state"]
            assert sorted(seen) == ["P00S00", "P00S01"]
        # a node the broker refuses stops the host with its error; the others stop too
        roster = scenario_roster(sc, settings, "P00*,P01S00")
        host = NodeHost(roster, template, clock, passwords=passwords)
        async with asyncio.timeout(60):
            with pytest.raises(ExceptionGroup) as info:
                async with host:
                    pytest.fail("the host started although P01S00 has no account")
        errors = info.value.exceptions
        assert any(isinstance(e, BusError) and "odc-node-P01S00" in str(e) for e in errors), errors
        assert host.nodes == {}
