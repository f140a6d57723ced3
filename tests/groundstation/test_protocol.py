"""Messages between ground clients and the ground station service."""

from __future__ import annotations

import numpy as np
import pytest

from flightsw.bus.base import check_topic, check_topic_filter, topic_matches
from flightsw.exceptions import ProtocolError
from flightsw.protocol import Tensor, dump, encode, parse
from groundstation.protocol import (
    JOB_STATES,
    REQUEST_TOPIC,
    TERMINAL,
    JobRecord,
    Reply,
    Request,
    job_topic,
    reply_topic,
)


def test_topics() -> None:
    assert REQUEST_TOPIC == "odc/ground/req"
    assert reply_topic("cli-1") == "odc/ground/rep/cli-1"
    assert job_topic("job-9") == "odc/ground/job/job-9"
    for topic in (REQUEST_TOPIC, reply_topic("c"), job_topic("j")):
        check_topic(topic)
    check_topic_filter(job_topic("+"))
    assert topic_matches(job_topic("+"), job_topic("job-9"))


def test_states() -> None:
    assert sorted(TERMINAL) == ["done", "failed"]
    assert all(state in JOB_STATES for state in TERMINAL)
    assert JOB_STATES[0] == "queued"


@pytest.mark.parametrize(
    "message",
    [
        Request(req_id="r1", client="cli-1", op="submit", args={"job": {"job_id": "x"}}),
        Request(req_id="r2", client="cli-1", op="jobs"),
        Reply(req_id="r1", ok=True, data={"job_id": "x", "counts": {"done": 3}}),
        Reply(req_id="r2", ok=False, error="job_id: no job 'x'"),
        JobRecord(job_id="x", model="a" * 64, state="done", epoch=2, node="sat-1",
                  items=4, finished_at=1.5, power_mode="7W",
                  outputs={"y": Tensor.from_array(np.arange(3, dtype=np.int8))}),
        JobRecord(job_id="y", model="b" * 64, state="queued"),
    ],
    ids=lambda m: type(m).__name__,
)
def test_round_trip(message: Request | Reply | JobRecord) -> None:
    assert parse(type(message), dump(message)) == message


@pytest.mark.parametrize(
    ("raw", "pattern"),
    [
        ({"req_id": "r", "client": "c", "op": "delete"}, r"^op: Input should be "),
        ({"req_id": "r", "client": "bad/client", "op": "jobs"}, r"^client: String should match"),
        ({"req_id": "", "client": "c", "op": "jobs"}, r"^req_id: "),
        ({"client": "c", "op": "jobs"}, r"^req_id: Field required"),
        ({"req_id": "r", "client": "c", "op": "jobs", "args": []}, r"^args: "),
        ({"req_id": "r", "client": "c", "op": "jobs", "kind": "ground_reply"}, r"^kind: "),
    ],
)
def test_request_errors_name_the_field(raw: dict[str, object], pattern: str) -> None:
    with pytest.raises(ProtocolError, match=pattern):
        parse(Request, encode(raw))


def test_job_record_output_errors_name_the_path() -> None:
    raw = {"job_id": "x", "model": "m", "state": "done",
           "outputs": {"y": {"dtype": "int8", "shape": [-1], "data": b""}}}
    with pytest.raises(ProtocolError, match=r"^outputs\.y\.shape\.0: "):
        parse(JobRecord, encode(raw))
