"""The ground's job table, read from disk (read-only SQLite), for the job view and the API.

The ground service owns and writes ``jobs.sqlite`` (WAL mode); the console opens it
read-only, so it can neither block the ground's commits nor change a row. Paging, sorting
and filtering happen in SQL, so the view stays cheap with many thousands of jobs.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from flightsw.protocol import JobResult, parse
from groundstation.console.exceptions import ConsoleError, NotFound
from groundstation.protocol import JOB_STATES

__all__ = ["JobView"]

_FIELDS = (
    "job_id", "model", "state", "epoch", "node", "target", "attempts", "priority", "deadline",
    "value", "items", "submitted_at", "uplinked_at", "accepted_at", "started_at",
    "finished_at", "host_wall_s", "modelled_latency_s", "modelled_energy_j", "power_mode",
    "migrations", "duplicates", "reason", "detail",
)
#: columns a job table gained with pipeline jobs and micro-batches; shown when the table
#: has them (the ground adds them when it opens an older table)
_LATER = ("stages", "replans", "micro_batches", "parent")


class JobView:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._fields: tuple[str, ...] = _FIELDS

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            if not self.path.exists():
                raise NotFound(f"job table {self.path}: not there yet (no ground service?)")
            self._db = sqlite3.connect(
                f"file:{self.path}?mode=ro", uri=True, check_same_thread=False
            )
            self._db.row_factory = sqlite3.Row
            have = {str(r[1]) for r in self._db.execute("PRAGMA table_info(jobs)")}
            self._fields = _FIELDS + tuple(c for c in _LATER if c in have)
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def page(
        self,
        *,
        state: str | None = None,
        node: str | None = None,
        sort: str = "submitted_at",
        descending: bool = True,
        limit: int = 50,
        offset: int = 0,
    ) -> dict[str, Any]:
        if state is not None and state not in JOB_STATES:
            raise ConsoleError(f"state: {state!r} is not one of {', '.join(JOB_STATES)}")
        if sort not in _FIELDS:
            raise ConsoleError(f"sort: {sort!r} is not a job field")
        if not 1 <= limit <= 1000 or offset < 0:
            raise ConsoleError("limit: 1..1000, offset: >= 0")
        where, params = [], []
        if state is not None:
            where.append("state = ?")
            params.append(state)
        if node is not None:
            where.append("node = ?")
            params.append(node)
        cond = f" WHERE {' AND '.join(where)}" if where else ""
        try:
            db = self._conn()
            total = int(db.execute(f"SELECT COUNT(*) FROM jobs{cond}", params).fetchone()[0])
            rows = db.execute(
                f"SELECT {', '.join(self._fields)} FROM jobs{cond} ORDER BY {sort} "
                f"{'DESC' if descending else 'ASC'}, job_id LIMIT ? OFFSET ?",
                [*params, limit, offset],
            ).fetchall()
            # what clients submitted, as the ground's summary counts: a micro-batched job
            # once (its parent row), its children apart
            child = "parent IS NOT NULL" if "parent" in self._fields else "0"
            counts = {str(s): int(n) for s, n in db.execute(
                f"SELECT state, COUNT(*) FROM jobs WHERE NOT ({child}) GROUP BY state")}
            children = int(db.execute(f"SELECT COUNT(*) FROM jobs WHERE {child}").fetchone()[0])
        except sqlite3.Error as exc:
            raise ConsoleError(f"job table {self.path}: {exc}") from exc
        out: dict[str, Any] = {"total": total, "counts": counts,
                               "jobs": [dict(r) for r in rows]}
        if children:
            out["micro_batches"] = children
        return out

    def job(self, job_id: str) -> dict[str, Any]:
        try:
            r = self._conn().execute(
                f"SELECT {', '.join(self._fields)}, result_blob FROM jobs WHERE job_id = ?",
                (job_id,)
            ).fetchone()
        except sqlite3.Error as exc:
            raise ConsoleError(f"job table {self.path}: {exc}") from exc
        if r is None:
            raise NotFound(f"job {job_id!r}: not in the job table")
        d = dict(r)
        blob = d.pop("result_blob")
        d["outputs"] = None
        if blob is not None:
            res = parse(JobResult, blob)
            d["outputs"] = {
                name: {"dtype": t.dtype, "shape": t.shape,
                       "data": t.to_array(f"outputs.{name}").tolist()}
                for name, t in res.outputs.items()
            }
        return d
