"""``groundstation submit`` refusals before any connection, and the ``jobs`` table's units."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from node_harness import DIGITS

from groundstation.cli import main
from groundstation.cli.jobs import format_table
from groundstation.protocol import JobRecord

NO_BROKER = ["--broker", "mqtt://127.0.0.1:9", "--timeout", "1"]


def test_out_without_wait_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "x.npy", np.zeros((1, 64), np.float32))
    code = main(["submit", str(DIGITS), str(tmp_path / "x.npy"), "-o", str(tmp_path / "o.npz"),
                 *NO_BROKER])
    assert code == 2
    assert "--wait" in capsys.readouterr().err
    assert not (tmp_path / "o.npz").exists()


def test_text_input_is_named_not_a_pickle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "x.txt").write_text("0.1 0.2 0.3\n")
    assert main(["submit", str(DIGITS), str(tmp_path / "x.txt"), *NO_BROKER]) == 2
    err = capsys.readouterr().err
    assert "not a .npy or .npz file" in err and "pickle" not in err
    assert main(["submit", str(DIGITS), str(tmp_path / "missing.npy"), *NO_BROKER]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_jobs_table_uses_si_prefixes() -> None:
    rec = JobRecord(job_id="j1", model="m" * 64, state="done", node="sat-1",
                    modelled_latency_s=4.29e-7, modelled_energy_j=3.0e-6)
    table = format_table([rec])
    row = table.splitlines()[1]
    assert "429 ns" in row and "3 µJ" in row
    assert "0.0000" not in row and "0.00" not in row
