"""Checkpoint files of training runs: a round trip through a real file is exact, the write
leaves no temporary file, and a corrupt, damaged, foreign or mismatched file is refused
with an error naming the problem."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from flightsw.models.mlp_train import Adam, init_params, shard_gradient
from groundstation.train_checkpoint import (
    Checkpoint,
    CheckpointError,
    RunKey,
    data_sha256,
    read_checkpoint,
    write_checkpoint,
)

SIZES = (6, 5, 3)


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.standard_normal((20, 6)), rng.integers(0, 3, 20)


def key(**kw: object) -> RunKey:
    x, y = data()
    fields: dict[str, object] = {"job_id": "j1", "sizes": SIZES, "seed": 4, "lr": 0.05,
                                 "total_items": 20, "data_sha256": data_sha256(x, y)}
    fields.update(kw)
    return RunKey(**fields)  # type: ignore[arg-type]


def trained(steps: int) -> Checkpoint:
    """A real state: ``steps`` Adam steps on the data."""
    x, y = data()
    params = init_params(SIZES, 4)
    opt = Adam(0.05)
    losses = []
    for _ in range(steps):
        loss, grads = shard_gradient(params, x, y, 20)
        losses.append(loss)
        params = opt.step(params, grads)
    return Checkpoint(key=key(), step=steps, steps=10, epoch=2, members=["a", "b"],
                      losses=losses, params=params, adam_t=opt.t, adam_m=opt.m, adam_v=opt.v)


def test_a_checkpoint_round_trips_exactly_and_atomically(tmp_path: Path) -> None:
    path = tmp_path / "ck" / "checkpoint.npz"
    first = trained(3)
    write_checkpoint(path, first)
    write_checkpoint(path, trained(4))  # replaces the first
    assert sorted(p.name for p in path.parent.iterdir()) == ["checkpoint.npz"]  # no temp
    got = read_checkpoint(path, key())
    ref = trained(4)
    assert (got.step, got.steps, got.epoch, got.members) == (4, 10, 2, ["a", "b"])
    assert got.losses == ref.losses and got.adam_t == 4
    for a, b in zip(got.params + got.adam_m + got.adam_v,
                    ref.params + ref.adam_m + ref.adam_v, strict=True):
        assert a.dtype == np.float64 and np.array_equal(a, b)
    # the state a TrainJob carries holds the same arrays
    state = got.state()
    assert state.step == 4 and np.array_equal(state.params[0].to_array(), ref.params[0])
    # a checkpoint before any step has no Adam moments
    write_checkpoint(path, trained(0))
    zero = read_checkpoint(path, key())
    assert zero.step == 0 and zero.adam_t == 0 and zero.adam_m == [] and zero.losses == []


def test_a_truncated_file_is_refused_as_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.npz"
    write_checkpoint(path, trained(2))
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CheckpointError, match="cannot read, corrupt or truncated"):
        read_checkpoint(path, key())
    path.write_bytes(b"not a zip at all")
    with pytest.raises(CheckpointError, match="cannot read, corrupt or truncated"):
        read_checkpoint(path)


def test_damaged_arrays_are_refused_by_their_digest(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.npz"
    ck = trained(2)
    write_checkpoint(path, ck)
    # rewrite one array with a changed value but keep the meta (zip CRCs are then valid)
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    with np.load(path) as d:
        p0 = d["p0"].copy()
    p0[0, 0] += 1.0
    forged = tmp_path / "p0.npy"
    np.save(forged, p0)
    members["p0.npy"] = forged.read_bytes()
    with zipfile.ZipFile(path, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    with pytest.raises(CheckpointError, match="arrays do not match their sha256"):
        read_checkpoint(path, key())


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.npz"
    np.savez(path, W0=np.zeros((6, 5)))
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        read_checkpoint(path)
    meta = np.frombuffer(json.dumps({"format": "something/9"}).encode(), np.uint8)
    np.savez(path, meta=meta)
    with pytest.raises(CheckpointError, match="format 'something/9'"):
        read_checkpoint(path)


@pytest.mark.parametrize(("other", "text"), [
    ({"job_id": "j2"}, "job id j1 differs from this run's j2"),
    ({"sizes": (6, 4, 3)}, "sizes [6, 5, 3] differs from this run's [6, 4, 3]"),
    ({"seed": 5}, "seed 4 differs from this run's 5"),
    ({"lr": 0.1}, "lr 0.05 differs from this run's 0.1"),
    ({"total_items": 21}, "training items 20 differs"),
    ({"data_sha256": "0" * 64}, "training data sha256"),
])
def test_a_checkpoint_of_another_run_is_refused_naming_what_differs(
    tmp_path: Path, other: dict[str, object], text: str
) -> None:
    path = tmp_path / "checkpoint.npz"
    write_checkpoint(path, trained(2))
    with pytest.raises(CheckpointError, match="differs") as err:
        read_checkpoint(path, key(**other))
    assert text in str(err.value)
    assert read_checkpoint(path, key(job_id="")).key.job_id == "j1"  # any job id


def test_arrays_that_do_not_fit_the_sizes_are_refused(tmp_path: Path) -> None:
    ck = trained(2)
    ck.params[2] = np.zeros((5, 4))
    with pytest.raises(CheckpointError, match=r"p2 is float64 \[5, 4\], expected finite "
                                              r"float64 \[5, 3\]"):
        write_checkpoint(tmp_path / "checkpoint.npz", ck)
    assert not (tmp_path / "checkpoint.npz").exists()
