"""Every error the ground segment raises on purpose derives from :class:`GroundError`.

The telemetry archive is shared with the simulator and lives in :mod:`flightsw.archive`;
its errors are :class:`flightsw.exceptions.ArchiveError` (a ``FlightSwError``), which the
ground translates where it calls the archive (replay and export raise ``ReplayError``).
"""

from __future__ import annotations

__all__ = [
    "GroundError",
    "JobFailed",
    "JobNotFound",
    "ReplayError",
    "RequestError",
]


class GroundError(Exception):
    """Base class of all ground-segment errors."""


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


class RequestError(GroundError):
    """A client's request was refused; ``field`` names the offending field."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
