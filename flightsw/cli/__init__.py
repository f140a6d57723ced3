"""``flightsw`` command line: one module per sub-command, each with ``register()``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from flightsw.cliutil.dispatch import build_parser as _build
from flightsw.cliutil.dispatch import run
from flightsw.exceptions import FlightSwError

__all__ = ["build_parser", "main"]

_COMMANDS = ("profiles", "eclipses", "passes", "node", "sim", "demo")


def build_parser() -> argparse.ArgumentParser:
    return _build(
        "flightsw",
        "Flight software of an orbital AI data-centre node, and mission tools.",
        "flightsw.cli",
        _COMMANDS,
    )


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv, (FlightSwError,))


if __name__ == "__main__":
    raise SystemExit(main())
