"""The ground's durable job table (SQLite in WAL mode, one row per job).

Every change is committed before the service acts on it, so a restart of the service
resumes every job from its last recorded state; the submitted job (inputs included) and
the result (outputs included) are kept as msgpack blobs.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flightsw.protocol import JobResult, JobSubmit, dump, parse
from flightsw.protocol.sign import Marks
from groundstation.exceptions import GroundError, JobNotFound
from groundstation.protocol import TERMINAL, JobRecord

__all__ = ["JobTable"]

_COLUMNS = (
    "job_id",
    "model",
    "state",
    "epoch",
    "node",
    "target",
    "attempts",
    "priority",
    "deadline",
    "value",
    "items",
    "submitted_at",
    "uplinked_at",
    "accepted_at",
    "started_at",
    "finished_at",
    "host_wall_s",
    "modelled_latency_s",
    "modelled_energy_j",
    "power_mode",
    "migrations",
    "duplicates",
    "stages",
    "replans",
    "micro_batches",
    "parent",
    "reason",
    "detail",
    "lease_seen",
)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS jobs (
    {", ".join(c + (" TEXT PRIMARY KEY" if c == "job_id" else "") for c in _COLUMNS)},
    submit_blob BLOB NOT NULL,
    result_blob BLOB,
    resume_blob BLOB
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
CREATE TABLE IF NOT EXISTS node_auth (
    node TEXT PRIMARY KEY, seq INTEGER NOT NULL, status_seq INTEGER, will_seq INTEGER
);
"""


class JobTable:
    """Durable job rows; :meth:`update` commits at once."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._add_missing_columns()
        except sqlite3.Error as exc:
            raise GroundError(f"job table {path}: {exc}") from exc
        self._db.row_factory = sqlite3.Row
        self.path = path

    def _add_missing_columns(self) -> None:
        """A table written before a column existed gains it (``stages``, ``replans``,
        ``micro_batches``: 0; ``resume_blob``, ``parent``: none)."""
        have = {r[1] for r in self._db.execute("PRAGMA table_info(jobs)")}
        for col in ("stages", "replans", "micro_batches"):
            if col not in have:
                self._db.execute(f"ALTER TABLE jobs ADD COLUMN {col} INTEGER NOT NULL DEFAULT 0")
        if "parent" not in have:
            self._db.execute("ALTER TABLE jobs ADD COLUMN parent TEXT")
        self._db.execute("CREATE INDEX IF NOT EXISTS jobs_parent ON jobs(parent)")
        if "resume_blob" not in have:
            self._db.execute("ALTER TABLE jobs ADD COLUMN resume_blob BLOB")

    def close(self) -> None:
        self._db.close()

    def insert(self, job: JobSubmit, target: str | None, items: int, *,
               parent: str | None = None, micro_batches: int = 0) -> None:
        row = {
            "job_id": job.job_id,
            "model": job.model,
            "state": "queued",
            "epoch": job.epoch,
            "node": None,
            "target": target,
            "attempts": 0,
            "priority": job.priority,
            "deadline": job.deadline,
            "value": job.value,
            "items": items,
            "submitted_at": job.submitted_at,
            "migrations": 0,
            "duplicates": 0,
            "stages": 0 if job.pipeline is None else len(job.pipeline.stages),
            "replans": 0,
            "micro_batches": micro_batches,
            "parent": parent,
        }
        cols = ", ".join([*row, "submit_blob"])
        marks = ", ".join("?" for _ in range(len(row) + 1))
        try:
            self._db.execute(
                f"INSERT INTO jobs ({cols}) VALUES ({marks})", [*row.values(), dump(job)]
            )
        except sqlite3.IntegrityError as exc:
            raise GroundError(f"job_id: {job.job_id!r} already exists") from exc

    def insert_micro_batched(self, job: JobSubmit, items: int,
                             children: list[tuple[JobSubmit, int]]) -> None:
        """A micro-batched job's row and its children's (each ``(job, items)``, in order),
        all or none (one transaction)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self.insert(job, None, items, micro_batches=len(children))
            for child, n in children:
                self.insert(child, None, n, parent=job.job_id)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def children(self, parent: str) -> list[dict[str, Any]]:
        """The rows of a micro-batched job's children, in the order of their parts."""
        cur = self._db.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE parent = ? ORDER BY job_id",
            (parent,))
        return [dict(r) for r in cur.fetchall()]

    def exists(self, job_id: str) -> bool:
        cur = self._db.execute("SELECT 1 FROM jobs WHERE job_id = ?", (job_id,))
        return cur.fetchone() is not None

    def update(self, job_id: str, **fields: Any) -> None:
        bad = set(fields) - set(_COLUMNS) - {"result_blob", "resume_blob"}
        if bad:
            raise GroundError(f"job table: unknown columns {sorted(bad)}")
        sets = ", ".join(f"{k} = ?" for k in fields)
        self._db.execute(f"UPDATE jobs SET {sets} WHERE job_id = ?", [*fields.values(), job_id])

    def row(self, job_id: str) -> dict[str, Any]:
        cur = self._db.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE job_id = ?", (job_id,)
        )
        r = cur.fetchone()
        if r is None:
            raise JobNotFound(f"job_id: no job {job_id!r}")
        return dict(r)

    def record(self, job_id: str, *, with_outputs: bool = False) -> JobRecord:
        row = self.row(job_id)
        row.pop("lease_seen", None)
        rec = JobRecord(**row)
        if with_outputs and row["state"] in TERMINAL:
            res = self.result(job_id)
            if res is not None:
                rec.outputs = res.outputs
        return rec

    def submitted(self, job_id: str) -> JobSubmit:
        cur = self._db.execute("SELECT submit_blob FROM jobs WHERE job_id = ?", (job_id,))
        r = cur.fetchone()
        if r is None:
            raise JobNotFound(f"job_id: no job {job_id!r}")
        return parse(JobSubmit, bytes(r[0]))

    def resume(self, job_id: str) -> JobSubmit | None:
        """The stages left of a pipeline job a member gave back (its next stage, on the
        outputs of the stages done), None if it has none."""
        cur = self._db.execute("SELECT resume_blob FROM jobs WHERE job_id = ?", (job_id,))
        r = cur.fetchone()
        if r is None:
            raise JobNotFound(f"job_id: no job {job_id!r}")
        return None if r[0] is None else parse(JobSubmit, bytes(r[0]))

    def submit_bytes(self, job_id: str) -> int:
        """Size of the submitted job's msgpack encoding (what its uplink carries)."""
        cur = self._db.execute("SELECT length(submit_blob) FROM jobs WHERE job_id = ?", (job_id,))
        r = cur.fetchone()
        if r is None:
            raise JobNotFound(f"job_id: no job {job_id!r}")
        return int(r[0])

    def result(self, job_id: str) -> JobResult | None:
        cur = self._db.execute("SELECT result_blob FROM jobs WHERE job_id = ?", (job_id,))
        r = cur.fetchone()
        if r is None:
            raise JobNotFound(f"job_id: no job {job_id!r}")
        return None if r[0] is None else parse(JobResult, bytes(r[0]))

    def active(self) -> Iterator[dict[str, Any]]:
        """Rows not yet done or failed, oldest first."""
        cur = self._db.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE state NOT IN ('done', 'failed') "
            "ORDER BY submitted_at, job_id"
        )
        for r in cur.fetchall():
            yield dict(r)

    def all(self, limit: int | None = None) -> list[JobRecord]:
        q = f"SELECT {', '.join(_COLUMNS)} FROM jobs ORDER BY submitted_at, job_id"
        if limit is not None:
            q += f" LIMIT {int(limit)}"
        out = []
        for r in self._db.execute(q).fetchall():
            d = dict(r)
            d.pop("lease_seen", None)
            out.append(JobRecord(**d))
        return out

    # -- sealed node messages: what was accepted per node (flightsw.protocol.sign.Marks) ---
    def auth_marks(self) -> dict[str, Marks]:
        """Per node, the marks of sealed messages accepted before (kept across restarts)."""
        rows = self._db.execute("SELECT node, seq, status_seq, will_seq FROM node_auth")
        return {str(n): Marks(int(q), s, w) for n, q, s, w in rows}

    def save_auth(self, marks: dict[str, Marks]) -> None:
        self._db.executemany(
            "INSERT INTO node_auth (node, seq, status_seq, will_seq) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(node) DO UPDATE SET seq = max(seq, excluded.seq), "
            "status_seq = excluded.status_seq, will_seq = excluded.will_seq",
            [(n, m.high, m.status, m.will) for n, m in marks.items()],
        )

    def counts(self, *, children: bool = False) -> dict[str, int]:
        """Rows by state: the jobs clients submitted (plain jobs and micro-batched parents),
        or with ``children`` only the micro-batches (rows with a ``parent``), so a
        micro-batched submission counts once."""
        where = "parent IS NOT NULL" if children else "parent IS NULL"
        cur = self._db.execute(f"SELECT state, COUNT(*) FROM jobs WHERE {where} GROUP BY state")
        return {str(s): int(n) for s, n in cur.fetchall()}
