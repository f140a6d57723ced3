"""``groundstation report``: a PNG of each node's battery, temperature, power mode and jobs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from flightsw.archive import ArchiveReader
from groundstation.cli.replay import parse_time, telemetry_dir

__all__ = ["register"]


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "report", help="mission report PNG from an archive",
        description="Draw one row of panels per node (battery state of charge, temperature, "
                    "power mode, jobs completed) over mission time, eclipses shaded.",
    )
    p.add_argument("archive", metavar="ARCHIVE", help="archive directory")
    p.add_argument("-o", "--output", required=True, metavar="PNG", help="file to write")
    p.add_argument("--node", action="append", metavar="ID", dest="nodes",
                   help="only this node (repeat for more)")
    p.add_argument("--start", metavar="ISO8601", help="from this mission time (inclusive)")
    p.add_argument("--end", metavar="ISO8601", help="up to this mission time (exclusive)")
    p.add_argument("--max-nodes", type=int, default=12, metavar="N",
                   help="at most N node rows (default 12)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    start = None if args.start is None else parse_time(args.start, field="--start")
    end = None if args.end is None else parse_time(args.end, field="--end")
    from groundstation.report import write_report  # noqa: PLC0415  (matplotlib: ~1.5 s)

    reader = ArchiveReader(telemetry_dir(Path(args.archive)))
    summary = write_report(reader, args.output, nodes=args.nodes, start=start, end=end,
                           max_nodes=args.max_nodes)
    more = f"; {summary.omitted_nodes} more not shown" if summary.omitted_nodes else ""
    print(f"wrote {summary.path}: {len(summary.nodes)} nodes, {summary.samples} telemetry "
          f"samples, {summary.results} results{more}", file=sys.stderr)
    print(summary.drain_note, file=sys.stderr)  # the drain marked, or why it cannot be
    return 0
