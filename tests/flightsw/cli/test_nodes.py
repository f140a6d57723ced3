"""``flightsw nodes``: a node host running a scenario's nodes, end to end over mosquitto."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from mosquitto import MosquittoProcess
from node_harness import DIGITS, digits_inputs
from procs import Procs

from flightsw.archive import ArchiveReader
from flightsw.broker import free_port
from flightsw.bus.mqtt import MqttBus
from flightsw.cli import main
from flightsw.clock import WallClock
from flightsw.exceptions import ConfigError
from flightsw.node.roster import NodeSettings, scenario_roster
from flightsw.physics.orbit import CircularOrbits
from flightsw.protocol import decode
from flightsw.protocol.messages import tensors_to_arrays
from flightsw.sim.scenario import load_scenario
from flightsw.sim.world import build_world
from groundstation.cli.keys import make_keys
from groundstation.client import GroundClient

EPOCH = "2026-03-20T00:00:00Z"
SELECTED = ["P00S00", "P00S01", "P00S02", "P01S00", "P01S01"]  # P01S02 left out

SCENARIO = f"""
name = "tiny"
start = "{EPOCH}"
duration_hours = 1.0
step_s = 10.0

[constellation]
walker = {{ total = 6, planes = 2, phasing = 1, altitude_km = 550.0, inclination_deg = 53.0 }}

[profiles]
default = "jetson-agx-orin"
nodes = {{ P01S01 = "jetson-orin-nano-super" }}

[scheduler]
policy = "local"
lease_s = 45.0

[[ground_stations]]
name = "weilheim"
lat_deg = 47.88
lon_deg = 11.08
alt_m = 600.0

[[jobs]]
name = "digits"
model = "{DIGITS}"
origin = "ground"
rate_per_node_per_hour = 1.0
deadline_s = 600.0
"""


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(SCENARIO)
    return path


def test_roster_is_the_simulators_constellation(scenario: Path, tmp_path: Path) -> None:
    sc = load_scenario(scenario)
    world = build_world(sc)
    settings = NodeSettings(state_dir=tmp_path / "state", command_key="{node}-cmd",
                            command_keys={"P00S02": "its-own"})
    roster = scenario_roster(sc, settings, "P00*,P01S01")
    assert [h.config.node_id for h in roster] == ["P00S00", "P00S01", "P00S02", "P01S01"]
    assert isinstance(world.orbits, CircularOrbits)
    for hosted in roster:
        i = world.names.index(hosted.config.node_id)
        assert hosted.profile == world.profiles[i]
        assert hosted.config.data_dir == tmp_path / "state" / hosted.config.node_id
        assert hosted.config.lease_s == 45.0 and hosted.config.policy == "local"
        own = "its-own" if hosted.config.node_id == "P00S02" else f"{hosted.config.node_id}-cmd"
        assert hosted.config.command_key == own  # each node its own telecommand key
        orbit = hosted.config.orbit
        assert orbit.raan_deg == pytest.approx(world.orbits.raan_deg[i])
        assert orbit.arg_latitude_deg == pytest.approx(world.orbits.arg_latitude_deg[i])
        # the same position as the simulator's row, an hour after the scenario's start
        t = sc.start_t + 3600.0
        assert np.allclose(hosted.orbits.positions(t)[0], world.orbits.positions(t)[i])
    assert roster[-1].profile.name == "jetson-orin-nano-super"
    assert roster[0].profile is roster[1].profile  # one profile object for its nodes
    assert roster[0].config.seed != roster[1].config.seed


def test_roster_errors_name_what_is_wrong(scenario: Path, tmp_path: Path) -> None:
    sc = load_scenario(scenario)
    settings = NodeSettings(state_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"pattern 'P9\*' matches none of the 6 satellites"):
        scenario_roster(sc, settings, "P00*,P9*")
    with pytest.raises(ConfigError, match="an empty pattern"):
        scenario_roster(sc, settings, "P00*,")
    keys = tmp_path / "keys"
    make_keys(keys, ["P00S00"])
    with pytest.raises(ConfigError, match=r"no key for node P00S01 \(.*P00S01.key is missing"):
        scenario_roster(sc, NodeSettings(state_dir=tmp_path, node_keys=keys), "P00*")


def test_cli_refuses_a_bad_pattern_or_scenario(scenario: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nodes", "--scenario", str(scenario), "--only", "Q*"]) == 2
    assert "pattern 'Q*' matches none of the 6 satellites" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text(SCENARIO.replace("total = 6", "total = 7"))
    assert main(["nodes", "--scenario", str(bad)]) == 2
    assert "constellation.walker" in capsys.readouterr().err
    assert main(["nodes", "--scenario", str(tmp_path / "missing.toml")]) == 2
    assert "missing.toml" in capsys.readouterr().err


@pytest.mark.mqtt
@pytest.mark.slow
async def test_node_host_runs_jobs_from_the_ground_on_several_nodes(
    mosquitto: MosquittoProcess, scenario: Path, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    make_keys(keys, [*SELECTED, "P01S02"])
    procs = Procs(tmp_path / "procs", epoch=EPOCH, scale=1.0)
    try:
        procs.ground(mosquitto.url, tmp_path / "gs", extra=["--node-keys", str(keys)])
        host = procs.spawn("host", [
            sys.executable, "-m", "flightsw.cli", "nodes", "--scenario", str(scenario),
            "--only", "P00*,P01S00,P01S01", "--broker", mosquitto.url,
            "--state-dir", str(tmp_path / "state"), "--node-keys", str(keys),
            "--log-level", "INFO", *procs.clock_args(),
        ])
        loop = asyncio.get_running_loop()
        end = loop.time() + 60
        while "5 nodes online" not in procs.log("host"):
            assert host.poll() is None, procs.log("host")[-3000:]
            assert loop.time() < end, procs.log("host")[-3000:]
            await asyncio.sleep(0.2)
        x = digits_inputs(len(SELECTED) * 3)
        bare = ort.InferenceSession(str(DIGITS), providers=["CPUExecutionProvider"])
        names = [o.name for o in bare.get_outputs()]
        async with (
            MqttBus(mosquitto.url, client_id="nodes-test", clean_start=True) as bus,
            GroundClient(bus, WallClock(), client_id="nodes-test", timeout_s=30) as gc,
        ):
            model = await gc.upload_model(DIGITS)
            # each selected node gets jobs through the ground: three rows each, one job each
            records = await asyncio.gather(*(
                gc.run(model, {"input": x[3 * k:3 * k + 3]}, node=node, timeout_s=60)
                for k, node in enumerate(SELECTED)))
            # every node online sealed its retained status with its own key (the ground
            # with --node-keys takes nothing else); the unselected node never came up
            online: dict[str, str] = {}
            async with bus.subscribe("odc/sat/+/status", qos=1) as sub:
                while len(online) < len(SELECTED):
                    msg = await asyncio.wait_for(anext(aiter(sub)), 10)
                    body = decode(msg.payload)
                    online[body["node"]] = body["state"]
                    assert "auth" in body, body
        for k, (node, rec) in enumerate(zip(SELECTED, records, strict=True)):
            assert rec.state == "done" and rec.node == node, (rec.state, rec.reason)
            assert rec.duplicates == 0
            assert rec.outputs is not None
            got = tensors_to_arrays(rec.outputs, "outputs")
            want = bare.run(None, {"input": x[3 * k:3 * k + 3]})
            for name, value in zip(names, want, strict=True):
                assert np.array_equal(got[name], value), (node, name)
        assert online == dict.fromkeys(SELECTED, "online")
        for node in SELECTED:  # its own state directory: the model it received, stored
            assert list((tmp_path / "state" / node / "models").glob("*.onnx")), node
        assert not (tmp_path / "state" / "P01S02").exists()
    finally:
        procs.close()
    assert host.returncode == 0, procs.log("host")[-3000:]
    with ArchiveReader(tmp_path / "gs" / "telemetry") as reader:  # the ground heard them all
        assert reader.nodes() == SELECTED


def test_roster_of_a_tle_constellation(tmp_path: Path) -> None:
    lines = (Path(__file__).parents[1] / "physics" / "data" / "iss_2019-12-09.tle"
             ).read_text().splitlines()
    (tmp_path / "two.tle").write_text("\n".join(["SAT-A", *lines[1:3], "SAT-B", *lines[1:3]]))
    text = SCENARIO.replace(
        "walker = { total = 6, planes = 2, phasing = 1, altitude_km = 550.0, "
        "inclination_deg = 53.0 }", 'tle_file = "two.tle"').replace(
        'nodes = { P01S01 = "jetson-orin-nano-super" }', "")
    (tmp_path / "tle.toml").write_text(text)
    sc = load_scenario(tmp_path / "tle.toml")
    world = build_world(sc)
    roster = scenario_roster(sc, NodeSettings(state_dir=tmp_path), "SAT-B")
    assert [h.config.node_id for h in roster] == ["SAT-B"]
    assert roster[0].config.orbit.tle_file == tmp_path / "two.tle"
    assert roster[0].config.orbit.tle_name == "SAT-B"
    t = sc.start_t
    assert np.allclose(roster[0].orbits.positions(t)[0], world.orbits.positions(t)[1])
    # a TLE name that cannot be a node id is refused, naming it
    (tmp_path / "two.tle").write_text("\n".join(lines[:3]))
    with pytest.raises(ConfigError, match=r"node ISS \(ZARYA\): node_id: String should match"):
        scenario_roster(load_scenario(tmp_path / "tle.toml"), NodeSettings(state_dir=tmp_path))


def test_a_signal_while_starting_stops_the_host_at_once(scenario: Path, tmp_path: Path) -> None:
    # nothing listens on the port: every node retries its connection (for up to 10 s)
    port = free_port("127.0.0.1")
    procs = Procs(tmp_path / "procs", epoch=EPOCH, scale=1.0)
    try:
        host = procs.spawn("host", [
            sys.executable, "-m", "flightsw.cli", "nodes", "--scenario", str(scenario),
            "--broker", f"mqtt://127.0.0.1:{port}", "--state-dir", str(tmp_path / "state"),
            *procs.clock_args(),
        ])
        end = time.monotonic() + 30
        while "cannot connect" not in procs.log("host"):
            assert host.poll() is None, procs.log("host")
            assert time.monotonic() < end, procs.log("host")
            time.sleep(0.05)
        t0 = time.monotonic()
        host.send_signal(signal.SIGTERM)
        assert host.wait(8) == 0, procs.log("host")
        assert time.monotonic() - t0 < 5, procs.log("host")
        assert "nodes online" not in procs.log("host")
    finally:
        procs.close()
