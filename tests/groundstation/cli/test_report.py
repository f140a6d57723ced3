"""``groundstation report``."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from groundstation.cli import main


def test_report_writes_a_png(mission: Any, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.png"
    assert main(["report", str(mission.path), "-o", str(out), "--node", "sat-001",
                 "--node", "sat-003"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote" in capsys.readouterr().err


def test_report_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "nope"), "-o", str(tmp_path / "r.png")]) == 2
    assert "no such directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty"), "-o", str(tmp_path / "r.png")]) == 2
    assert "no telemetry to report" in capsys.readouterr().err


def test_report_of_the_serve_archive_dir_reads_its_telemetry(
    mission: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``serve --archive DIR`` keeps the archive in DIR/telemetry: given DIR (or the
    demo's OUT/archive), the report reads DIR/telemetry and says so."""
    shutil.copytree(mission.path, tmp_path / "archive" / "telemetry")
    out = tmp_path / "r.png"
    assert main(["report", str(tmp_path / "archive"), "-o", str(out), "--node", "sat-001"]) == 0
    err = capsys.readouterr().err
    assert f"reading {tmp_path / 'archive' / 'telemetry'}" in err
    assert "1 nodes" in err and out.exists()
