"""The operations console: a live web page, an HTTP API, alarms and Prometheus metrics.

``groundstation serve --http 127.0.0.1:8080`` runs it beside the ground station service;
``flightsw demo`` starts it too. See ``docs/console.md``.
"""

from groundstation.console.auth import OperatorAuth
from groundstation.console.commands import KeyRing
from groundstation.console.service import ConsoleService

__all__ = ["ConsoleService", "KeyRing", "OperatorAuth"]
