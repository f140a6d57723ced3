"""Reading a TOML file of the user's (scenario, sweep, study, lifetime scenario): one rule
for the errors, each naming the file and what is wrong with it."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from flightsw.exceptions import ConfigError

__all__ = ["read_toml"]


def read_toml(path: Path, what: str, error: type[ConfigError] = ConfigError) -> dict[str, Any]:
    """The table in ``path``; ``error`` names the file if it cannot be read (``what`` says
    which kind of file), is not UTF-8 text, or is not valid TOML."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror}") from exc
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise error(f"{path.name}: not UTF-8 text: {exc.reason}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path.name}: invalid TOML: {exc}") from exc
