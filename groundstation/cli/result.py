"""``groundstation result JOB_ID [-o OUT.npz]``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from groundstation.cli._common import add_broker_arg, connect_client
from groundstation.cli.submit import save_outputs
from groundstation.client import GroundClient
from groundstation.protocol import JobRecord

__all__ = ["register"]


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("result", help="a job's state and outputs")
    p.add_argument("job_id")
    p.add_argument("-o", "--out", type=Path, default=None, help="write outputs to .npz")
    add_broker_arg(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    async def main() -> JobRecord:
        async with connect_client(args) as gc:
            return await gc.result(args.job_id)

    rec = asyncio.run(main())
    outs = GroundClient.outputs(rec)
    summary = rec.model_dump(mode="json", exclude={"outputs"})
    summary["outputs"] = {
        k: {"dtype": str(v.dtype), "shape": list(v.shape)} for k, v in outs.items()
    }
    print(json.dumps(summary, indent=1))
    if args.out is not None and outs:
        save_outputs(outs, args.out)
    if rec.state == "failed":
        print(f"job {rec.job_id} failed: {rec.reason}", file=sys.stderr)
        return 1
    return 0
