"""The results of a sweep on disk: one JSON file per run, ``DIR/runs/<run-id>.json``.

Each file is written whole or not at all (a temporary file in the same directory, then
``os.replace``), as soon as its run returns, so a crash of the driver or of a worker loses
at most the runs in flight; a re-run reads these files and skips their runs. The tables
are always rebuilt from them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flightsw.atomicfile import write_atomic
from flightsw.exceptions import ConfigError

__all__ = ["RunStore", "write_atomic"]


class RunStore:
    """The per-run result files under ``out/runs``."""

    def __init__(self, out: Path) -> None:
        self.dir = out / "runs"
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"out: cannot create {self.dir}: {exc.strerror}") from exc

    def path(self, run_id: str) -> Path:
        return self.dir / f"{run_id}.json"

    def save(self, result: dict[str, Any]) -> None:
        text = json.dumps(result, sort_keys=True, indent=1) + "\n"
        write_atomic(self.path(result["run_id"]), text.encode())

    def load(self, run_id: str) -> dict[str, Any] | None:
        """The stored result of ``run_id``, or ``None`` if it has none (an unreadable file,
        which only an outside hand can make, counts as none: the run is done again)."""
        try:
            result: dict[str, Any] = json.loads(self.path(run_id).read_text())
        except (OSError, ValueError):
            return None
        if result.get("run_id") != run_id or result.get("status") not in ("ok", "failed"):
            return None
        return result
