"""``groundstation train``: refusals before any connection (bad checkpoint intervals, a
corrupt or foreign checkpoint), a real run on two nodes over mosquitto whose parameters are
one-node training's, and a run whose client is SIGKILLed mid-run and run again with the
same checkpoint directory: it resumes from the checkpoint instead of starting over."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from mosquitto import MosquittoProcess
from node_harness import running_node
from procs import ROOT

from flightsw.bus.mqtt import MqttBus
from flightsw.clock import WallClock
from flightsw.models.mlp_train import accuracy, init_params, train_local
from groundstation.cli import main
from groundstation.train_checkpoint import (
    Checkpoint,
    RunKey,
    data_sha256,
    read_checkpoint,
    write_checkpoint,
)

NO_BROKER = ["--broker", "mqtt://127.0.0.1:9", "--timeout", "1"]


def digits_npz(tmp_path: Path) -> Path:
    data = resources.files("groundstation.demo") / "data" / "digits_heldout.npz"
    with resources.as_file(data) as path:
        target = tmp_path / "digits.npz"
        target.write_bytes(path.read_bytes())
    return target


@pytest.mark.parametrize(("extra", "text"), [
    (["--x", "nope"], "no array 'nope'"),
    (["--sizes", "64,x"], "--sizes: expected comma-separated integers"),
    (["--sizes", "10,3"], "x: expected [items, 10]"),
    (["--holdout", "450"], "--holdout: must be in [0, 450)"),
    (["--x-scale", "0"], "--x-scale: must be positive"),
    (["--checkpoint-every", "5"], "--checkpoint-every: needs --checkpoint-dir"),
    (["--checkpoint-dir", "CK", "--checkpoint-every", "0"],
     "--checkpoint-every: must be a step count in [1, --steps 100], got 0"),
    (["--checkpoint-dir", "CK", "--checkpoint-every", "-3"],
     "--checkpoint-every: must be a step count in [1, --steps 100], got -3"),
    (["--checkpoint-dir", "CK", "--checkpoint-every", "101"],
     "--checkpoint-every: must be a step count in [1, --steps 100], got 101"),
    (["--checkpoint-dir", "CK", "--checkpoint-every", "ten"],
     "--checkpoint-every: invalid int value: 'ten'"),
    (["--steps", "0"], "--steps: must be at least 1, got 0"),
    (["--max-epochs", "0"], "--max-epochs: must be at least 1, got 0"),
])
def test_bad_arguments_are_refused_naming_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], text: str
) -> None:
    args = ["train", str(digits_npz(tmp_path)), "--nodes", "n1,n2", "--sizes", "64,8,10",
            "--x", "pixels", "--y", "labels", *NO_BROKER]
    # a later option wins: the bad one replaces the good default above
    extra = [str(tmp_path / "ck") if e == "CK" else e for e in extra]
    with contextlib.suppress(SystemExit):  # argparse's own refusals exit
        code = main([*args, *extra])
        assert code == 2
    assert text in capsys.readouterr().err
    assert not (tmp_path / "ck").exists()


def test_a_corrupt_or_foreign_checkpoint_is_refused_before_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / "checkpoint.npz").write_bytes(b"PK\x03\x04 half a file")
    args = ["train", str(digits_npz(tmp_path)), "--nodes", "n1", "--sizes", "64,8,10",
            "--x", "pixels", "--y", "labels", "--checkpoint-dir", str(ck), *NO_BROKER]
    assert main(args) == 2
    assert "checkpoint.npz: cannot read, corrupt or truncated" in capsys.readouterr().err
    # a real checkpoint of another run (other sizes) is refused naming the difference
    x, y = np.zeros((4, 64)), np.zeros(4, np.int64)
    key = RunKey(job_id="other", sizes=(64, 9, 10), seed=0, lr=0.01, total_items=4,
                 data_sha256=data_sha256(x, y))
    write_checkpoint(ck / "checkpoint.npz", Checkpoint(
        key=key, step=0, steps=100, epoch=0, members=["n1"], losses=[],
        params=init_params([64, 9, 10], 0)))
    assert main(args) == 2
    assert "sizes [64, 9, 10] differs from this run's [64, 8, 10]" in capsys.readouterr().err


def test_an_npy_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "x.npy", np.zeros((4, 64)))
    assert main(["train", str(tmp_path / "x.npy"), "--nodes", "n1", "--sizes", "64,10",
                 *NO_BROKER]) == 2
    assert "not a .npz file" in capsys.readouterr().err


@pytest.mark.mqtt
async def test_two_nodes_train_to_the_parameters_of_one(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    data = digits_npz(tmp_path)
    clock = WallClock()
    async with contextlib.AsyncExitStack() as stack:
        for n in ("n1", "n2"):
            bus = await stack.enter_async_context(MqttBus(mosquitto.url, client_id=f"node-{n}"))
            await stack.enter_async_context(running_node(bus, clock, tmp_path / n, node_id=n))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "groundstation.cli", "train", str(data),
            "--nodes", "n1,n2", "--sizes", "64,24,10", "--x", "pixels", "--y", "labels",
            "--x-scale", "16", "--holdout", "150", "--steps", "60", "--lr", "0.02",
            "--seed", "3", "--job-id", "cli-1", "-o", str(tmp_path / "params.npz"),
            "--broker", mosquitto.url, cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 180)
    assert proc.returncode == 0, err.decode()
    start, line = out.decode().strip().splitlines()
    assert start == "cli-1: epoch 0 on n1, n2 from step 0/60"
    assert line.startswith("cli-1: 2 members (n1, n2), epoch 0, 60 steps, loss ")
    assert "60 steps computed here" in line and "resumed" not in line
    assert "holdout accuracy" in line
    with np.load(tmp_path / "params.npz") as p:
        got = [p[k] for k in ("W0", "b0", "W1", "b1")]
    with np.load(data) as d:
        x, y = d["pixels"] / 16.0, d["labels"].astype(np.int64)
    ref = train_local([64, 24, 10], x[:300], y[:300], steps=60, lr=0.02, seed=3)
    for a, b in zip(got, ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)
    assert f"holdout accuracy {accuracy(got, x[300:], y[300:]):.4f}" in line


@pytest.mark.mqtt
async def test_a_client_killed_mid_run_resumes_from_its_checkpoint_when_run_again(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    data = digits_npz(tmp_path)
    ck = tmp_path / "ck"
    steps, every = 400, 50
    argv = [sys.executable, "-m", "groundstation.cli", "train", str(data), "--nodes",
            "n1,n2", "--sizes", "64,24,10", "--x", "pixels", "--y", "labels", "--x-scale",
            "16", "--holdout", "150", "--steps", str(steps), "--lr", "0.02", "--seed", "3",
            "--checkpoint-dir", str(ck), "--checkpoint-every", str(every),
            "--step-timeout", "5", "-o", str(tmp_path / "params.npz"),
            "--broker", mosquitto.url]
    clock = WallClock()
    async with contextlib.AsyncExitStack() as stack:
        for n in ("n1", "n2"):
            bus = await stack.enter_async_context(MqttBus(mosquitto.url, client_id=f"node-{n}"))
            await stack.enter_async_context(running_node(bus, clock, tmp_path / n, node_id=n))
        first = await asyncio.create_subprocess_exec(
            *argv, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        loop = asyncio.get_running_loop()
        end = loop.time() + 120
        while not (ck / "checkpoint.npz").exists():
            assert loop.time() < end and first.returncode is None, "no first checkpoint"
            await asyncio.sleep(0.005)
        first.send_signal(signal.SIGKILL)
        out1, _ = await first.communicate()
        assert first.returncode == -signal.SIGKILL
        assert out1.decode().startswith("train-")  # its progress: epoch 0 from step 0
        assert f"epoch 0 on n1, n2 from step 0/{steps}" in out1.decode()
        at_kill = read_checkpoint(ck / "checkpoint.npz")
        assert every <= at_kill.step < steps and at_kill.step % every == 0
        job_id = at_kill.key.job_id
        # the same command again (no --job-id): it takes the checkpoint's job and goes on
        second = await asyncio.create_subprocess_exec(
            *argv, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(second.communicate(), 180)
        assert second.returncode == 0, err.decode()
        summary = json.loads((ck / "summary.json").read_text())
        # and once more: the run is finished, nothing is computed
        third = await asyncio.create_subprocess_exec(
            *argv, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out3, err3 = await asyncio.wait_for(third.communicate(), 60)
        assert third.returncode == 0, err3.decode()
    lines = out.decode().strip().splitlines()
    assert lines[0].startswith(f"{job_id}: epoch 1 on n1, n2 from step ")
    start = int(lines[0].rsplit("from step ", 1)[1].split("/")[0])
    assert start >= at_kill.step  # at least where the file was at the kill, never 0
    final = lines[-1]
    assert final.startswith(f"{job_id}: 2 members (n1, n2), epoch 1, {steps} steps, loss ")
    assert f"resumed from step {start}, {steps - start} steps computed here" in final
    assert any(f"step {steps}/{steps}" in ln and "checkpoint" in ln for ln in lines)
    # the parameters are one node's training of all the steps
    with np.load(tmp_path / "params.npz") as p:
        got = [p[k] for k in ("W0", "b0", "W1", "b1")]
    with np.load(data) as d:
        x, y = d["pixels"] / 16.0, d["labels"].astype(np.int64)
    ref = train_local([64, 24, 10], x[:300], y[:300], steps=steps, lr=0.02, seed=3)
    for a, b in zip(got, ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-8)
    assert abs(accuracy(got, x[300:], y[300:]) - accuracy(ref, x[300:], y[300:])) <= 0.01
    assert summary["status"] == "done" and summary["step"] == steps
    assert summary["resumed_from"] == start and summary["epoch"] == 1
    assert f"resumed from step {steps}, 0 steps computed here" in out3.decode()
    assert json.loads((ck / "summary.json").read_text())["resumed_from"] == steps
