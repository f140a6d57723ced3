"""The results of a sweep on disk: one JSON file per run, ``DIR/runs/<run-id>.json``.

Each file is written whole or not at all (a temporary file in the same directory, then
``os.replace``), as soon as its run returns, so a crash of the driver or of a worker loses
at most the runs in flight; a re-run reads these files and skips their runs. The tables
are always rebuilt from them.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from flightsw.exceptions import ConfigError

__all__ = ["RunStore", "write_atomic"]


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the whole new one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
