"""``groundstation`` command line: one module per sub-command, each with ``register()``."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence

from flightsw.exceptions import FlightSwError
from groundstation.exceptions import GroundError

__all__ = ["main"]

_COMMANDS = ("serve", "models", "submit", "jobs", "result", "tail", "replay", "report")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="groundstation",
        description="Ground segment: submit jobs, archive telemetry, replay and report.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMANDS:
        modname = f"groundstation.cli.{name}"
        if importlib.util.find_spec(modname) is None:
            continue
        importlib.import_module(modname).register(sub)
    return parser


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first non-group exception inside ``group`` (nested task groups included)."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        try:
            code: int = args.func(args)
        except BaseExceptionGroup as group:  # a task group's failure: report its cause
            raise _first_leaf(group) from group
    except (GroundError, FlightSwError) as exc:
        print(f"groundstation {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    raise SystemExit(main())
