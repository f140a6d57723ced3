"""Checkpoint files of training runs (``groundstation.training``).

A checkpoint is one ``.npz`` file: the parameters ``p0, p1, ...`` (``W0, b0, W1, b1, ...``),
the Adam moments ``m0, ...`` and ``v0, ...`` (none before the first step) and ``meta``, a
UTF-8 JSON object: the format tag, what the run must match to resume from it (job id, layer
sizes, seed, learning rate, items, the training data's sha256), the step, the planned
steps, the Adam step count, the epoch and members that took it, the whole set's loss of
every step so far, and the sha256 of the arrays. Full-batch training draws no random
numbers after its seeded initialisation and visits the data in one fixed order, so the
step is the whole of its position. A file is written to a temporary name in the same
directory, flushed to disk and renamed over the old one: a reader sees the old checkpoint
or the new one, never half of one. Beside it, ``epoch.json`` names the job and the latest
epoch the client started (written the same way before the epoch's jobs are sent), so that
a run resumed after a client died in an epoch that took no checkpoint yet starts above it:
the nodes ignore a job of an epoch they have already taken. :func:`read_checkpoint`
refuses a file that is not a readable checkpoint, whose arrays do not match their digest
or the layer sizes, or that belongs to another run, with a :class:`CheckpointError`
naming the problem.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from flightsw.atomicfile import write_atomic
from flightsw.models.mlp_train import init_params
from flightsw.protocol.messages import Tensor
from flightsw.protocol.training import TrainState
from groundstation.exceptions import GroundError

__all__ = ["FORMAT", "Checkpoint", "CheckpointError", "RunKey", "data_sha256",
           "read_checkpoint", "read_epoch", "write_checkpoint", "write_epoch"]

FORMAT = "odc-train-checkpoint/1"
Array = npt.NDArray[np.float64]


class CheckpointError(GroundError):
    """A checkpoint file that cannot be read, is damaged, or belongs to another run."""


def data_sha256(x: npt.NDArray[Any], y: npt.NDArray[Any]) -> str:
    """The digest of a training set (float64 features, int64 labels, and their shapes)."""
    h = hashlib.sha256()
    for a, dtype in ((x, np.float64), (y, np.int64)):
        arr = np.ascontiguousarray(a, dtype=dtype)
        h.update(repr(arr.shape).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class RunKey:
    """What a run and a checkpoint it resumes from must agree on."""

    job_id: str
    sizes: tuple[int, ...]
    seed: int
    lr: float
    total_items: int
    data_sha256: str


@dataclass
class Checkpoint:
    """A run's state after ``step`` steps (see the module doc)."""

    key: RunKey
    step: int
    steps: int
    epoch: int
    members: list[str]
    losses: list[float]  # the whole set's loss of steps 0 .. step-1
    params: list[Array]
    adam_t: int = 0
    adam_m: list[Array] = field(default_factory=list)
    adam_v: list[Array] = field(default_factory=list)

    def state(self) -> TrainState:
        """The state as a ``TrainJob`` carries it to resume from."""
        return TrainState(step=self.step, params=[Tensor.from_array(p) for p in self.params],
                          adam_t=self.adam_t,
                          adam_m=[Tensor.from_array(m) for m in self.adam_m],
                          adam_v=[Tensor.from_array(v) for v in self.adam_v])

    @classmethod
    def of_state(cls, key: RunKey, state: TrainState, *, steps: int, epoch: int,
                 members: list[str], losses: list[float]) -> Checkpoint:
        def arrays(ts: list[Tensor], name: str) -> list[Array]:
            return [np.asarray(t.to_array(f"{name}[{i}]"), np.float64)
                    for i, t in enumerate(ts)]

        return cls(key=key, step=state.step, steps=steps, epoch=epoch, members=members,
                   losses=losses, params=arrays(state.params, "params"),
                   adam_t=state.adam_t, adam_m=arrays(state.adam_m, "adam_m"),
                   adam_v=arrays(state.adam_v, "adam_v"))


def _arrays_sha256(arrays: dict[str, Array]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def write_checkpoint(path: Path, ckpt: Checkpoint) -> None:
    """Write ``ckpt`` to ``path`` atomically (temporary file, fsync, rename);
    :class:`CheckpointError` for arrays that do not fit its layer sizes."""
    _check_shapes(path, ckpt)
    arrays: dict[str, Array] = {}
    for prefix, group in (("p", ckpt.params), ("m", ckpt.adam_m), ("v", ckpt.adam_v)):
        for i, a in enumerate(group):
            arrays[f"{prefix}{i}"] = np.asarray(a, np.float64)
    k = ckpt.key
    meta = {
        "format": FORMAT, "job_id": k.job_id, "sizes": list(k.sizes), "seed": k.seed,
        "lr": k.lr, "total_items": k.total_items, "data_sha256": k.data_sha256,
        "step": ckpt.step, "steps": ckpt.steps, "epoch": ckpt.epoch,
        "members": list(ckpt.members), "losses": list(ckpt.losses), "adam_t": ckpt.adam_t,
        "arrays_sha256": _arrays_sha256(arrays),
    }
    blob = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, meta=blob, **arrays)  # type: ignore[arg-type]
    write_atomic(path, buf.getvalue())


def read_checkpoint(path: Path, expect: RunKey | None = None) -> Checkpoint:
    """The checkpoint in ``path``; :class:`CheckpointError` naming the problem if it is not
    a whole checkpoint, or (given ``expect``) one of another run. ``expect.job_id`` empty
    accepts any job id."""
    try:
        with np.load(path, allow_pickle=False) as d:
            if not isinstance(d, np.lib.npyio.NpzFile) or "meta" not in d.files:
                raise CheckpointError(f"checkpoint {path}: not a checkpoint (no meta)")
            raw = {name: d[name] for name in d.files}
    except CheckpointError:
        raise
    except FileNotFoundError as exc:
        raise CheckpointError(f"checkpoint {path}: no such file") from exc
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"checkpoint {path}: cannot read, corrupt or truncated "
                              f"({type(exc).__name__}: {exc})") from exc
    try:
        meta = json.loads(raw.pop("meta").tobytes().decode())
        if not isinstance(meta, dict):
            raise ValueError("meta is not an object")
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"checkpoint {path}: meta is not JSON ({exc})") from exc
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path}: format {meta.get('format')!r}, "
                              f"expected {FORMAT!r}")
    arrays = {name: np.asarray(a) for name, a in raw.items()}
    if _arrays_sha256(arrays) != meta.get("arrays_sha256"):
        raise CheckpointError(f"checkpoint {path}: arrays do not match their sha256 "
                              f"(damaged)")
    try:
        ckpt = _from_meta(meta, arrays)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path}: bad meta ({type(exc).__name__}: "
                              f"{exc})") from exc
    _check_shapes(path, ckpt)
    if expect is not None:
        _check_key(path, ckpt, expect)
    return ckpt


def _from_meta(meta: dict[str, Any], arrays: dict[str, Array]) -> Checkpoint:
    sizes = tuple(int(s) for s in meta["sizes"])
    n = 2 * (len(sizes) - 1)
    adam_t = int(meta["adam_t"])

    def group(prefix: str, count: int) -> list[Array]:
        return [arrays[f"{prefix}{i}"] for i in range(count)]

    key = RunKey(job_id=str(meta["job_id"]), sizes=sizes, seed=int(meta["seed"]),
                 lr=float(meta["lr"]), total_items=int(meta["total_items"]),
                 data_sha256=str(meta["data_sha256"]))
    ckpt = Checkpoint(key=key, step=int(meta["step"]), steps=int(meta["steps"]),
                      epoch=int(meta["epoch"]), members=[str(m) for m in meta["members"]],
                      losses=[float(v) for v in meta["losses"]], params=group("p", n),
                      adam_t=adam_t, adam_m=group("m", n if adam_t else 0),
                      adam_v=group("v", n if adam_t else 0))
    if not 0 <= ckpt.step <= ckpt.steps or len(ckpt.losses) != ckpt.step:
        raise ValueError(f"step {ckpt.step} of {ckpt.steps} with {len(ckpt.losses)} losses")
    return ckpt


def _check_shapes(path: Path, ckpt: Checkpoint) -> None:
    shapes = [p.shape for p in init_params(ckpt.key.sizes, 0)]
    for prefix, group in (("p", ckpt.params), ("m", ckpt.adam_m), ("v", ckpt.adam_v)):
        for i, a in enumerate(group):
            if a.shape != shapes[i] or a.dtype != np.float64 or not np.isfinite(a).all():
                raise CheckpointError(f"checkpoint {path}: {prefix}{i} is {a.dtype} "
                                      f"{list(a.shape)}, expected finite float64 "
                                      f"{list(shapes[i])} for sizes {list(ckpt.key.sizes)}")


def _check_key(path: Path, ckpt: Checkpoint, expect: RunKey) -> None:
    got = ckpt.key
    pairs: Sequence[tuple[str, object, object]] = [
        ("job id", got.job_id, expect.job_id or got.job_id),
        ("sizes", list(got.sizes), list(expect.sizes)),
        ("seed", got.seed, expect.seed),
        ("lr", got.lr, expect.lr),
        ("training items", got.total_items, expect.total_items),
        ("training data sha256", got.data_sha256[:16], expect.data_sha256[:16]),
    ]
    for name, have, want in pairs:
        if have != want:
            raise CheckpointError(f"checkpoint {path}: {name} {have} differs from this "
                                  f"run's {want} (another run's checkpoint?)")


def write_epoch(directory: Path, job_id: str, epoch: int) -> None:
    """Record that ``job_id``'s ``epoch`` has started (``directory/epoch.json``)."""
    write_atomic(directory / "epoch.json",
                 (json.dumps({"job_id": job_id, "epoch": epoch}) + "\n").encode())


def read_epoch(directory: Path) -> tuple[str, int] | None:
    """The job and latest epoch started in ``directory``; None if none was recorded;
    :class:`CheckpointError` for a file that does not say."""
    path = directory / "epoch.json"
    try:
        obj = json.loads(path.read_text())
        job_id, epoch = obj["job_id"], obj["epoch"]
        if not isinstance(job_id, str) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"job_id {job_id!r}, epoch {epoch!r}")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: not a job id and epoch ({exc})") from exc
    return job_id, epoch
