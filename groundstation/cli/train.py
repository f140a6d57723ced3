"""``groundstation train DATA.npz --nodes A,B,C --sizes 64,32,10``: data-parallel training
of an MLP on several nodes (``groundstation.training``)."""

from __future__ import annotations

import argparse
import asyncio
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from flightsw.bus.mqtt import MqttBus
from flightsw.models.mlp_train import accuracy, check_data
from groundstation.cli._common import add_broker_arg
from groundstation.exceptions import GroundError
from groundstation.training import run_training

__all__ = ["register"]


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "train", help="train an MLP data-parallel on several nodes")
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
    p.add_argument("--job-id", default=None)
    p.add_argument("--step-timeout", type=float, default=60.0,
                   help="mission seconds a member waits for a step's gradients")
    p.add_argument("--wait-timeout", type=float, default=600.0,
                   help="host seconds an attempt may take")
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


def _run(args: argparse.Namespace) -> int:
    members = [n for n in args.nodes.split(",") if n]
    sizes = _ints(args.sizes, "--sizes")
    x, y = _load(args)
    if not 0 <= args.holdout < len(y):
        raise GroundError(f"--holdout: must be in [0, {len(y)}), got {args.holdout}")
    n_train = len(y) - args.holdout
    if not 2 <= len(sizes) <= 16 or min(sizes) < 1:
        raise GroundError(f"--sizes: 2-16 positive widths, got {args.sizes!r}")
    check_data(sizes, x[:n_train], y[:n_train])  # refused before connecting
    job_id = args.job_id or f"train-{uuid.uuid4().hex[:12]}"

    async def main() -> int:
        client_id = f"gc-{uuid.uuid4().hex[:12]}"
        async with MqttBus(args.broker, client_id=client_id, clean_start=True,
                           persistent_session=False) as bus:
            run = await run_training(bus, job_id, members, sizes, x[:n_train], y[:n_train],
                                     steps=args.steps, lr=args.lr, seed=args.seed,
                                     step_timeout_s=args.step_timeout,
                                     timeout_s=args.wait_timeout)
        failed = [d for d in run.done if d.status != "done"]
        for d in failed:
            print(f"{d.node}: failed at step {d.steps}: {d.reason}")
        if failed or not run.done:
            return 1
        first = run.done[0]
        params = [t.to_array() for t in first.params]
        line = (f"{run.job_id}: {len(run.members)} members ({', '.join(run.members)}), "
                f"attempt {run.attempts}, {first.steps} steps, loss "
                f"{first.losses[0]:.4f} -> {first.losses[-1]:.4f}, "
                f"{first.host_wall_s:.2f} s on {first.node}")
        if args.holdout:
            line += f", holdout accuracy {accuracy(params, x[n_train:], y[n_train:]):.4f}"
        print(line)
        if args.out is not None:
            names = [f"{'W' if i % 2 == 0 else 'b'}{i // 2}" for i in range(len(params))]
            np.savez(args.out, **dict(zip(names, params, strict=True)))  # type: ignore[arg-type]
        return 0

    return asyncio.run(main())
