"""``groundstation replay``: export paths, errors (exit 2), progress, and MQTT replay."""

from __future__ import annotations

import asyncio
import io
import json
import shlex
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from mosquitto import MosquittoProcess

from flightsw.archive import ArchiveReader, ArchiveWriter
from flightsw.bus import MqttBus
from groundstation.cli import main
from groundstation.cli.replay import ProgressBar
from groundstation.export import load

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_export_to_file(mission: Any, tmp_path: Path, fmt: str,
                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / f"x.{fmt}"
    code = main(["replay", str(mission.path), "--to", fmt, "--out", str(out),
                 "--node", "sat-001", "--start", "2026-09-21T15:00:00Z",
                 "--end", "2026-09-21T16:00:00"])
    assert code == 0
    rows = list(load(out, fmt))
    assert rows
    assert {r["node"] for r in rows} == {"sat-001"}
    assert all(1_790_002_800.0 <= r["rx_t"] < 1_790_006_400.0 for r in rows)
    err = capsys.readouterr().err
    assert f"exported {len(rows)} rows to {out}" in err


def test_jsonl_to_stdout(mission: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(mission.path), "--to", "jsonl", "--topic",
                 "odc/sat/+/status", "--no-progress"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["state"] for line in out] == ["online"] * 3


def test_progress_bar_when_asked(mission: Any, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(mission.path), "--to", "csv", "--out",
                 str(tmp_path / "t.csv"), "--progress"]) == 0
    err = capsys.readouterr().err
    n = len(mission.records)
    assert f"100.0% {n:,}/{n:,}" in err
    assert "export csv [" in err


def test_progress_bar_rendering() -> None:
    t = [0.0]
    stream = io.StringIO()
    bar = ProgressBar(200, label="replay", now=lambda: t[0], stream=stream, width=10)
    t[0] = 2.0
    bar.update(50)
    assert bar.render(2.0) == "replay [##........]  25.0% 50/200 25/s eta 6 s"
    t[0] = 2.5
    bar.update(60)  # not a TTY: at most one line a second
    bar.close()
    assert stream.getvalue().count("\n") == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{missing}"], "no such directory"),
        (["{empty}"], "holds no records"),
        (["{arch}", "--start", "2030-01-01T00:00Z"], "misses the archive"),
        (["{arch}", "--start", "2026-09-21T15:00Z", "--end", "2026-09-21T14:00Z"],
         "must be before end"),
        (["{arch}", "--start", "yesterday"], "--start: 'yesterday' is not an ISO 8601"),
        (["{arch}", "--node", "sat-404", "--to", "jsonl"], ""),
        (["{arch}", "--to", "csv", "--kind", "gossip"], "kind: 'gossip' has no protocol"),
        (["{arch}", "--to", "parquet"], "parquet cannot go to stdout"),
        (["{arch}", "--kind", "telemetry"], "--kind: only applies to exports"),
    ],
)
def test_errors_exit_2(mission: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                       args: list[str], message: str) -> None:
    empty = tmp_path / "empty"
    with ArchiveWriter(empty):
        pass
    paths = {"missing": tmp_path / "nope", "empty": empty, "arch": mission.path}
    argv = ["replay", *(a.format(**paths) for a in args)]
    code = main(argv)
    err = capsys.readouterr().err
    if message:
        assert code == 2
        assert "groundstation replay: error:" in err
        assert message in err
    else:  # no record of that node: an empty export is not an error
        assert code == 0
        assert "exported 0 rows" in err


def test_bad_speed_is_a_usage_error(mission: Any) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["replay", str(mission.path), "--speed", "0"])
    assert exc.value.code == 2


@pytest.mark.mqtt
async def test_replay_to_a_real_broker(tmp_path: Path, mosquitto: MosquittoProcess,
                                       mission_writer: Any) -> None:
    log = mission_writer.write(tmp_path / "a", nodes={"sat-001": "h100-sxm",
                                                      "sat-002": "tpu-v6e"},
                               hours=0.25, period_s=10.0)
    n = len(log.records)
    span = max(r[0] for r in log.records) - min(r[0] for r in log.records)
    speed = span / 1.0  # about one second of replay
    async with (
        MqttBus(mosquitto.url, client_id="replay-test-sub", clean_start=True) as bus,
        bus.subscribe("odc/sat/#") as sub,
    ):
        code = await asyncio.to_thread(
            main, ["replay", str(tmp_path / "a"), "--broker", mosquitto.url,
                   "--speed", str(speed), "--no-progress"])
        assert code == 0
        async with asyncio.timeout(10):
            got = [await sub.get() for _ in range(n)]
    by_topic: dict[str, list[bytes]] = {}
    for m in got:
        by_topic.setdefault(m.topic, []).append(m.payload)
    want: dict[str, list[bytes]] = {}
    for _, topic, payload in log.records:
        want.setdefault(topic, []).append(payload)
    assert by_topic == want  # every message, in order on each topic
    # status was published retained: a new subscriber gets it from the broker
    async with (
        MqttBus(mosquitto.url, client_id="replay-test-late", clean_start=True) as late_bus,
        late_bus.subscribe("odc/sat/+/status") as late,
        asyncio.timeout(10),
    ):
        retained = [await late.get() for _ in range(2)]
    assert all(m.retain for m in retained)
    assert sorted(m.topic for m in retained) == ["odc/sat/sat-001/status",
                                                 "odc/sat/sat-002/status"]
    assert ArchiveReader(tmp_path / "a").count() == n


def test_export_into_a_closed_pipe_ends_quietly(mission: Any, tmp_path: Path) -> None:
    """``replay ... --to csv --out - | head`` stops without a BrokenPipeError traceback."""
    full = tmp_path / "all.csv"
    assert main(["replay", str(mission.path), "--to", "csv", "--out", str(full),
                 "--no-progress"]) == 0
    assert full.stat().st_size > 256 * 1024  # more than a pipe holds: the pipe does break
    cmd = (f"{shlex.quote(sys.executable)} -m groundstation.cli replay "
           f"{shlex.quote(str(mission.path))} --to csv --out - --no-progress | head -n 3; "
           "echo \"status=${PIPESTATUS[0]}\" >&2")
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, check=False)
    assert proc.stdout.splitlines() == full.read_text().splitlines()[:3]
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
    assert "status=141" in proc.stderr  # ended as by SIGPIPE, like any Unix filter


@pytest.mark.mqtt
async def test_replay_refused_by_the_acl_reports_failure(
    tmp_path: Path, mission_writer: Any,
    mosquitto_factory: Callable[..., Awaitable[MosquittoProcess]],
) -> None:
    """An MQTT 3.1.1 broker acknowledges and drops a publish its ACL forbids: the replay
    must not claim success then."""
    log = mission_writer.write(tmp_path / "a", nodes={"sat-001": "h100-sxm"}, hours=0.1,
                               period_s=10.0)
    pw = tmp_path / "passwd"
    for user in ("viewer", "writer"):
        subprocess.run(["mosquitto_passwd", "-b", *(["-c"] if user == "viewer" else []),
                        str(pw), user, "secret"], check=True, capture_output=True)
    acl = tmp_path / "acl"
    acl.write_text("user viewer\ntopic read odc/#\n\nuser writer\ntopic readwrite odc/#\n")
    broker = await mosquitto_factory(password_file=pw, acl_file=acl)

    def replay_as(user: str) -> tuple[int, str]:
        proc = subprocess.run(
            [sys.executable, "-m", "groundstation.cli", "replay", str(tmp_path / "a"),
             "--broker", f"mqtt://{user}:secret@127.0.0.1:{broker.port}", "--speed", "max",
             "--no-progress"],
            capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
        return proc.returncode, proc.stderr

    code, err = await asyncio.to_thread(replay_as, "viewer")
    assert code == 2, err
    assert "ACL" in err and "messages from" not in err  # no "replayed N messages" claim
    code, err = await asyncio.to_thread(replay_as, "writer")
    assert code == 0, err
    assert f"replayed {len(log.records)} messages" in err


def test_progress_bar_on_a_terminal_is_rich() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    t = [0.0]
    stream = Tty()
    bar = ProgressBar(200, label="replay", now=lambda: t[0], stream=stream)
    for done in (50, 120, 200):
        t[0] += 1.0
        bar.update(done)
    bar.close()
    text = stream.getvalue()
    assert "replay" in text and "200/200" in text and "100%" in text
