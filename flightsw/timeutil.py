"""Conversions between mission time (POSIX seconds, UTC) and ISO 8601 text."""

from __future__ import annotations

import datetime as dt

from flightsw.exceptions import ConfigError

__all__ = ["format_iso", "parse_iso", "to_datetime"]


def parse_iso(text: str, *, field: str = "time") -> float:
    """Parse an ISO 8601 timestamp to POSIX seconds; naive times are taken as UTC."""
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError as exc:
        raise ConfigError(f"{field}: {text!r} is not an ISO 8601 timestamp") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


def to_datetime(t: float) -> dt.datetime:
    """POSIX seconds to an aware UTC datetime."""
    return dt.datetime.fromtimestamp(t, tz=dt.UTC)


def format_iso(t: float, *, timespec: str = "seconds") -> str:
    """POSIX seconds to ISO 8601 UTC with a trailing ``Z``."""
    return to_datetime(t).isoformat(timespec=timespec).replace("+00:00", "Z")
