"""Shared plumbing of the ``flightsw`` and ``groundstation`` command lines.

Each sub-command is a module with ``register(subparsers)`` that sets ``func``
(``Callable[[argparse.Namespace], int]``) as its parser default. A command line may also
take commands from an entry-point group: each entry point names a ``register`` function.
That is how ``flightsw demo`` is provided by ``groundstation`` (which imports both
packages) while ``flightsw`` never imports ``groundstation``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import sys
from collections.abc import Sequence

__all__ = ["COMMANDS_GROUP", "build_parser", "run"]

#: Entry-point group of extra ``flightsw`` sub-commands (``name = "module:register"``).
COMMANDS_GROUP = "flightsw.commands"


def build_parser(
    prog: str,
    description: str,
    package: str,
    commands: Sequence[str],
    *,
    entry_point_group: str | None = None,
) -> argparse.ArgumentParser:
    """A parser with ``package.NAME`` for each of ``commands`` (skipping absent modules),
    then each entry point of ``entry_point_group`` whose name is not taken yet.

    An entry point that cannot be imported is reported on stderr and left out, so a broken
    extra command does not take the others down.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    taken: set[str] = set()
    for name in commands:
        modname = f"{package}.{name}"
        if importlib.util.find_spec(modname) is None:
            continue
        importlib.import_module(modname).register(sub)
        taken.add(name)
    if entry_point_group is None:
        return parser
    found = importlib.metadata.entry_points(group=entry_point_group)
    for ep in sorted(found, key=lambda e: e.name):
        if ep.name in taken:
            continue
        try:
            register = ep.load()
        except ImportError as exc:
            print(f"{prog}: command {ep.name!r} ({ep.value}) is unavailable: {exc}",
                  file=sys.stderr)
            continue
        register(sub)
        taken.add(ep.name)
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
