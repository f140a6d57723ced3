"""The ground's part in pipeline jobs: submission checks, the chain rule it uses (the one in
flightsw.constellation.chain, whose tests are tests/flightsw/constellation/test_chain.py),
the job table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flightsw.constellation import chain
from flightsw.protocol import JobSubmit, Tensor, dump
from flightsw.protocol.messages import Pipeline
from flightsw.protocol.warrant import inputs_sha256
from groundstation import pipeline
from groundstation.exceptions import RequestError
from groundstation.jobtable import JobTable
from groundstation.pipeline import check_stages

STAGES = ["a1" * 32, "b2" * 32, "c3" * 32]


def test_the_ground_chooses_with_the_one_chain_rule() -> None:
    # the rule's own tests are tests/flightsw/constellation/test_chain.py; the ground
    # re-exports it and keeps no copy
    for name in chain.__all__:
        assert getattr(pipeline, name) is getattr(chain, name), name


def test_a_submission_is_checked_naming_the_field() -> None:
    def stored(m: str) -> bool:
        return m != STAGES[2]

    check_stages(STAGES[0], STAGES[:2], None, stored)
    with pytest.raises(RequestError, match="not the first stage") as err:
        check_stages(STAGES[1], STAGES, None, stored)
    assert err.value.field == "job.model"
    with pytest.raises(RequestError, match="not uploaded") as err:
        check_stages(STAGES[0], STAGES, None, stored)
    assert err.value.field == "job.stages.2"
    with pytest.raises(RequestError, match="cannot be pinned") as err:
        check_stages(STAGES[0], STAGES[:2], "n1", stored)
    assert err.value.field == "node"


def test_the_job_table_keeps_the_stage_count_and_adds_the_column_to_an_old_table(
    tmp_path: Path,
) -> None:
    import sqlite3

    path = tmp_path / "jobs.sqlite"
    old = sqlite3.connect(path)  # a table as written before pipelines existed
    old.execute("CREATE TABLE jobs (job_id TEXT PRIMARY KEY, model, state, epoch, node, "
                "target, attempts, priority, deadline, value, items, submitted_at, "
                "uplinked_at, accepted_at, started_at, finished_at, host_wall_s, "
                "modelled_latency_s, modelled_energy_j, power_mode, migrations, duplicates, "
                "reason, detail, lease_seen, submit_blob BLOB NOT NULL, result_blob BLOB)")
    old.commit()
    old.close()
    table = JobTable(path)
    x = {"X": Tensor.from_array(np.ones((2, 4), np.float32))}
    plain = JobSubmit(job_id="plain", model=STAGES[0], inputs=x)
    piped = JobSubmit(job_id="piped", model=STAGES[0], inputs=x,
                      pipeline=Pipeline(stages=STAGES, inputs_sha256=inputs_sha256(x)))
    table.insert(plain, None, 2)
    table.insert(piped, None, 2)
    assert table.record("plain").stages == 0
    assert table.record("piped").stages == 3
    assert table.submitted("piped").pipeline == piped.pipeline
    # the re-plan columns: none yet, and a record without re-plans leaves the key out (a
    # client from before re-planning forbids unknown fields)
    assert table.resume("piped") is None and table.record("piped").replans == 0
    assert "replans" not in table.record("piped").model_dump()
    assert piped.pipeline is not None
    later = piped.model_copy(update={"pipeline": piped.pipeline.model_copy(
        update={"stage": 1}), "model": STAGES[1]})
    table.update("piped", replans=1, resume_blob=dump(later))
    assert table.resume("piped") == later
    assert table.record("piped").model_dump()["replans"] == 1
    table.close()
