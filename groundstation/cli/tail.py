"""``groundstation tail``: live telemetry of every node.

On a terminal, a rich table redrawn in place (4 times a second at most); piped or with
``--plain``, one line per telemetry message under a header line, so ``tail | grep`` and
``tail > file`` keep the column names.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from flightsw.bus.mqtt import MqttBus
from flightsw.clock import WallClock
from flightsw.exceptions import ProtocolError
from flightsw.protocol import Telemetry, parse
from flightsw.timeutil import format_iso
from groundstation.cli._common import add_broker_arg

__all__ = ["COLUMNS", "header", "line", "register", "table"]

# (title, width, right-aligned, cell): one definition for the plain lines and the table
COLUMNS: tuple[tuple[str, int, bool, Callable[[Telemetry], str]], ...] = (
    ("node", 14, False, lambda t: t.node),
    ("profile", 22, False, lambda t: t.profile),
    ("mission time", 20, False, lambda t: format_iso(t.t)),
    ("lit", 4, False, lambda t: "sun" if t.sunlit >= 0.5 else "ecl"),
    ("soc", 5, True, lambda t: f"{t.soc:.0%}"),
    ("temp_C", 7, True, lambda t: f"{t.temperature_c:.1f}"),
    ("mode", 10, False, lambda t: t.power_mode),
    ("safe", 4, False, lambda t: "YES" if t.safe_mode else "-"),
    ("queue", 5, True, lambda t: str(t.queue_depth)),
    ("run", 3, True, lambda t: str(t.jobs_running)),
    ("done", 5, True, lambda t: str(t.jobs_done)),
    ("fail", 4, True, lambda t: str(t.jobs_failed)),
    ("solar_W", 8, True, lambda t: f"{t.solar_w:.1f}"),
    ("load_W", 8, True, lambda t: f"{t.load_w:.1f}"),
)


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("tail", help="live telemetry table")
    p.add_argument(
        "--count",
        type=int,
        default=0,
        help="stop after this many telemetry messages (0 = until Ctrl-C)",
    )
    p.add_argument("--plain", action="store_true", help="print rows, no in-place redraw")
    add_broker_arg(p)
    p.set_defaults(func=_run)


def _fmt(cells: list[str]) -> str:
    return " ".join(
        c.rjust(w) if right else c.ljust(w)
        for c, (_, w, right, _) in zip(cells, COLUMNS, strict=True)
    ).rstrip()


def header() -> str:
    return _fmt([title for title, *_ in COLUMNS])


def line(t: Telemetry) -> str:
    return _fmt([cell(t) for *_, cell in COLUMNS])


def table(latest: dict[str, Telemetry]) -> Table:
    tab = Table(box=None, header_style="bold", pad_edge=False)
    for title, _, right, _ in COLUMNS:
        tab.add_column(title, justify="right" if right else "left", no_wrap=True)
    for node in sorted(latest):
        t = latest[node]
        style = "red" if t.safe_mode else ("dim" if t.sunlit < 0.5 else None)
        tab.add_row(*(cell(t) for *_, cell in COLUMNS), style=style)
    return tab


def _run(args: argparse.Namespace) -> int:
    clock = WallClock()

    async def main() -> None:
        latest: dict[str, Telemetry] = {}
        seen = 0
        tty = sys.stdout.isatty() and not args.plain
        last_draw = 0.0
        live = Live(table(latest), console=Console(), auto_refresh=False) if tty else None
        if live is None:
            print(header(), flush=True)
        else:
            live.start()
        try:
            async with (
                MqttBus(
                    args.broker,
                    client_id=f"tail-{uuid.uuid4().hex[:8]}",
                    clean_start=True,
                    persistent_session=False,
                ) as bus,
                bus.subscribe("odc/sat/+/telemetry", qos=0) as sub,
            ):
                async for msg in sub:
                    try:
                        t = parse(Telemetry, msg.payload)
                    except ProtocolError as exc:
                        print(f"bad telemetry on {msg.topic}: {exc}", file=sys.stderr)
                        continue
                    latest[t.node] = t
                    seen += 1
                    now = clock.perf_counter()
                    if live is None:
                        print(line(t), flush=True)
                    elif now - last_draw > 0.25:
                        live.update(table(latest), refresh=True)
                        last_draw = now
                    if args.count and seen >= args.count:
                        return
        finally:
            if live is not None:
                live.update(table(latest), refresh=True)
                live.stop()

    asyncio.run(main())
    return 0
