"""``groundstation`` command line: one module per sub-command, each with ``register()``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from flightsw.cliutil.dispatch import build_parser as _build
from flightsw.cliutil.dispatch import run
from flightsw.exceptions import FlightSwError
from groundstation.exceptions import GroundError

__all__ = ["build_parser", "main"]

_COMMANDS = (
    "serve", "models", "submit", "train", "jobs", "result", "tail", "replay", "report", "demo",
    "keys",
)


def build_parser() -> argparse.ArgumentParser:
    return _build(
        "groundstation",
        "Ground segment: submit jobs, archive telemetry, replay and report.",
        "groundstation.cli",
        _COMMANDS,
    )


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv, (GroundError, FlightSwError))


if __name__ == "__main__":
    raise SystemExit(main())
