"""``groundstation replay``: re-publish an archive to MQTT, or export it to a file.

Examples::

    groundstation replay data/archive --speed 60 --broker mqtt://127.0.0.1:1883
    groundstation replay data/archive --node sat-001 --start 2026-09-21T14:00Z \\
        --end 2026-09-21T16:00Z --to csv --out sat-001.csv
    groundstation replay data/archive --to jsonl | jq .soc
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from flightsw.archive import ArchiveReader
from flightsw.archive.index import segment_paths
from flightsw.bus.mqtt import MqttBus
from flightsw.bus.url import default_broker_url
from flightsw.clock import WallClock
from flightsw.exceptions import ConfigError
from flightsw.timeutil import format_iso, parse_iso
from groundstation.export import FORMATS, export
from groundstation.replay import RETAINED_LEAVES, ReplayStats, check_range, replay

__all__ = ["ProgressBar", "parse_time", "register", "telemetry_dir"]

_SIGPIPE_EXIT = 128 + 13  # what a shell reports for a command ended by SIGPIPE
_CONFIRM_S = 5.0  # host seconds for the broker to echo the first replayed message


def telemetry_dir(path: Path) -> Path:
    """The archive itself: ``groundstation serve --archive DIR`` (and the demo's
    ``OUT/archive``) keep it in ``DIR/telemetry``; given ``DIR``, use that and say so."""
    sub = path / "telemetry"
    if sub.is_dir() and not (path.is_dir() and any(True for _ in segment_paths(path))):
        print(f"note: reading {sub} (the telemetry archive inside {path})", file=sys.stderr)
        return sub
    return path


def parse_time(text: str, *, field: str) -> float:
    """ISO 8601 (naive = UTC) or POSIX seconds."""
    try:
        return float(text)
    except ValueError:
        return parse_iso(text, field=field)


def _speed(text: str) -> float:
    if text.lower() in ("max", "inf"):
        return math.inf
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (or 'max')") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


class ProgressBar:
    """A progress bar on stderr: a rich bar redrawn in place on a TTY; a plain line a
    second otherwise (logs, CI)."""

    def __init__(self, total: int, *, label: str, now: Callable[[], float],
                 stream: TextIO | None = None, width: int = 28) -> None:
        self.total = max(total, 0)
        self.label = label
        self.now = now
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = self.stream.isatty()
        self.start = now()
        self.last = -math.inf
        self.done = 0
        self._rich: Progress | None = None
        if self.tty:
            self._rich = Progress(
                TextColumn(label), BarColumn(), TaskProgressColumn(),
                MofNCompleteColumn(), TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                console=Console(file=self.stream), transient=False,
            )
            self._task = self._rich.add_task(label, total=self.total or None, rate="")
            self._rich.start()

    def update(self, done: int) -> None:
        self.done = done
        t = self.now()
        if t - self.last >= (0.1 if self.tty else 1.0):
            self.last = t
            self._draw(t)

    def render(self, t: float) -> str:
        frac = min(self.done / self.total, 1.0) if self.total else 1.0
        fill = round(frac * self.width)
        rate = self.done / max(t - self.start, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 and self.total > self.done else 0.0
        return (f"{self.label} [{'#' * fill}{'.' * (self.width - fill)}] {frac:6.1%} "
                f"{self.done:,}/{self.total:,} {rate:,.0f}/s eta {eta:,.0f} s")

    def _draw(self, t: float) -> None:
        if self._rich is not None:
            rate = self.done / max(t - self.start, 1e-9)
            self._rich.update(self._task, completed=self.done, rate=f"{rate:,.0f}/s")
            return
        self.stream.write(self.render(t) + "\n")
        self.stream.flush()

    def close(self) -> None:
        self._draw(self.now())
        if self._rich is not None:
            self._rich.stop()


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "replay",
        help="re-publish an archive to MQTT (original pace / N x) or export it",
        description="Re-publish archived messages to their original topics, keeping their "
                    "spacing divided by --speed, or export them with --to.",
    )
    p.add_argument("archive", metavar="ARCHIVE", help="archive directory")
    p.add_argument("--speed", type=_speed, default=1.0,
                   help="N x faster than archived ('max' = no waiting; default 1)")
    p.add_argument("--node", action="append", metavar="ID", dest="nodes",
                   help="only this node (repeat for more)")
    p.add_argument("--topic", action="append", metavar="FILTER", dest="topics",
                   help="only topics matching this MQTT filter, e.g. 'odc/sat/+/telemetry'")
    p.add_argument("--start", metavar="ISO8601", help="from this mission time (inclusive)")
    p.add_argument("--end", metavar="ISO8601", help="up to this mission time (exclusive)")
    dest = p.add_mutually_exclusive_group()
    dest.add_argument("--broker", default=None,
                      help="publish to this broker, mqtt://[user:pass@]host:port (default: "
                           "env ODC_BROKER, then mqtt://127.0.0.1:1883)")
    dest.add_argument("--to", choices=FORMATS, help="export instead of publishing")
    p.add_argument("--out", default="-",
                   help="export file ('-' = stdout for jsonl/csv; parquet needs a file)")
    p.add_argument("--kind", default=None,
                   help="export only this message kind (csv/parquet default: telemetry)")
    p.add_argument("--no-retain", action="store_true",
                   help="publish status messages without the retain flag")
    p.add_argument("--include-uplink", action="store_true",
                   help="also re-publish the job/cmd/model messages sent to the nodes "
                        "(left out by default: they would reach live nodes)")
    p.add_argument("--confirm", action=argparse.BooleanOptionalAction, default=True,
                   help="check that the broker delivers the first message back before "
                        "replaying the rest (an ACL drops forbidden publishes silently; "
                        "default on)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    start = None if args.start is None else parse_time(args.start, field="--start")
    end = None if args.end is None else parse_time(args.end, field="--end")
    if args.to is None and args.kind is not None:
        raise ConfigError("--kind: only applies to exports (--to)")
    if args.to is not None and (args.include_uplink or args.no_retain):
        raise ConfigError("--include-uplink/--no-retain: only apply to publishing, not --to")
    reader = ArchiveReader(telemetry_dir(Path(args.archive)))
    check_range(reader, start, end)
    clock = WallClock()
    show = sys.stderr.isatty() if args.progress is None else args.progress
    bar = None
    if show:
        total = reader.count(start, end, topics=args.topics, nodes=args.nodes)
        bar = ProgressBar(total, label="replay" if args.to is None else f"export {args.to}",
                          now=clock.perf_counter)
    progress = None if bar is None else bar.update
    try:
        if args.to is not None:
            exported = export(reader, args.to, args.out, kind=args.kind, nodes=args.nodes,
                              start=start, end=end, topics=args.topics, progress=progress)
            if args.out == "-":
                sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        else:
            replayed = asyncio.run(_publish(args, reader, clock, start, end, progress))
    except BrokenPipeError:
        # the reader went away (`... --out - | head`): stop quietly, as `cat` does; stdout
        # goes to /dev/null so Python's final flush does not fail again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return _SIGPIPE_EXIT
    finally:
        if bar is not None:
            bar.close()
    if args.to is not None:
        where = "stdout" if args.out == "-" else args.out
        print(f"exported {exported.rows} rows to {where} ({exported.skipped} of other kinds "
              f"skipped, {exported.undecodable} undecodable)", file=sys.stderr)
    else:
        print(
            f"replayed {replayed.published} messages from {format_iso(replayed.first_t)} "
            f"({replayed.archive_span_s:.1f} s of archive) in {replayed.host_s:.1f} s, "
            f"max lateness {replayed.max_lag_s * 1000:.1f} ms",
            file=sys.stderr,
        )
    return 0


async def _publish(args: argparse.Namespace, reader: ArchiveReader, clock: WallClock,
                   start: float | None, end: float | None,
                   progress: Callable[[int], None] | None) -> ReplayStats:
    url = args.broker or default_broker_url()
    async with MqttBus(url, client_id=f"gs-replay-{uuid.uuid4().hex[:10]}",
                       clean_start=True, persistent_session=False) as bus:
        return await replay(
            reader, bus, clock, speed=args.speed, nodes=args.nodes, start=start, end=end,
            topics=args.topics,
            retain_leaves=frozenset() if args.no_retain else RETAINED_LEAVES,
            include_uplink=args.include_uplink, progress=progress,
            confirm_s=_CONFIRM_S if args.confirm else None,
        )
