"""Turning a raw job message into a queued job, with every refusal named."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy.typing as npt

from flightsw.exceptions import ProtocolError
from flightsw.node.pipeline import check_plan
from flightsw.protocol import JobSubmit, decode, parse
from flightsw.protocol.batch import batch_items

__all__ = ["Intake", "peek_job_id", "read_job"]


@dataclass(frozen=True, slots=True)
class Intake:
    job: JobSubmit
    arrays: dict[str, npt.NDArray[Any]]
    items: int


_JOB_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


def peek_job_id(payload: bytes) -> tuple[str | None, int]:
    """Best-effort job id and epoch of a payload that failed validation."""
    try:
        obj = decode(payload)
    except ProtocolError:
        return None, 0
    if isinstance(obj, dict):
        jid = obj.get("job_id")
        ep = obj.get("epoch", 0)
        # only an id a result may carry (the JobId pattern) is worth answering under
        ok_id = isinstance(jid, str) and _JOB_ID.fullmatch(jid) is not None
        ok_ep = isinstance(ep, int) and not isinstance(ep, bool) and 0 <= ep < 2**63
        return (jid if ok_id else None, ep if ok_ep else 0)
    return None, 0


def read_job(payload: bytes, max_bytes: int) -> Intake:
    """Decode and validate a job; :class:`ProtocolError` / :class:`JobRejected` carry the
    error's ``code`` and ``field``."""
    job = parse(JobSubmit, payload, max_bytes=max_bytes)
    check_plan(job)
    arrays = job.arrays()
    return Intake(job=job, arrays=arrays, items=batch_items(arrays))
