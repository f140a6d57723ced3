"""docker/healthcheck.py against a /proc-like tree and real heartbeat files."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("odc_healthcheck", DOCKER / "healthcheck.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


hc = _load()


def fake_proc(root: Path, *cmdlines: list[str]) -> Path:
    proc = root / "proc"
    (proc / "self").mkdir(parents=True)  # non-numeric entries are ignored
    for pid, args in enumerate(cmdlines, start=1):
        (proc / str(pid)).mkdir()
        (proc / str(pid) / "cmdline").write_bytes(b"\0".join(a.encode() for a in args) + b"\0")
    return proc


def node_cmd(data_dir: Path) -> list[str]:
    return ["/opt/odc/bin/python3", "/opt/odc/bin/flightsw", "node", "--id", "sat-001",
            "--data-dir", str(data_dir)]


def test_no_service_process_is_unhealthy(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, ["/sbin/docker-init", "--", "sleep", "9"], ["flightsw", "--help"])
    assert hc.check(proc, env={}) == (
        "no 'flightsw node', 'flightsw nodes' or 'groundstation serve' process is running"
    )


def test_running_node_without_heartbeat_is_healthy(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, node_cmd(tmp_path / "data"))
    assert hc.check(proc, env={}) is None


def test_fresh_heartbeat_is_healthy_and_stale_one_is_not(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    beat = data / "heartbeat"
    beat.write_text("1.0 3\n")
    proc = fake_proc(tmp_path, node_cmd(data))
    assert hc.check(proc, env={}) is None
    old = beat.stat().st_mtime - 600
    os.utime(beat, (old, old))
    reason = hc.check(proc, env={"ODC_HEALTH_MAX_AGE": "60"})
    assert reason is not None
    assert reason.startswith(f"flightsw: heartbeat {beat} is ")
    assert reason.endswith("(limit 60 s)")


def test_ground_station_heartbeat_is_in_its_archive(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "heartbeat").write_text("x")
    old = (archive / "heartbeat").stat().st_mtime - 120
    os.utime(archive / "heartbeat", (old, old))
    proc = fake_proc(tmp_path, ["groundstation", "serve", f"--archive={archive}"])
    reason = hc.check(proc, env={"ODC_HEALTH_MAX_AGE": "30"})
    assert reason is not None
    assert reason.startswith("groundstation: heartbeat")


def test_node_host_heartbeat_is_in_its_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "heartbeat").write_text("x")
    proc = fake_proc(tmp_path, ["/opt/odc/bin/flightsw", "nodes", "--scenario", "s.toml",
                                "--state-dir", str(state)])
    assert hc.check(proc, env={}) is None
    old = (state / "heartbeat").stat().st_mtime - 120
    os.utime(state / "heartbeat", (old, old))
    reason = hc.check(proc, env={"ODC_HEALTH_MAX_AGE": "30"})
    assert reason is not None
    assert reason.startswith(f"flightsw: heartbeat {state / 'heartbeat'} is ")
    bare = fake_proc(tmp_path / "env", ["flightsw", "nodes", "--scenario", "s.toml"])
    assert hc.check(bare, env={"ODC_DATA_DIR": str(state), "ODC_HEALTH_MAX_AGE": "30"})


def test_bad_max_age_names_the_variable(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, node_cmd(tmp_path))
    assert hc.check(proc, env={"ODC_HEALTH_MAX_AGE": "soon"}) == (
        "ODC_HEALTH_MAX_AGE: not a number: 'soon'"
    )


def test_node_data_dir_from_environment(tmp_path: Path) -> None:
    (tmp_path / "heartbeat").write_text("x")
    old = (tmp_path / "heartbeat").stat().st_mtime - 300
    os.utime(tmp_path / "heartbeat", (old, old))
    proc = fake_proc(tmp_path, ["flightsw", "node", "--id", "n"])
    assert hc.check(proc, env={"ODC_DATA_DIR": str(tmp_path)}) is not None
    assert hc.check(proc, env={}) is None


def test_script_exit_status_reflects_health(tmp_path: Path) -> None:
    """Run as docker runs it: a separate process, exit status and one line of output."""
    sick = fake_proc(tmp_path / "sick", ["flightsw", "--help"])
    well = fake_proc(tmp_path / "well", node_cmd(tmp_path / "data"))
    script = str(DOCKER / "healthcheck.py")
    for proc, code, line in ((sick, 1, "unhealthy: no 'flightsw node'"), (well, 0, "healthy")):
        done = subprocess.run([sys.executable, script, "--proc", str(proc)],
                              capture_output=True, text=True, timeout=60, check=False)
        assert (done.returncode, done.stdout.splitlines()[0][: len(line)]) == (code, line)
