"""Every error the ground segment raises on purpose derives from :class:`GroundError`."""

from __future__ import annotations

__all__ = [
    "ArchiveCorruption",
    "ArchiveError",
    "GroundError",
    "JobFailed",
    "JobNotFound",
    "ReplayError",
]


class GroundError(Exception):
    """Base class of all ground-segment errors."""


class ArchiveError(GroundError):
    """The telemetry archive could not be opened, written or read."""


class ArchiveCorruption(ArchiveError):
    """A segment holds a record whose framing or CRC is wrong (reported, never hidden)."""


class JobNotFound(GroundError):
    """No job with that id is known to the ground station."""


class JobFailed(GroundError):
    """A job ended in the failed state; ``reason`` says why."""

    def __init__(self, job_id: str, reason: str) -> None:
        super().__init__(f"job {job_id} failed: {reason}")
        self.job_id = job_id
        self.reason = reason


class ReplayError(GroundError):
    """Replay or export was asked for something impossible (bad range, format, ...)."""
