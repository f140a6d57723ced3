"""``groundstation jobs``: the job table."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from flightsw.timeutil import format_iso
from groundstation.cli._common import add_broker_arg, connect_client
from groundstation.console.units import si
from groundstation.protocol import JobRecord

__all__ = ["format_table", "register"]


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("jobs", help="list jobs and their state")
    p.add_argument("--json", action="store_true", help="JSON list of job records")
    add_broker_arg(p)
    p.set_defaults(func=_run)


def format_table(records: list[JobRecord]) -> str:
    head = (
        f"{'job':<34} {'state':<9} {'node':<14} {'ep':>2} {'att':>3} {'submitted':<20} "
        f"{'latency':>10} {'energy':>10}  reason"
    )
    lines = [head]
    for r in records:
        lat = "" if r.modelled_latency_s is None else si(r.modelled_latency_s, "s")
        en = "" if r.modelled_energy_j is None else si(r.modelled_energy_j, "J")
        lines.append(
            f"{r.job_id:<34} {r.state:<9} {r.node or '-':<14} {r.epoch:>2} {r.attempts:>3} "
            f"{format_iso(r.submitted_at):<20} {lat:>10} {en:>10}  {r.reason or ''}"
        )
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    async def main() -> list[JobRecord]:
        async with connect_client(args) as gc:
            return await gc.jobs()

    records = asyncio.run(main())
    if args.json:
        print(
            json.dumps([r.model_dump(mode="json", exclude={"outputs"}) for r in records], indent=1)
        )
    else:
        print(format_table(records))
    return 0
