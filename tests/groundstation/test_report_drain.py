"""The mission report marks the drain (from the last job submission to the end) when the
ground's job table sits beside the archive, and says why not when it does not."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.patches import Rectangle

from flightsw.archive import ArchiveReader
from flightsw.protocol import JobSubmit, Tensor
from groundstation.jobtable import JobTable
from groundstation.report import build_report, last_submission, write_report

MODEL = hashlib.sha256(b"model").hexdigest()


def _job(job_id: str, submitted_at: float) -> JobSubmit:
    image = Tensor.from_array(np.zeros((1, 4), np.float32))
    return JobSubmit(job_id=job_id, model=MODEL, inputs={"image": image},
                     submitted_at=submitted_at)


def _ground_dir(tmp_path: Path, mission_writer: Any, submits: list[float]) -> Path:
    """``DIR/telemetry`` (1 h of two nodes) and ``DIR/jobs.sqlite`` with ``submits``, as
    ``groundstation serve --archive DIR`` keeps them; the archive's path."""
    archive = tmp_path / "ground" / "telemetry"
    mission_writer.write(archive, nodes={"sat-a": "jetson-orin-nano-super",
                                         "sat-b": "starcloud-h100"}, hours=1.0, period_s=60.0)
    table = JobTable(tmp_path / "ground" / "jobs.sqlite")
    try:
        for i, t in enumerate(submits):
            table.insert(_job(f"{i:032x}", t), None, 1)
    finally:
        table.close()
    return archive


def _drain_spans(fig: Any) -> list[Rectangle]:
    return [p for row in fig.subfigs for ax in row.axes for p in ax.patches
            if p.get_gid() == "drain"]


def test_drain_from_the_last_submission_is_shaded(tmp_path: Path, mission_writer: Any) -> None:
    epoch = mission_writer.EPOCH
    # submissions for the first 45 minutes of the hour, the last one out of order
    archive = _ground_dir(tmp_path, mission_writer,
                          [epoch + 60.0 * k for k in range(40)] + [epoch + 2700.0, epoch + 5.0])
    assert last_submission(archive)[0] == epoch + 2700.0
    fig, summary = build_report(ArchiveReader(archive))
    assert summary.drain_from == epoch + 2700.0
    assert "last of 42 jobs submitted at" in summary.drain_note
    spans = _drain_spans(fig)
    assert len(spans) == 2 * 4  # every panel of both rows
    x0 = spans[0].get_x()
    assert abs(x0 - 0.75) < 1e-9  # 45 min into the hour
    assert "no job submitted after" in fig.get_suptitle()
    labels = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    assert "drain (after the last submission)" in labels
    out = write_report(ArchiveReader(archive), tmp_path / "r.png")
    assert out.drain_from == summary.drain_from


def test_no_job_table_no_drain_and_it_says_why(tmp_path: Path, mission_writer: Any) -> None:
    archive = tmp_path / "bare"
    mission_writer.write(archive, nodes={"sat-a": "jetson-orin-nano-super"}, hours=0.5,
                         period_s=60.0)
    fig, summary = build_report(ArchiveReader(archive))
    assert summary.drain_from is None
    assert "drain not determinable: no job table" in summary.drain_note
    assert not _drain_spans(fig)
    assert "drain" not in fig.get_suptitle()


def test_submissions_up_to_the_end_no_drain(tmp_path: Path, mission_writer: Any) -> None:
    epoch = mission_writer.EPOCH
    archive = _ground_dir(tmp_path, mission_writer, [epoch + 100.0, epoch + 7200.0])
    fig, summary = build_report(ArchiveReader(archive))
    assert summary.drain_from is None and "outside the span" in summary.drain_note
    assert not _drain_spans(fig)


def test_an_empty_or_unreadable_table_is_said(tmp_path: Path, mission_writer: Any) -> None:
    archive = _ground_dir(tmp_path, mission_writer, [])
    assert last_submission(archive) == (None, "drain not determinable: no job submitted ("
                                        f"{archive.parent / 'jobs.sqlite'})")
    (archive.parent / "jobs.sqlite").unlink()
    (archive.parent / "jobs.sqlite").write_bytes(b"not a database, " * 100)
    when, note = last_submission(archive)
    assert when is None and "drain not determinable: job table" in note
    assert "not a database" in note  # sqlite's own reason
