"""ISO 8601 text <-> mission time (POSIX seconds, UTC)."""

from __future__ import annotations

import datetime as dt

import pytest

from flightsw.exceptions import ConfigError
from flightsw.timeutil import format_iso, parse_iso, to_datetime


@pytest.mark.parametrize(
    ("text", "posix"),
    [
        ("1970-01-01T00:00:00Z", 0.0),
        ("2000-01-01T12:00:00Z", 946_728_000.0),  # J2000.0 in UTC
        ("2000-01-01T12:00:00z", 946_728_000.0),
        ("2000-01-01T12:00:00+00:00", 946_728_000.0),
        ("2000-01-01T14:00:00+02:00", 946_728_000.0),
        ("2000-01-01T07:00:00-05:00", 946_728_000.0),
        ("2000-01-01T12:00:00", 946_728_000.0),  # naive: UTC
        ("  2000-01-01T12:00:00Z\n", 946_728_000.0),
        ("2000-01-01 12:00:00.250Z", 946_728_000.25),
        ("2026-03-20", 1_773_964_800.0),
    ],
)
def test_parse_iso(text: str, posix: float) -> None:
    assert parse_iso(text) == posix


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01T00:00:00Z", "2026-03-20T25:00Z"])
def test_parse_iso_errors_name_the_field(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^time: .* is not an ISO 8601 timestamp"):
        parse_iso(text)
    with pytest.raises(ConfigError, match=r"^epoch: "):
        parse_iso(text, field="epoch")


def test_to_datetime_is_aware_utc() -> None:
    d = to_datetime(946_728_000.5)
    assert d.tzinfo is not None and d.utcoffset() == dt.timedelta(0)
    assert (d.year, d.month, d.day, d.hour, d.minute, d.second, d.microsecond) == (
        2000, 1, 1, 12, 0, 0, 500_000,
    )


def test_format_iso() -> None:
    assert format_iso(0.0) == "1970-01-01T00:00:00Z"
    assert format_iso(946_728_000.25) == "2000-01-01T12:00:00Z"
    assert format_iso(946_728_000.25, timespec="milliseconds") == "2000-01-01T12:00:00.250Z"


@pytest.mark.parametrize("t", [0.0, 1_773_964_800.0, 1_773_964_800.125, 4_102_444_799.5])
def test_round_trip(t: float) -> None:
    assert parse_iso(format_iso(t, timespec="microseconds")) == t
    assert parse_iso(format_iso(t)) == float(int(t))
