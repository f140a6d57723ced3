"""Errors of the economics package: every one names the study file and the field."""

from __future__ import annotations

from flightsw.exceptions import ConfigError

__all__ = ["StudyError"]


class StudyError(ConfigError):
    """A study file is missing or invalid; the message names the file and the field."""
