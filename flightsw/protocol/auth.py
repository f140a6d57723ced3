"""Telecommand authentication: HMAC-SHA256 with a per-node key and a monotonic counter.

The MAC covers the canonical msgpack encoding (:func:`flightsw.protocol.sign.canonical`:
keys sorted at every level, floats as float64) of the command map as sent, with ``hmac``
set to nil, so any field changed in transit (name, args, counter, cmd_id, t) invalidates
it and a client in any language can compute it. A node accepts a command only if the MAC
verifies and ``counter`` is greater than the last accepted one (kept across restarts by
the node), so a replayed or forged command is rejected (and acknowledged with the reason).
"""

from __future__ import annotations

import hashlib
import hmac as _hmac
from collections.abc import Mapping
from typing import Any

from flightsw.protocol.messages import Command
from flightsw.protocol.sign import canonical

__all__ = ["CommandVerifier", "sign_command"]


def _mac(key: bytes, body: Mapping[str, Any]) -> str:
    return _hmac.new(key, canonical({**body, "hmac": None}), hashlib.sha256).hexdigest()


def sign_command(command: Command, key: str | bytes) -> Command:
    """A copy of ``command`` carrying its MAC."""
    k = key.encode() if isinstance(key, str) else key
    return command.model_copy(update={"hmac": _mac(k, command.model_dump(mode="python"))})


class CommandVerifier:
    """Checks MAC and counter; remembers the last accepted counter."""

    def __init__(self, key: str | bytes | None, last_counter: int = -1) -> None:
        self._key = key.encode() if isinstance(key, str) else key
        self.last_counter = last_counter

    @property
    def enabled(self) -> bool:
        return self._key is not None

    def check(self, command: Command, raw: Mapping[str, Any] | None = None) -> str | None:
        """``None`` if acceptable (and the counter advances), else the reason to reject.
        ``raw`` is the command map as received (the MAC covers what was sent, before any
        defaults or type coercion); without it, the parsed command's fields."""
        if self._key is None:
            return None
        if command.hmac is None:
            return "hmac: missing (this node requires authenticated telecommands)"
        body = raw if raw is not None else command.model_dump(mode="python")
        if not _hmac.compare_digest(command.hmac, _mac(self._key, body)):
            return "hmac: does not verify (forged or altered command)"
        if command.counter <= self.last_counter:
            return (
                f"counter: {command.counter} is not above the last accepted "
                f"{self.last_counter} (replayed command)"
            )
        self.last_counter = command.counter
        return None
