"""Operator login: one shared token, checked in constant time.

Reading the console needs no login; changing anything (telecommands, alarm
acknowledgements, job submission) needs the operator token, sent as
``Authorization: Bearer TOKEN``. A console started without one makes a random token and
logs the login link (``http://host:port/#token=...``), as Jupyter does.
"""

from __future__ import annotations

import hmac
import secrets

from groundstation.console.exceptions import Forbidden

__all__ = ["OperatorAuth"]


class OperatorAuth:
    def __init__(self, token: str | None = None, operator: str = "operator") -> None:
        self.generated = token is None
        self.token = token or secrets.token_urlsafe(18)
        self.operator = operator

    def check(self, authorization: str | None) -> bool:
        if not authorization or not authorization.startswith("Bearer "):
            return False
        return hmac.compare_digest(authorization[7:].encode(), self.token.encode())

    def require(self, authorization: str | None) -> str:
        """The operator's name, or :class:`Forbidden`."""
        if not self.check(authorization):
            raise Forbidden("log in as an operator (Authorization: Bearer TOKEN) to do this")
        return self.operator
