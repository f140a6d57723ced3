"""Job intake: raw payload to a validated job with its decoded inputs."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pytest

from flightsw.exceptions import JobRejected, ProtocolError
from flightsw.node.jobs import peek_job_id, read_job
from flightsw.protocol import JobSubmit, Tensor, decode, dump, encode

MODEL = hashlib.sha256(b"m").hexdigest()
LIMIT = 1 << 20


def _payload(job_id: str = "j1", epoch: int = 0, **arrays: np.ndarray[Any, Any]) -> bytes:
    inputs = {k: Tensor.from_array(v) for k, v in arrays.items()}
    return dump(JobSubmit(job_id=job_id, epoch=epoch, model=MODEL, inputs=inputs))


def test_read_job_counts_items_along_the_first_axis() -> None:
    img = np.arange(4 * 3 * 2, dtype=np.float32).reshape(4, 3, 2)
    intake = read_job(_payload(image=img, ids=np.arange(4, dtype=np.int64)), LIMIT)
    assert intake.items == 4 and intake.job.job_id == "j1"
    assert np.array_equal(intake.arrays["image"], img)
    assert intake.arrays["ids"].tolist() == [0, 1, 2, 3]


def test_scalar_inputs_do_not_set_the_batch() -> None:
    intake = read_job(_payload(x=np.ones((3, 2), np.float32), scale=np.array(0.5)), LIMIT)
    assert intake.items == 3 and intake.arrays["scale"].shape == ()
    assert read_job(_payload(scale=np.array(2.0)), LIMIT).items == 1


def test_batch_sizes_must_agree() -> None:
    with pytest.raises(
        JobRejected, match=r"^inputs: batch sizes differ: input 'a' has 2 items, input 'b' has 5"
    ) as err:
        read_job(_payload(a=np.zeros((2, 3)), b=np.zeros((5, 3))), LIMIT)
    assert (err.value.code, err.value.field) == ("invalid_job", "inputs")


def test_empty_batch_is_rejected() -> None:
    with pytest.raises(JobRejected, match=r"^inputs: input 'a' has a batch of zero items"):
        read_job(_payload(a=np.zeros((0, 3), np.float32)), LIMIT)


def test_schema_and_tensor_errors_name_the_field() -> None:
    raw = decode(_payload(image=np.zeros((2, 2), np.float32)))
    raw["priority"] = 42
    with pytest.raises(ProtocolError, match=r"^priority: "):
        read_job(encode(raw), LIMIT)
    raw = decode(_payload(image=np.zeros((2, 2), np.float32)))
    raw["inputs"]["image"]["shape"] = [2, 3]
    with pytest.raises(ProtocolError, match=r"^inputs\.image\.data: 16 bytes.*need 24"):
        read_job(encode(raw), LIMIT)


def test_oversize_and_undecodable() -> None:
    payload = _payload(image=np.zeros((64, 64), np.float32))
    with pytest.raises(ProtocolError, match=f"payload of {len(payload)} bytes exceeds"):
        read_job(payload, 1000)
    with pytest.raises(ProtocolError, match="undecodable"):
        read_job(b"\xc1\xc1", LIMIT)


@pytest.mark.parametrize(
    ("payload", "want"),
    [
        (encode({"job_id": "abc", "epoch": 3, "model": "nope"}), ("abc", 3)),
        (encode({"job_id": "abc"}), ("abc", 0)),
        (encode({"job_id": "abc", "epoch": "3"}), ("abc", 0)),
        (encode({"job_id": "", "epoch": 2}), (None, 2)),
        (encode({"job_id": 5}), (None, 0)),
        (encode([1, 2]), (None, 0)),
        (b"\xc1", (None, 0)),
    ],
)
def test_peek_job_id(payload: bytes, want: tuple[str | None, int]) -> None:
    assert peek_job_id(payload) == want
