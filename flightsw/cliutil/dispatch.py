"""Shared plumbing of the ``flightsw`` and ``groundstation`` command lines.

Each sub-command is a module with ``register(subparsers)`` that sets ``func``
(``Callable[[argparse.Namespace], int]``) as its parser default.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "run"]


def build_parser(
    prog: str, description: str, package: str, commands: Sequence[str]
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in commands:
        modname = f"{package}.{name}"
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


def run(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    expected: tuple[type[BaseException], ...],
) -> int:
    """Parse, run the sub-command; an ``expected`` error prints one line and exits 2."""
    args = parser.parse_args(argv)
    try:
        try:
            code: int = args.func(args)
        except BaseExceptionGroup as group:  # a task group's failure: report its cause
            raise _first_leaf(group) from group
    except expected as exc:
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code
