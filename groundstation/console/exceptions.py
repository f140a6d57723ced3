"""Errors of the operations console (one module per package)."""

from __future__ import annotations

from groundstation.exceptions import GroundError

__all__ = ["ConsoleError", "Forbidden", "NotFound"]


class ConsoleError(GroundError):
    """A request the console cannot serve; the text says why (HTTP 400)."""


class NotFound(ConsoleError):
    """No such node, job, alarm or command (HTTP 404)."""


class Forbidden(ConsoleError):
    """The request needs a logged-in operator (HTTP 403)."""
