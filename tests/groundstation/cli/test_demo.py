"""``flightsw demo`` end to end, as a user runs it: a child process, real MQTT, real files.

The command lives in ``groundstation/cli/demo.py``; ``flightsw`` finds it through the
``flightsw.commands`` entry point, and ``groundstation demo`` is the same command.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from mosquitto import MosquittoProcess

from flightsw.archive import ArchiveReader
from flightsw.cli import main
from flightsw.protocol import decode
from groundstation.cli import main as ground_main

ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.slow


def _env(tmp: Path) -> dict[str, str]:
    tmp.mkdir(exist_ok=True)
    return dict(os.environ, TMPDIR=str(tmp), PYTHONUNBUFFERED="1", NO_COLOR="1")


async def _spawn(tmp_path: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flightsw.cli", "demo", "--out", str(tmp_path / "out"), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=_env(tmp_path / "tmp"), cwd=ROOT, start_new_session=True,
    )  # fmt: skip


async def _finish(proc: asyncio.subprocess.Process, timeout_s: float, out: Path,
                  ) -> tuple[str, str]:
    """Wait for the demo to exit; on a timeout kill it and fail with the end of its log."""
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        log = (out / "demo.log").read_text() if (out / "demo.log").exists() else "(no log)"
        pytest.fail(f"demo still running after {timeout_s:.0f} s; demo.log ends:\n{log[-4000:]}")
    return stdout.decode(), stderr.decode()


def _group_members(pgid: int) -> list[int]:
    """Processes still in the demo's process group (it leads its own session)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive


def _port_free(port: int) -> bool:
    """No socket listens on ``port``. SO_REUSEADDR lets the bind pass over connections the
    broker closed first (TIME_WAIT on its port for a minute, timing-dependent), and still
    fails while anything listens there."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _summary(stdout: str) -> dict[str, str]:
    """The plain summary lines: ``key: value`` after the blank line that ends the view."""
    out: dict[str, str] = {}
    for line in stdout.splitlines():
        m = re.match(r"^(jobs completed|classifier accuracy|energy per job|migrations|archive"
                     r"|report): (.*)$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def _refused_results(log: str) -> set[tuple[str, str]]:
    """(job, node) of every result the ground refused as not from the lease holder (a node
    handed a job whose lease had lapsed meanwhile finishes it, but the job is queued
    again, held by nobody: the ground logs the refusal, and this count follows it)."""
    return set(re.findall(r"refused odc/sat/[^/]+/result: result for (\S+) from (\S+),", log))


def _lapsed_epochs(log: str) -> dict[str, int]:
    """The epoch each job was re-queued with when its lease lapsed at the ground. The ground
    decides a lapse alone (no message on a node's topic carries it): a job lapsed while its
    holder was out of contact, then expired at the ground before any new uplink, has no
    archived message at the new epoch, and its holder's late result is stale."""
    out: dict[str, int] = {}
    for job, epoch in re.findall(r"lease of (\S+) on \S+ lapsed: .*; re-queued with epoch (\d+)",
                                 log):
        out[job] = max(out.get(job, 0), int(epoch))
    return out


def _archived_done(
    archive: Path, refused: set[tuple[str, str]] | None = None,
    lapsed: dict[str, int] | None = None,
) -> dict[str, dict[str, object]]:
    """Jobs done by the archive's account: a done result at the highest epoch any of the
    job's messages carries, or the ground re-queued it with (a node whose lease lapsed may
    still finish the stale epoch: the ground ignores that result, and so does this count),
    from the job's holder."""
    latest: dict[str, int] = dict(lapsed or {})
    results: list[dict[str, object]] = []
    with ArchiveReader(archive) as reader:
        for rec in reader.records(topics=["odc/sat/+/job", "odc/sat/+/event",
                                          "odc/sat/+/result"]):
            msg = decode(rec.payload)
            if not isinstance(msg, dict) or "job_id" not in msg or "epoch" not in msg:
                continue
            job = str(msg["job_id"])
            latest[job] = max(latest.get(job, 0), int(msg["epoch"]))
            if rec.topic.endswith("/result"):
                results.append(msg)
    done: dict[str, dict[str, object]] = {}
    for msg in results:
        job = str(msg["job_id"])
        if (job, str(msg.get("node"))) in (refused or set()):
            continue
        if msg.get("status") == "done" and msg["epoch"] == latest[job]:
            done.setdefault(job, msg)
    return done


async def test_short_demo_summary_matches_archive(tmp_path: Path) -> None:
    proc = await _spawn(tmp_path, "--nodes", "3", "--minutes", "0.5", "--time-scale", "200")
    stdout, stderr = await _finish(proc, 120, tmp_path / "out")
    assert proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
    assert "\x1b[" not in stdout  # not a terminal: plain lines only
    port = int(re.search(r"broker: mqtt://127\.0\.0\.1:(\d+) \(embedded", stdout).group(1))

    s = _summary(stdout)
    done_n, submitted = (int(x) for x in re.match(r"(\d+)/(\d+)", s["jobs completed"]).groups())
    out = tmp_path / "out"
    archive = out / "archive" / "telemetry"
    assert s["archive"].startswith(str(archive))
    assert s["report"] == str(out / "report.png")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["completed"] == done_n and summary["submitted"] == submitted
    assert submitted >= 15 and done_n >= 1 and summary["interrupted"] is False

    # the archive, read independently, backs every figure
    log = (out / "demo.log").read_text()
    done = _archived_done(archive, _refused_results(log), _lapsed_epochs(log))
    assert len(done) == done_n
    with ArchiveReader(archive) as reader:
        topics = reader.topics()
    for node in ("sat1", "sat2", "sat3"):
        assert topics.get(f"odc/sat/{node}/telemetry", 0) >= 20, node
    classified = [m for m in done.values() if "label" in m["outputs"]]
    images = sum(int(m["items"]) for m in classified)
    assert images == summary["classifier_images"] > 0
    acc = float(re.match(r"([\d.]+)%", s["classifier accuracy"]).group(1))
    assert acc == pytest.approx(100.0 * summary["classifier_correct"] / images, abs=0.05)
    assert 85.0 <= acc <= 100.0  # 97.1 % held-out accuracy (examples/models/README.md)
    energy = [float(m["modelled_energy_j"]) for m in done.values()]
    assert summary["energy_per_job_j"] == pytest.approx(sum(energy) / len(energy), rel=1e-6)
    assert re.match(r"\d+ ", s["migrations"])
    assert int(s["migrations"].split()[0]) == summary["migrations"]

    png = (out / "report.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    # nothing left behind
    assert list((tmp_path / "tmp").iterdir()) == []
    assert _group_members(proc.pid) == []
    assert _port_free(port)


async def test_sigint_stops_cleanly(tmp_path: Path) -> None:
    proc = await _spawn(tmp_path, "--nodes", "3", "--minutes", "2", "--time-scale", "100")
    assert proc.stdout is not None
    seen: list[str] = []
    port = 0

    async def until_running() -> None:
        nonlocal port
        assert proc.stdout is not None
        while True:
            line = (await proc.stdout.readline()).decode()
            assert line, "demo exited early:\n" + "".join(seen)
            seen.append(line)
            if m := re.search(r"broker: mqtt://127\.0\.0\.1:(\d+)", line):
                port = int(m.group(1))
            if "uplink to sat" in line:  # jobs are flowing: mid-run
                return

    try:
        await asyncio.wait_for(until_running(), 60)
    except (TimeoutError, AssertionError):
        proc.kill()
        await proc.wait()
        raise
    assert not _port_free(port)
    tmp_dirs = list((tmp_path / "tmp").iterdir())
    assert [p.name.startswith("flightsw-demo-") for p in tmp_dirs] == [True]
    proc.send_signal(signal.SIGINT)
    rest, stderr = await _finish(proc, 60, tmp_path / "out")
    stdout = "".join(seen) + rest
    assert proc.returncode == 130, stdout[-3000:] + stderr[-3000:]
    assert "Traceback" not in stderr
    assert re.search(r"^demo interrupted after [\d.]+ mission minutes", stdout, re.M)
    assert "jobs completed: " in stdout
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["interrupted"] is True
    assert list((tmp_path / "tmp").iterdir()) == []
    assert _group_members(proc.pid) == []
    assert _port_free(port)


async def test_against_an_existing_broker(tmp_path: Path, mosquitto: MosquittoProcess) -> None:
    proc = await _spawn(tmp_path, "--broker", mosquitto.url, "--nodes", "2",
                        "--minutes", "0.25", "--time-scale", "400")
    stdout, stderr = await _finish(proc, 90, tmp_path / "out")
    assert proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
    assert f"broker: {mosquitto.url}" in stdout and "embedded" not in stdout
    s = _summary(stdout)
    done_n = int(s["jobs completed"].split("/")[0])
    log = (tmp_path / "out" / "demo.log").read_text()
    assert done_n == len(_archived_done(tmp_path / "out" / "archive" / "telemetry",
                                        _refused_results(log), _lapsed_epochs(log)))
    assert "telemetry from 2 of 2 nodes" in s["archive"]
    assert mosquitto.running  # the demo leaves a broker it did not start alone
    assert list((tmp_path / "tmp").iterdir()) == []


def test_bad_options_name_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--nodes", "0", "--out", str(tmp_path / "o")]) == 2
    assert "--nodes" in capsys.readouterr().err
    assert main(["demo", "--time-scale", "-1", "--out", str(tmp_path / "o")]) == 2
    assert "--time-scale" in capsys.readouterr().err
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    assert main(["demo", "--out", str(foreign)]) == 2
    assert "--out" in capsys.readouterr().err
    assert (foreign / "thesis.tex").read_text() == "precious"
    assert main(["demo", "--models", str(tmp_path), "--out", str(tmp_path / "o2")]) == 2
    assert "--models" in capsys.readouterr().err
    assert main(["demo", "--broker", "http://x", "--out", str(tmp_path / "o3")]) == 2
    assert "broker" in capsys.readouterr().err.lower()
    assert main(["demo", "--policy", "fastest", "--out", str(tmp_path / "o4")]) == 2
    assert "policy" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # refused before anything was written


@pytest.mark.parametrize(("cli", "prog"), [(main, "flightsw"), (ground_main, "groundstation")])
def test_demo_is_a_command_of_both_command_lines(
    cli: Callable[[list[str]], int], prog: str, capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as done:
        cli(["demo", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {prog} demo ") and "--time-scale" in out
