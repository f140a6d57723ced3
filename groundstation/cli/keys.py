"""``groundstation keys DIR --nodes a,b,c``: make the keys of trust on the wire.

Writes ``DIR/<node>.key`` (64 hex characters, mode 0600: the key that seals the node's
messages) for every node that has none yet, and once the ground's Ed25519 warrant key pair
``DIR/ground.warrant`` (private, 0600) and ``DIR/ground.warrant.pub`` (public). Existing
keys are kept, so the command is safe to re-run when nodes are added. The ground station
reads the whole directory (``serve --node-keys DIR``: node keys, and the warrant key if
present); each node gets only its own key file and the public warrant key
(``flightsw node --node-key-file DIR/<node>.key --ground-public-key
DIR/ground.warrant.pub``). See docs/security.md.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any

from flightsw.protocol.sign import load_keys, new_key
from flightsw.protocol.warrant import WarrantSigner, new_warrant_key
from groundstation.exceptions import GroundError

__all__ = [
    "WARRANT_KEY",
    "WARRANT_PUBLIC_KEY",
    "add_node_keys_arg",
    "make_keys",
    "node_keys_from_args",
    "register",
    "warrants_from_args",
]

WARRANT_KEY = "ground.warrant"
WARRANT_PUBLIC_KEY = "ground.warrant.pub"

_NODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "keys", help="make per-node keys (DIR/<node>.key) that seal node messages"
    )
    p.add_argument("dir", type=Path, help="key directory (created if missing)")
    p.add_argument("--nodes", required=True, help="comma-separated node ids")
    p.set_defaults(func=_run)


def make_keys(directory: Path, nodes: list[str]) -> list[Path]:
    """Write a key for each node of ``nodes`` that has none; the paths written."""
    bad = [n for n in nodes if not _NODE.match(n)]
    if bad or not nodes:
        raise GroundError(f"--nodes: not node ids (letters, digits, _ . -): {bad or nodes}")
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for node in nodes:
        path = directory / f"{node}.key"
        if not path.exists():
            _write(path, new_key(), 0o600)
            written.append(path)
    private = directory / WARRANT_KEY
    if not private.exists():
        priv, pub = new_warrant_key()
        _write(private, priv, 0o600)
        _write(directory / WARRANT_PUBLIC_KEY, pub, 0o644)
        written += [private, directory / WARRANT_PUBLIC_KEY]
    return written


def _write(path: Path, text: str, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")


def _run(args: argparse.Namespace) -> int:
    nodes = [n.strip() for n in args.nodes.split(",") if n.strip()]
    for path in make_keys(args.dir, nodes):
        print(path)
    return 0


def add_node_keys_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--node-keys",
        type=Path,
        default=Path(os.environ["ODC_NODE_KEYS"]) if os.environ.get("ODC_NODE_KEYS") else None,
        help="directory of node keys (<node>.key): accept only node messages sealed with "
        "them (env ODC_NODE_KEYS; without it the broker's ACL is the only check)",
    )


def node_keys_from_args(args: argparse.Namespace) -> dict[str, bytes] | None:
    if args.node_keys is None:
        return None
    keys = load_keys(args.node_keys)
    if not keys:
        raise GroundError(f"--node-keys: no <node>.key file in {args.node_keys}")
    return keys


def warrants_from_args(args: argparse.Namespace) -> WarrantSigner | None:
    """The ground's warrant signer: ``--node-keys DIR``'s ``ground.warrant`` if present."""
    if args.node_keys is None or not (args.node_keys / WARRANT_KEY).exists():
        return None
    return WarrantSigner.from_file(args.node_keys / WARRANT_KEY)
