"""The ground's side of training runs, with real in-process nodes on the memory bus: a
member that never answers is named by the others and the run, out of epochs, ends failed
with the summary file saying so; with a spare and one epoch more it goes on without it; a
run resumed after an epoch that took no checkpoint starts at the epoch above it."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import pytest
from node_harness import running_node

from flightsw.bus import MemoryBus
from flightsw.clock import WallClock
from flightsw.models.mlp_train import train_local
from groundstation.exceptions import GroundError
from groundstation.train_checkpoint import read_checkpoint, read_epoch
from groundstation.train_progress import TrainProgress
from groundstation.training import run_training

SIZES = [8, 6, 3]


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 40)
    x = rng.standard_normal((40, 8)) * 0.5
    x[np.arange(40), y] += 1.5
    return x, y


async def test_a_silent_member_fails_the_run_or_a_spare_takes_its_place(
    tmp_path: Path
) -> None:
    bus = MemoryBus()
    clock = WallClock(scale=20.0)  # the 2 mission-second step timeout is 0.1 s
    x, y = data()
    lines: list[str] = []
    async with contextlib.AsyncExitStack() as stack:
        for n in ("n1", "n2"):
            await stack.enter_async_context(running_node(bus, clock, tmp_path / n, node_id=n))
        failed_progress = TrainProgress("t1", 12, summary_path=tmp_path / "f.json",
                                        say=lines.append)
        failed = await run_training(bus, "t1", ["n1", "ghost"], SIZES, x, y, steps=12,
                                    lr=0.05, seed=7, step_timeout_s=2.0, timeout_s=30,
                                    max_attempts=1, progress=failed_progress)
        progress = TrainProgress("t2", 12, summary_path=tmp_path / "ck" / "s.json")
        run = await run_training(bus, "t2", ["n1", "ghost"], SIZES, x, y, steps=12,
                                 lr=0.05, seed=7, step_timeout_s=2.0, timeout_s=30,
                                 max_attempts=2, spares=["n2"], checkpoint_dir=tmp_path / "ck",
                                 checkpoint_every=4, progress=progress)
    assert failed.status == "failed" and failed.params == [] and failed.epoch == 0
    assert failed.reason == ("n1 failed at step 0: step 0: no gradient from ghost within "
                             "2.0 s (after 1 epochs)")
    summary = json.loads((tmp_path / "f.json").read_text())
    assert summary["status"] == "failed" and summary["reason"] == failed.reason
    assert lines == ["t1: epoch 0 on n1, ghost from step 0/12"]
    # with a spare and a second epoch: ghost is lost, n2 takes its place, from step 0
    # (no step was done without ghost, so no checkpoint was taken)
    assert run.status == "done" and run.epoch == 1 and run.members == ["n1", "n2"]
    [plan] = run.replans
    assert (plan.lost, plan.added, plan.from_step) == (["ghost"], ["n2"], 0)
    assert run.steps_computed == 12 and len(run.losses) == 12
    assert progress.checkpoints == 3  # steps 4, 8, 12
    ref = train_local(SIZES, x, y, steps=12, lr=0.05, seed=7)
    for p, r in zip(run.params, ref, strict=True):
        np.testing.assert_allclose(p, r, rtol=0, atol=1e-10)


async def test_bad_arguments_are_refused_naming_them(tmp_path: Path) -> None:
    bus = MemoryBus()
    x, y = data()
    cases = [
        ({"checkpoint_every": 13}, "checkpoint_every: must be in [1, steps=12]"),
        ({"checkpoint_every": -1}, "checkpoint_every: must be in [1, steps=12]"),
        ({"checkpoint_every": 4}, "checkpoint_every: checkpoints need a checkpoint dir"),
        ({"spares": ["n1"]}, "spares: distinct node ids that are not members"),
    ]
    for kw, text in cases:
        with pytest.raises(GroundError) as err:
            await run_training(bus, "t", ["n1"], SIZES, x, y, steps=12, lr=0.05,
                               **kw)  # type: ignore[arg-type]
        assert text in str(err.value)


async def test_a_run_resumed_after_an_epoch_without_checkpoint_starts_above_it(
    tmp_path: Path
) -> None:
    bus = MemoryBus()
    clock = WallClock(scale=20.0)
    x, y = data()
    ck = tmp_path / "ck"
    async with running_node(bus, clock, tmp_path / "n1", node_id="n1"):
        first = await run_training(bus, "t3", ["n1", "ghost"], SIZES, x, y, steps=12,
                                   lr=0.05, seed=7, step_timeout_s=2.0, timeout_s=30,
                                   max_attempts=1, checkpoint_dir=ck, checkpoint_every=4)
        assert first.status == "failed" and not (ck / "checkpoint.npz").exists()
        assert read_epoch(ck) == ("t3", 0)
        # n1 has taken epoch 0 of t3: an epoch-0 job again would be ignored as a second
        # delivery, and the run would wait for nothing; it starts at epoch 1
        second = await run_training(bus, "t3", ["n1"], SIZES, x, y, steps=12, lr=0.05,
                                    seed=7, step_timeout_s=2.0, timeout_s=30,
                                    checkpoint_dir=ck, checkpoint_every=4)
    assert second.status == "done" and second.epoch == 1 and second.resumed_from is None
    assert read_epoch(ck) == ("t3", 1) and read_checkpoint(ck / "checkpoint.npz").step == 12
    ref = train_local(SIZES, x, y, steps=12, lr=0.05, seed=7)
    for p, r in zip(second.params, ref, strict=True):
        np.testing.assert_allclose(p, r, rtol=0, atol=1e-10)
