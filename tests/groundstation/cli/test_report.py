"""``groundstation report``."""

from __future__ import annotations

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
