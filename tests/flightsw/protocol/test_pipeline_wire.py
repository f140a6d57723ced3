"""The new fields stay off the wire when unused, so older peers (which forbid unknown
fields) still take plain jobs and read plain job records."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ConfigDict

from flightsw.exceptions import ProtocolError
from flightsw.protocol import JobSubmit, Tensor, decode, dump, parse
from flightsw.protocol.messages import Pipeline, Progress
from flightsw.protocol.warrant import inputs_sha256
from groundstation.protocol import JobRecord

STAGES = ["a1" * 32, "b2" * 32]


def job(pipeline: bool) -> JobSubmit:
    x = {"X": Tensor.from_array(np.ones((2, 3), np.float32))}
    p = Pipeline(stages=STAGES, inputs_sha256=inputs_sha256(x)) if pipeline else None
    return JobSubmit(job_id="j", model=STAGES[0], inputs=x, pipeline=p)


class OldJobSubmit(JobSubmit):
    """A node's schema from before pipeline jobs: the field is unknown and refused."""

    model_config = ConfigDict(extra="forbid")


OldJobSubmit.model_fields.pop("pipeline")
OldJobSubmit.model_rebuild(force=True)


def test_a_plain_job_travels_without_the_pipeline_key() -> None:
    plain = decode(dump(job(False)))
    assert isinstance(plain, dict) and "pipeline" not in plain
    assert parse(JobSubmit, plain) == job(False)
    parse(OldJobSubmit, plain)  # an older node takes it
    piped = decode(dump(job(True)))
    assert isinstance(piped, dict) and piped["pipeline"]["stages"] == STAGES
    assert parse(JobSubmit, piped) == job(True)
    with pytest.raises(ProtocolError, match="pipeline"):  # what the key would do to it
        parse(OldJobSubmit, piped)


def test_a_plain_job_record_travels_without_stages() -> None:
    plain = JobRecord(job_id="j", model="m", state="done").model_dump(mode="python")
    assert "stages" not in plain
    assert JobRecord.model_validate(plain).stages == 0
    piped = JobRecord(job_id="j", model="m", state="done", stages=3).model_dump(mode="python")
    assert piped["stages"] == 3


def test_a_job_without_progress_travels_without_the_key() -> None:
    plain = decode(dump(job(False)))
    assert isinstance(plain, dict) and "progress" not in plain
    moved = job(False).model_copy(update={"progress": Progress(
        done=1, outputs={"Y": Tensor.from_array(np.zeros((1, 2), np.float32))})})
    got = decode(dump(moved))
    assert isinstance(got, dict) and got["progress"]["done"] == 1
    assert parse(JobSubmit, got) == moved
