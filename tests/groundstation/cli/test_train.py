"""``groundstation train``: refusals before any connection, and a real run on two nodes
over mosquitto whose parameters are one-node training's."""

from __future__ import annotations

import asyncio
import contextlib
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
from flightsw.models.mlp_train import accuracy, train_local
from groundstation.cli import main

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
])
def test_bad_arguments_are_refused_naming_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], text: str
) -> None:
    args = ["train", str(digits_npz(tmp_path)), "--nodes", "n1,n2", "--sizes", "64,8,10",
            "--x", "pixels", "--y", "labels", *NO_BROKER]
    # a later option wins: the bad one replaces the good default above
    code = main([*args, *extra])
    assert code == 2
    assert text in capsys.readouterr().err


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
    line = out.decode().strip()
    assert line.startswith("cli-1: 2 members (n1, n2), attempt 1, 60 steps, loss ")
    assert "holdout accuracy" in line
    with np.load(tmp_path / "params.npz") as p:
        got = [p[k] for k in ("W0", "b0", "W1", "b1")]
    with np.load(data) as d:
        x, y = d["pixels"] / 16.0, d["labels"].astype(np.int64)
    ref = train_local([64, 24, 10], x[:300], y[:300], steps=60, lr=0.02, seed=3)
    for a, b in zip(got, ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)
    assert f"holdout accuracy {accuracy(got, x[300:], y[300:]):.4f}" in line
