"""The console's read-only view of the ground's job table (a real SQLite file)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np

from flightsw.protocol import JobSubmit, Tensor
from groundstation.console.jobview import JobView
from groundstation.jobtable import JobTable

MODEL = hashlib.sha256(b"model").hexdigest()
T = 1_790_000_000.0


def _job(job_id: str, items: int) -> JobSubmit:
    x = np.zeros((items, 3), dtype=np.float32)
    return JobSubmit(job_id=job_id, model=MODEL, inputs={"x": Tensor.from_array(x)},
                     submitted_at=T)


def test_a_micro_batched_job_counts_once_and_its_children_apart(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    table = JobTable(path)
    table.insert(_job("plain", 2), None, 2)
    table.insert_micro_batched(_job("p", 8), 8,
                               [(_job(f"p.mb00{m}", 2), 2) for m in range(4)])
    table.close()
    view = JobView(path)
    try:
        page = view.page(sort="job_id", descending=False)
        # every row is listed; the counts are of submissions, as the ground's summary
        assert page["total"] == 6
        assert page["counts"] == {"queued": 2}
        assert page["micro_batches"] == 4
        rows = {j["job_id"]: j for j in page["jobs"]}
        assert rows["p"]["micro_batches"] == 4 and rows["p"]["parent"] is None
        assert rows["p.mb002"]["parent"] == "p"
        assert view.job("p.mb001")["parent"] == "p"
    finally:
        view.close()


def test_a_table_from_before_pipelines_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    table = JobTable(path)
    table.insert(_job("old", 2), None, 2)
    table.close()
    db = sqlite3.connect(path)
    db.execute("DROP INDEX jobs_parent")
    for col in ("parent", "micro_batches", "replans", "stages"):
        db.execute(f"ALTER TABLE jobs DROP COLUMN {col}")
    db.commit()
    db.close()
    view = JobView(path)
    try:
        page = view.page()
        assert page["counts"] == {"queued": 1} and "micro_batches" not in page
        assert "parent" not in page["jobs"][0]
    finally:
        view.close()
