"""Telecommand authentication: HMAC-SHA256 with a per-node key and a monotonic counter.

The MAC covers the msgpack encoding of the command with ``hmac`` set to ``None``, so any
field changed in transit (name, args, counter, cmd_id) invalidates it. A node accepts a
command only if the MAC verifies and ``counter`` is greater than the last accepted one, so
a replayed or forged command is rejected (and logged by the node).
"""

from __future__ import annotations

import hashlib
import hmac as _hmac

from flightsw.protocol.codec import encode
from flightsw.protocol.messages import Command

__all__ = ["CommandVerifier", "sign_command"]


def _mac(key: bytes, command: Command) -> str:
    body = command.model_dump(mode="python")
    body["hmac"] = None
    return _hmac.new(key, encode(body), hashlib.sha256).hexdigest()


def sign_command(command: Command, key: str | bytes) -> Command:
    """A copy of ``command`` carrying its MAC."""
    k = key.encode() if isinstance(key, str) else key
    return command.model_copy(update={"hmac": _mac(k, command)})


class CommandVerifier:
    """Checks MAC and counter; remembers the last accepted counter."""

    def __init__(self, key: str | bytes | None, last_counter: int = -1) -> None:
        self._key = key.encode() if isinstance(key, str) else key
        self.last_counter = last_counter

    @property
    def enabled(self) -> bool:
        return self._key is not None

    def check(self, command: Command) -> str | None:
        """``None`` if acceptable (and the counter advances), else the reason to reject."""
        if self._key is None:
            return None
        if command.hmac is None:
            return "hmac: missing (this node requires authenticated telecommands)"
        if not _hmac.compare_digest(command.hmac, _mac(self._key, command)):
            return "hmac: does not verify (forged or altered command)"
        if command.counter <= self.last_counter:
            return (
                f"counter: {command.counter} is not above the last accepted "
                f"{self.last_counter} (replayed command)"
            )
        self.last_counter = command.counter
        return None
