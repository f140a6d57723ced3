"""``flightsw demo`` (and ``groundstation demo``): broker, ground station and six nodes in one
process, with a live view.

The demo runs a ground station and nodes, so it lives above both packages, here.
``flightsw`` does not import it: ``pyproject.toml`` declares :func:`register` in the
``flightsw.commands`` entry-point group, which the ``flightsw`` command line loads.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from flightsw.timeutil import parse_iso

__all__ = ["register"]


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "demo",
        help="run a whole constellation in one process with a live view (no setup needed)",
        description=(
            "Start an embedded MQTT broker (or use --broker), a ground station and N satellite "
            "nodes with mixed hardware; feed them real inference jobs (held-out handwritten "
            "digits for the classifier, image and token batches for the heavier models) through "
            "eclipses "
            "and ground contacts; show it live; end with a summary, the telemetry archive and "
            "report.png in --out. Ctrl-C stops it cleanly."
        ),
    )
    p.add_argument("--nodes", type=int, default=6, help="number of nodes (default 6)")
    p.add_argument(
        "--minutes", type=float, default=2.0, help="host minutes the mission runs (default 2)"
    )
    p.add_argument(
        "--time-scale",
        type=float,
        default=50.0,
        help="mission seconds per host second (default 50: one 95.6 min orbit in ~2 min)",
    )
    p.add_argument("--broker", default=None,
                   help="mqtt://[user:pass@]host:port of an existing broker (default: embedded)")
    p.add_argument("--out", type=Path, default=Path("demo-output"),
                   help="output directory: archive, report.png, summary.json, demo.log")
    p.add_argument("--models", type=Path, default=None,
                   help="directory of the example ONNX models (default: examples/models)")
    p.add_argument("--policy", default="forecast", help="migration policy (default forecast)")
    p.add_argument("--seed", type=int, default=0, help="seed of the job stream")
    p.add_argument("--epoch", default=None,
                   help="mission start time, ISO 8601 UTC (default: now)")
    web = p.add_mutually_exclusive_group()
    web.add_argument("--http", default="127.0.0.1:8080", metavar="HOST:PORT",
                     help="serve the operations console there (default 127.0.0.1:8080; "
                          "a free port if that one is taken)")
    web.add_argument("--no-http", dest="http", action="store_const", const=None,
                     help="no web console")
    view = p.add_mutually_exclusive_group()
    view.add_argument("--plain", dest="plain", action="store_const", const=True, default=None,
                      help="print plain lines even on a terminal")
    view.add_argument("--live", dest="plain", action="store_const", const=False,
                      help="redraw in place even when stdout is not a terminal")
    p.set_defaults(func=_run, demo_prog=p.prog)


def _run(args: argparse.Namespace) -> int:
    # imported here: every `flightsw`/`groundstation` command builds this parser, and the
    # demo pulls in the whole ground segment and the console
    from groundstation.demo import DemoOptions, run_demo  # noqa: PLC0415

    opts = DemoOptions(
        out=args.out,
        broker=args.broker,
        nodes=args.nodes,
        minutes=args.minutes,
        time_scale=args.time_scale,
        models_dir=args.models,
        seed=args.seed,
        epoch=parse_iso(args.epoch, field="--epoch") if args.epoch else None,
        plain=args.plain,
        policy=args.policy,
        http=args.http,
    )
    try:
        result = asyncio.run(run_demo(opts))
    except asyncio.CancelledError:
        print(f"{args.demo_prog}: stopped", file=sys.stderr)
        return 130
    print()
    for line in result.lines():
        print(line)
    sys.stdout.flush()
    return 130 if result.interrupted else 0
