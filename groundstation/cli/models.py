"""``groundstation models upload MODEL.onnx``: upload once, print the model hash."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from groundstation.cli._common import add_broker_arg, connect_client

__all__ = ["register"]


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("models", help="manage models")
    msub = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    up = msub.add_parser("upload", help="upload an ONNX model; prints its sha256")
    up.add_argument("model", type=Path)
    add_broker_arg(up)
    up.set_defaults(func=_upload)


def _upload(args: argparse.Namespace) -> int:
    async def main() -> str:
        async with connect_client(args) as gc:
            return await gc.upload_model(args.model)

    print(asyncio.run(main()))
    return 0
