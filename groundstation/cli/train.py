"""``groundstation train DATA.npz --nodes A,B,C --sizes 64,32,10``: data-parallel training
of an MLP on several nodes (``groundstation.training``), with checkpoints to disk, re-plans
when a member is lost, and resumption from a checkpoint directory."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from flightsw.bus.mqtt import MqttBus
from flightsw.models.mlp_train import accuracy, check_data
from groundstation.cli._common import add_broker_arg
from groundstation.exceptions import GroundError
from groundstation.train_checkpoint import RunKey, data_sha256, read_checkpoint, read_epoch
from groundstation.train_progress import TrainProgress
from groundstation.training import CHECKPOINT_NAME, run_training

_EPILOG = f"""\
With --checkpoint-dir the first member sends its parameters and Adam state every
--checkpoint-every steps and after the last; they are written to DIR/{CHECKPOINT_NAME}
(temporary file and rename). When a member is lost (offline, or no gradient from it within
--step-timeout) the run goes on from that checkpoint on the members left, plus --spares in
place of the lost, under the next epoch (a late gradient of the lost member is refused).
Running this command again with the same --checkpoint-dir RESUMES from the checkpoint
there instead of starting over (the job id is the checkpoint's unless --job-id is given;
one of other data, sizes, seed, lr or job id is refused). Progress lines go to stdout and
a JSON summary (step, loss, members, checkpoints, re-plans) to --summary, by default
DIR/summary.json."""

__all__ = ["register"]


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "train", help="train an MLP data-parallel on several nodes",
        description="Train an MLP data-parallel on several nodes; checkpointed runs survive "
                    "the loss of a member and resume when run again.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", type=Path, help=".npz with features and integer labels")
    p.add_argument("--nodes", required=True, help="member node ids, comma-separated")
    p.add_argument("--sizes", required=True,
                   help="layer widths, comma-separated, input first, classes last")
    p.add_argument("--x", default="x", help="name of the features in DATA (default x)")
    p.add_argument("--y", default="y", help="name of the labels in DATA (default y)")
    p.add_argument("--x-scale", type=float, default=1.0,
                   help="divide the features by this (default 1)")
    p.add_argument("--holdout", type=int, default=0,
                   help="keep the last N items out of training and report accuracy on them")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--job-id", default=None,
                   help="default: the checkpoint's when resuming, else a new one")
    p.add_argument("--step-timeout", type=float, default=60.0,
                   help="mission seconds a member waits for a step's gradients before "
                        "the member it lacks counts as lost")
    p.add_argument("--wait-timeout", type=float, default=600.0,
                   help="host seconds an epoch may take")
    p.add_argument("--spares", default="",
                   help="node ids, comma-separated, to take in place of lost members")
    p.add_argument("--checkpoint-dir", type=Path, default=None,
                   help=f"keep checkpoints in DIR/{CHECKPOINT_NAME}; run again with the same "
                        "DIR to resume from it instead of starting over")
    p.add_argument("--checkpoint-every", type=int, default=None,
                   help="steps between checkpoints (1 to --steps; default 10, needs "
                        "--checkpoint-dir)")
    p.add_argument("--max-epochs", type=int, default=3,
                   help="epochs (the first run and its re-plans) before giving up")
    p.add_argument("--summary", type=Path, default=None,
                   help="JSON summary of the run's progress (default DIR/summary.json with "
                        "--checkpoint-dir)")
    p.add_argument("-o", "--out", type=Path, default=None,
                   help="parameters .npz (W0, b0, W1, b1, ...)")
    add_broker_arg(p)
    p.set_defaults(func=_run)


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",")]
    except ValueError as exc:
        raise GroundError(f"{what}: expected comma-separated integers, got {text!r}") from exc


def _load(args: argparse.Namespace) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    try:
        loaded = np.load(args.data, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise GroundError(f"data {args.data}: cannot read ({exc})") from exc
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise GroundError(f"data {args.data}: not a .npz file (save x and y with numpy.savez)")
    with loaded as d:
        for key in (args.x, args.y):
            if key not in d.files:
                raise GroundError(f"data {args.data}: no array {key!r} (has {d.files})")
        x, y = d[args.x], d[args.y]
    if args.x_scale <= 0:
        raise GroundError(f"--x-scale: must be positive, got {args.x_scale}")
    return np.asarray(x, np.float64) / args.x_scale, y


def _checkpointing(args: argparse.Namespace) -> int:
    """The checkpoint interval; :class:`GroundError` naming a bad one."""
    every = args.checkpoint_every
    if every is None:
        return 0 if args.checkpoint_dir is None else min(10, args.steps)
    if args.checkpoint_dir is None:
        raise GroundError("--checkpoint-every: needs --checkpoint-dir (where checkpoints go)")
    if not 1 <= every <= args.steps:
        raise GroundError(f"--checkpoint-every: must be a step count in [1, --steps "
                          f"{args.steps}], got {every}")
    return int(every)


def _run(args: argparse.Namespace) -> int:
    members = [n for n in args.nodes.split(",") if n]
    spares = [n for n in args.spares.split(",") if n]
    sizes = _ints(args.sizes, "--sizes")
    x, y = _load(args)
    if not 0 <= args.holdout < len(y):
        raise GroundError(f"--holdout: must be in [0, {len(y)}), got {args.holdout}")
    n_train = len(y) - args.holdout
    if not 2 <= len(sizes) <= 16 or min(sizes) < 1:
        raise GroundError(f"--sizes: 2-16 positive widths, got {args.sizes!r}")
    if args.steps < 1:
        raise GroundError(f"--steps: must be at least 1, got {args.steps}")
    if args.max_epochs < 1:
        raise GroundError(f"--max-epochs: must be at least 1, got {args.max_epochs}")
    every = _checkpointing(args)
    check_data(sizes, x[:n_train], y[:n_train])  # refused before connecting
    job_id = args.job_id
    ckpt_file = None if args.checkpoint_dir is None else args.checkpoint_dir / CHECKPOINT_NAME
    started = None if args.checkpoint_dir is None else read_epoch(args.checkpoint_dir)
    if ckpt_file is not None and ckpt_file.exists():  # refused now if another run's
        job_id = job_id or read_checkpoint(ckpt_file).key.job_id
        read_checkpoint(ckpt_file, RunKey(
            job_id=job_id, sizes=tuple(sizes), seed=args.seed, lr=args.lr,
            total_items=n_train, data_sha256=data_sha256(x[:n_train], y[:n_train])))
    elif job_id is None and started is not None:  # a run that took no checkpoint yet
        job_id = started[0]
    job_id = job_id or f"train-{uuid.uuid4().hex[:12]}"
    summary = args.summary
    if summary is None and args.checkpoint_dir is not None:
        summary = args.checkpoint_dir / "summary.json"
    progress = TrainProgress(job_id, args.steps, summary_path=summary,
                             say=lambda line: print(line, flush=True))

    async def main() -> int:
        client_id = f"gc-{uuid.uuid4().hex[:12]}"
        async with MqttBus(args.broker, client_id=client_id, clean_start=True,
                           persistent_session=False) as bus:
            return await _train(bus)

    async def _train(bus: MqttBus) -> int:
        run = await run_training(bus, job_id, members, sizes, x[:n_train], y[:n_train],
                                 steps=args.steps, lr=args.lr, seed=args.seed,
                                 step_timeout_s=args.step_timeout,
                                 timeout_s=args.wait_timeout, max_attempts=args.max_epochs,
                                 spares=spares, checkpoint_dir=args.checkpoint_dir,
                                 checkpoint_every=every, progress=progress)
        if run.status != "done":
            print(f"{run.job_id}: failed at epoch {run.epoch}: {run.reason}", file=sys.stderr)
            return 1
        line = (f"{run.job_id}: {len(run.members)} members ({', '.join(run.members)}), "
                f"epoch {run.epoch}, {len(run.losses)} steps, loss "
                f"{run.losses[0]:.4f} -> {run.losses[-1]:.4f}")
        if run.resumed_from is not None:
            line += f", resumed from step {run.resumed_from}"
        line += f", {run.steps_computed} steps computed here"
        if run.replans:
            line += f", {len(run.replans)} re-plans"
        if every:
            line += f", {progress.checkpoints} checkpoints"
        if run.done:
            line += f", {run.done[0].host_wall_s:.2f} s on {run.done[0].node}"
        if args.holdout:
            line += f", holdout accuracy {accuracy(run.params, x[n_train:], y[n_train:]):.4f}"
        print(line)
        if args.out is not None:
            names = [f"{'W' if i % 2 == 0 else 'b'}{i // 2}" for i in range(len(run.params))]
            np.savez(args.out, **dict(zip(names, run.params, strict=True)))  # type: ignore[arg-type]
        return 0

    return asyncio.run(main())
