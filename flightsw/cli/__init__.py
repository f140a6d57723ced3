"""``flightsw`` command line: one module per sub-command, each with ``register()``, plus the
commands other installed packages declare in the ``flightsw.commands`` entry-point group."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from flightsw.cliutil.dispatch import COMMANDS_GROUP, run
from flightsw.cliutil.dispatch import build_parser as _build
from flightsw.exceptions import FlightSwError

__all__ = ["build_parser", "main"]

_COMMANDS = ("profiles", "eclipses", "passes", "node", "nodes", "sim", "economics", "sweep")
# and each entry point of COMMANDS_GROUP: ``demo`` comes from groundstation/cli/demo.py
# (declared in pyproject.toml), since the demo drives the ground station too


def build_parser() -> argparse.ArgumentParser:
    return _build(
        "flightsw",
        "Flight software of an orbital AI data-centre node, and mission tools.",
        "flightsw.cli",
        _COMMANDS,
        entry_point_group=COMMANDS_GROUP,
    )


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv, (FlightSwError,))


if __name__ == "__main__":
    raise SystemExit(main())
