"""Scenario fields overridden by dotted path (``scheduler.lease_s``, ``jobs.digits.value``).

A sweep varies any field of a scenario file. The path walks the scenario as written in
TOML, with its defaults filled in: a table by key, an array of tables by the ``name`` of an
element (``jobs.digits``) or by its index (``jobs[0]`` or ``jobs.0``). Setting a key that a
table does not hold yet adds it (the scenario schema then judges it), so a misspelt field
is refused by the schema with its dotted name, like any bad scenario field.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from flightsw.exceptions import ConfigError

__all__ = ["apply_overrides", "parse_path"]

_NAME = r"[A-Za-z0-9_-]+"
_PART = re.compile(rf"({_NAME})|\[(\d+)\]")
_WHOLE = re.compile(rf"{_NAME}(\[\d+\])*(\.{_NAME}(\[\d+\])*)*")

#: Fields a sweep sets through its own axes, never through ``overrides``.
RESERVED = {"seed": "seeds", "scheduler.policy": "policies", "name": "scenarios"}


def parse_path(path: str) -> tuple[str | int, ...]:
    """``"jobs[0].rate_per_hour"`` -> ``("jobs", 0, "rate_per_hour")``; a bare digit
    segment (``jobs.0``) stays a string and is matched as a name first, then an index."""
    if not _WHOLE.fullmatch(path):
        raise ConfigError(f"{path!r}: not a dotted path (write e.g. scheduler.lease_s or "
                          "jobs[0].rate_per_hour)")
    return tuple(m.group(1) if m.group(1) is not None else int(m.group(2))
                 for m in _PART.finditer(path))


def _index(items: list[Any], part: str | int, where: str) -> int:
    if isinstance(part, str):
        named = [k for k, item in enumerate(items)
                 if isinstance(item, dict) and item.get("name") == part]
        if named:
            return named[0]
        if not part.isdigit():
            names = [item.get("name") for item in items if isinstance(item, dict)]
            raise ConfigError(f"{where}: no element named {part!r} (names: {names})")
        part = int(part)
    if not 0 <= part < len(items):
        raise ConfigError(f"{where}: index {part} out of range (the array has {len(items)})")
    return part


def apply_overrides(table: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``table`` with each dotted path set to its value."""
    out = copy.deepcopy(table)
    for path, value in overrides.items():
        parts = parse_path(path)
        node: Any = out
        where = ""
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            label = f"[{part}]" if isinstance(part, int) else part
            if isinstance(node, list):
                k = _index(node, part, f"{path}: {where or '<root>'}")
                where += f"[{k}]"
                if last:
                    node[k] = copy.deepcopy(value)
                else:
                    node = node[k]
                continue
            if not isinstance(node, dict) or isinstance(part, int):
                raise ConfigError(f"{path}: {where} is not an array; cannot take {label}")
            where += f".{part}" if where else part
            if last:
                node[part] = copy.deepcopy(value)
            elif node.get(part) is None:
                node[part] = {}
                node = node[part]
            else:
                node = node[part]
    return out
