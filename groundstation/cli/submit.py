"""``groundstation submit MODEL.onnx INPUT.npy``: submit a job (and wait for it)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import numpy as np

from flightsw.models.cost import analyse
from groundstation.cli._common import add_broker_arg, connect_client
from groundstation.client import GroundClient
from groundstation.console.units import si
from groundstation.exceptions import GroundError, JobFailed

__all__ = ["register", "save_outputs"]


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("submit", help="submit an inference job")
    p.add_argument("model", type=Path, help="ONNX model file (uploaded if needed)")
    p.add_argument("input", type=Path, help=".npy array (first axis = items) or .npz by name")
    p.add_argument("--node", help="run on this node (default: the service places it)")
    p.add_argument("--stages", type=int, default=1,
                   help="split the model into K pipeline stages run on K nodes (default 1)")
    p.add_argument("--micro-batches", type=int, default=1, metavar="M",
                   help="with --stages: stream the inputs through the stages in M parts "
                        "(default 1: the whole batch through each stage in turn)")
    p.add_argument("--priority", type=int, default=5, help="0-9, higher first")
    p.add_argument("--deadline", type=float, default=None, help="mission seconds from now")
    p.add_argument("--value", type=float, default=1.0)
    p.add_argument("--job-id", default=None)
    p.add_argument("--wait", action="store_true", help="wait for the result")
    p.add_argument("--wait-timeout", type=float, default=600.0, help="seconds")
    p.add_argument("-o", "--out", type=Path, default=None, help="outputs .npz (with --wait)")
    add_broker_arg(p)
    p.set_defaults(func=_run)


def load_inputs(model: Path, path: Path) -> dict[str, np.ndarray[Any, Any]]:
    try:
        with path.open("rb") as f:
            magic = f.read(6)
    except OSError as exc:
        raise GroundError(f"input {path}: cannot read ({exc.strerror})") from exc
    if magic != b"\x93NUMPY" and not magic.startswith(b"PK"):
        # np.load would call any other file a pickle it refuses to load
        raise GroundError(
            f"input {path}: not a .npy or .npz file (save the array with numpy.save, "
            "or several inputs by name with numpy.savez)"
        )
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise GroundError(f"input {path}: cannot read ({exc})") from exc
    if isinstance(loaded, np.ndarray):
        names = [i.name for i in analyse(model).inputs]
        if len(names) != 1:
            raise GroundError(
                f"input {path}: model takes {len(names)} inputs {names}; give a .npz by name"
            )
        return {names[0]: loaded}
    return {k: loaded[k] for k in loaded.files}


def save_outputs(outputs: dict[str, np.ndarray[Any, Any]], path: Path) -> None:
    np.savez(path, **outputs)  # type: ignore[arg-type]


def _run(args: argparse.Namespace) -> int:
    if args.out is not None and not args.wait:
        raise GroundError("-o/--out: the outputs exist only once the job is done; add --wait")
    if args.stages < 1:
        raise GroundError(f"--stages: must be at least 1, got {args.stages}")
    if args.stages > 1 and args.node is not None:
        raise GroundError("--node: a pipeline job (--stages > 1) runs on nodes the ground "
                          "chooses")
    if args.micro_batches < 1:
        raise GroundError(f"--micro-batches: must be at least 1, got {args.micro_batches}")
    if args.micro_batches > 1 and args.stages < 2:
        raise GroundError("--micro-batches: micro-batches stream a pipeline job; give "
                          "--stages K (K >= 2) too")
    inputs = load_inputs(args.model, args.input)

    async def main() -> int:
        async with connect_client(args) as gc:
            stages = None
            if args.stages > 1:
                stages = await gc.upload_stages(args.model, args.stages)
                model = stages[0]
            else:
                model = await gc.upload_model(args.model)
            job_id = await gc.submit(
                model,
                inputs,
                node=args.node,
                priority=args.priority,
                deadline_s=args.deadline,
                value=args.value,
                job_id=args.job_id,
                stages=stages,
                micro_batches=args.micro_batches,
            )
            print(job_id, flush=True)
            if not args.wait:
                return 0
            try:
                rec = await gc.wait(job_id, timeout_s=args.wait_timeout)
            except JobFailed as exc:
                print(f"job {job_id} failed: {exc.reason}", file=sys.stderr)
                return 1
            outs = GroundClient.outputs(rec)
            if args.out is not None:
                save_outputs(outs, args.out)
            print(
                f"done on {rec.node}: modelled {si(rec.modelled_latency_s or 0, 's')}, "
                f"{si(rec.modelled_energy_j or 0, 'J')}",
                file=sys.stderr,
            )
            return 0

    return asyncio.run(main())
