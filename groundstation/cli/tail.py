"""``groundstation tail``: live telemetry of every node, a table updated in place."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from typing import Any

from flightsw.bus.mqtt import MqttBus
from flightsw.clock import WallClock
from flightsw.exceptions import ProtocolError
from flightsw.protocol import Telemetry, parse
from flightsw.timeutil import format_iso
from groundstation.cli._common import add_broker_arg

__all__ = ["register", "render"]


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


def render(latest: dict[str, Telemetry]) -> str:
    head = (
        f"{'node':<14} {'profile':<22} {'mission time':<20} {'lit':<4} {'soc':>5} "
        f"{'temp_C':>7} {'mode':<10} {'safe':<4} {'queue':>5} {'run':>3} {'done':>5} "
        f"{'fail':>4} {'solar_W':>8} {'load_W':>8}"
    )
    rows = [head]
    for node in sorted(latest):
        t = latest[node]
        rows.append(
            f"{t.node:<14} {t.profile:<22} {format_iso(t.t):<20} "
            f"{'sun' if t.sunlit >= 0.5 else 'ecl':<4} {t.soc:>5.0%} {t.temperature_c:>7.1f} "
            f"{t.power_mode:<10} {'YES' if t.safe_mode else '-':<4} {t.queue_depth:>5} "
            f"{t.jobs_running:>3} {t.jobs_done:>5} {t.jobs_failed:>4} {t.solar_w:>8.1f} "
            f"{t.load_w:>8.1f}"
        )
    return "\n".join(rows)


def _run(args: argparse.Namespace) -> int:
    clock = WallClock()

    async def main() -> None:
        latest: dict[str, Telemetry] = {}
        seen = 0
        tty = sys.stdout.isatty() and not args.plain
        last_draw = 0.0
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
                if tty and now - last_draw > 0.25:
                    sys.stdout.write("\x1b[H\x1b[2J" + render(latest) + "\n")
                    sys.stdout.flush()
                    last_draw = now
                elif not tty:
                    print(render({t.node: t}).splitlines()[1], flush=True)
                if args.count and seen >= args.count:
                    return

    asyncio.run(main())
    return 0
