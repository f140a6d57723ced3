"""Container health check for the node and ground station images (docker HEALTHCHECK).

Healthy when all hold:

1. a long-running service process runs in the container (``flightsw node``,
   ``flightsw nodes`` or ``groundstation serve``), found by scanning ``/proc/*/cmdline``;
2. the package imports (``flightsw.cli``, ``groundstation.cli``);
3. the service's heartbeat file, when present, was modified less than ``ODC_HEALTH_MAX_AGE``
   seconds ago (default 60). The file is ``heartbeat`` in the service's ``--data-dir``
   (node) or ``--state-dir`` (node host; either else ``$ODC_DATA_DIR``) or ``--archive``
   (ground station) directory, or
   ``ODC_HEARTBEAT_FILE``. A missing
   file is not a failure: a service that writes none is judged by 1 and 2 alone.

Exit status 0 = healthy, 1 = unhealthy (the reason goes to stdout, which docker keeps in
``docker inspect``'s health log). Standard library plus the package import only.

This file runs outside the package, in its own short-lived process: it compares the file's
modification time with the host clock directly (the package's ``Clock`` is for mission time).
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from pathlib import Path

__all__ = ["check", "main"]

_SERVICES = {("flightsw", "node"): "--data-dir", ("flightsw", "nodes"): "--state-dir",
             ("groundstation", "serve"): "--archive"}
_DEFAULT_MAX_AGE_S = 60.0


def _cmdlines(proc: Path) -> list[list[str]]:
    out: list[list[str]] = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:  # the process ended while we looked
            continue
        args = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
        if args:
            out.append(args)
    return out


def _service(args: list[str]) -> tuple[str, str] | None:
    """``(program, dir-option)`` when ``args`` run a service, e.g. ``python .../flightsw node``."""
    for i, arg in enumerate(args[:-1]):
        program = Path(arg).name
        option = _SERVICES.get((program, args[i + 1]))
        if option is not None:
            return program, option
    return None


def _option(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def check(proc: Path = Path("/proc"), env: dict[str, str] | None = None) -> str | None:
    """``None`` when healthy, else the reason."""
    env = dict(os.environ) if env is None else env
    services = [(args, svc) for args in _cmdlines(proc) if (svc := _service(args))]
    if not services:
        return "no 'flightsw node', 'flightsw nodes' or 'groundstation serve' process is running"
    for module in ("flightsw.cli", "groundstation.cli"):
        try:
            importlib.import_module(module)
        except Exception as exc:
            return f"cannot import {module}: {exc!r}"
    try:
        max_age = float(env.get("ODC_HEALTH_MAX_AGE", _DEFAULT_MAX_AGE_S))
    except ValueError:
        return f"ODC_HEALTH_MAX_AGE: not a number: {env['ODC_HEALTH_MAX_AGE']!r}"
    for args, (program, option) in services:
        explicit = env.get("ODC_HEARTBEAT_FILE")
        directory = _option(args, option)
        if directory is None and option in ("--data-dir", "--state-dir"):
            directory = env.get("ODC_DATA_DIR")  # the node's (host's) default directory
        if explicit:
            beat = Path(explicit)
        elif directory:
            beat = Path(directory) / "heartbeat"
        else:
            continue
        try:
            mtime = beat.stat().st_mtime
        except FileNotFoundError:
            continue
        age = time.time() - mtime
        if age > max_age:
            return f"{program}: heartbeat {beat} is {age:.0f} s old (limit {max_age:.0f} s)"
    return None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    proc = Path(args[1]) if len(args) == 2 and args[0] == "--proc" else Path("/proc")
    reason = check(proc)
    if reason is None:
        print("healthy")
        return 0
    print(f"unhealthy: {reason}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
