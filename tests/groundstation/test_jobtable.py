"""The ground's durable job table (a real SQLite file)."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from flightsw.protocol import JobResult, JobSubmit, Tensor, dump
from groundstation.exceptions import GroundError, JobNotFound
from groundstation.jobtable import JobTable
from groundstation.protocol import JOB_STATES, JobRecord

MODEL = hashlib.sha256(b"model").hexdigest()
T = 1_790_000_000.0


def _job(job_id: str, submitted_at: float, **over: object) -> JobSubmit:
    image = np.arange(12, dtype=np.float32).reshape(2, 6) + submitted_at % 7
    fields: dict[str, object] = {
        "job_id": job_id, "model": MODEL, "inputs": {"image": Tensor.from_array(image)},
        "priority": 7, "deadline": submitted_at + 600.0, "value": 2.5,
        "submitted_at": submitted_at,
    }
    return JobSubmit(**{**fields, **over})


def _result(job_id: str) -> JobResult:
    return JobResult(
        job_id=job_id, epoch=1, node="sat-2", status="done", items=2,
        outputs={"label": Tensor.from_array(np.array([3, 1], np.int64))},
        finished_at=T + 50.0, modelled_latency_s=0.2, power_mode="25W",
    )


@pytest.fixture
def table(tmp_path: Path) -> Iterator[JobTable]:
    t = JobTable(tmp_path / "ground" / "jobs.sqlite")
    try:
        yield t
    finally:
        t.close()


def test_insert_and_read_back(table: JobTable) -> None:
    job = _job("a", T)
    table.insert(job, target="sat-1", items=2)
    assert table.exists("a") and not table.exists("b")
    row = table.row("a")
    assert row["state"] == "queued" and row["target"] == "sat-1" and row["items"] == 2
    assert (row["priority"], row["deadline"], row["value"]) == (7, T + 600.0, 2.5)
    assert (row["attempts"], row["migrations"], row["duplicates"], row["node"]) == (0, 0, 0, None)
    assert table.submitted("a") == job  # inputs included
    assert table.result("a") is None
    rec = table.record("a")
    assert isinstance(rec, JobRecord) and rec.job_id == "a" and rec.model == MODEL
    assert rec.outputs is None


def test_update_and_result(table: JobTable) -> None:
    table.insert(_job("a", T), target=None, items=2)
    table.update("a", state="running", node="sat-2", epoch=1, started_at=T + 10.0)
    rec = table.record("a", with_outputs=True)
    assert (rec.state, rec.node, rec.epoch, rec.started_at) == ("running", "sat-2", 1, T + 10.0)
    assert rec.outputs is None  # not terminal yet
    res = _result("a")
    table.update("a", state="done", finished_at=res.finished_at, result_blob=dump(res))
    assert table.result("a") == res
    rec = table.record("a", with_outputs=True)
    assert rec.state == "done" and rec.outputs == res.outputs
    assert table.record("a").outputs is None  # only when asked


def test_duplicate_job_id_is_named(table: JobTable) -> None:
    table.insert(_job("dup-1", T), target=None, items=2)
    with pytest.raises(GroundError, match="job_id: 'dup-1' already exists"):
        table.insert(_job("dup-1", T + 1.0), target=None, items=2)
    assert table.row("dup-1")["submitted_at"] == T  # the first one is kept


@pytest.mark.parametrize("read", ["row", "record", "submitted", "result"])
def test_unknown_job_is_named(table: JobTable, read: str) -> None:
    with pytest.raises(JobNotFound, match="job_id: no job 'ghost'"):
        getattr(table, read)("ghost")


def test_unknown_columns_are_named(table: JobTable) -> None:
    table.insert(_job("a", T), target=None, items=2)
    with pytest.raises(GroundError, match=r"unknown columns \['colour', 'size'\]"):
        table.update("a", state="done", colour="red", size=3)
    assert table.row("a")["state"] == "queued"  # nothing of a refused update is applied


def test_active_all_counts(table: JobTable) -> None:
    for k, job_id in enumerate(["c", "a", "d", "b"]):
        table.insert(_job(job_id, T + 10.0 * k), target=None, items=2)
    table.insert(_job("tie", T), target=None, items=2)  # same time as "c": id breaks the tie
    table.update("a", state="done")
    table.update("d", state="failed", reason="inputs: bad")
    table.update("b", state="running")
    assert [r["job_id"] for r in table.active()] == ["c", "tie", "b"]
    assert [r.job_id for r in table.all()] == ["c", "tie", "a", "d", "b"]
    assert [r.job_id for r in table.all(limit=2)] == ["c", "tie"]
    assert table.counts() == {"queued": 2, "done": 1, "failed": 1, "running": 1}
    assert set(table.counts()) <= set(JOB_STATES)
    assert table.record("d").reason == "inputs: bad"


def test_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    first = JobTable(path)
    job = _job("keep", T)
    first.insert(job, target="sat-1", items=2)
    first.update("keep", state="done", result_blob=dump(_result("keep")), lease_seen=T + 5.0)
    first.close()
    again = JobTable(path)
    try:
        assert again.submitted("keep") == job
        assert again.result("keep") == _result("keep")
        assert again.row("keep")["lease_seen"] == T + 5.0
        assert again.record("keep").state == "done"
        again.insert(_job("next", T + 1.0), target=None, items=1)
        assert again.counts() == {"done": 1, "queued": 1}
    finally:
        again.close()
    # another reader sees committed rows (WAL mode, every change committed at once)
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 2


def test_unopenable_file_is_a_ground_error(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(GroundError, match=str(path)):
        JobTable(path)
