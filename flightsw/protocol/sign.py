"""Authenticated node messages: a per-node HMAC over a canonical encoding, and a sequence
number against replay.

A node seals every message that changes what the ground believes (status, node state,
result, events, handovers, acknowledgements) with its own 32-byte key, which the ground
also holds. The seal is the message's ``auth`` field, ``{"seq": int, "mac": hex}``::

    mac = HMAC-SHA256(key, b"odc-auth-v1\\x00" + topic + b"\\x00" + seq (8 bytes, big
                      endian) + canonical(message without "auth"))

``canonical`` is msgpack with every map's keys in ascending order of their UTF-8 bytes,
integers in their shortest form, every float as a 64-bit float, text as str and bytes as
bin (docs/protocol.md, "Message authentication"). Binding the topic means a sealed message
counts only where it was published; binding ``seq`` means a copy is recognised.

The receiver keeps, per node, the highest sequence number accepted and the numbers seen
within a window below it (:class:`ReplayWindow`), so messages that overtake each other
still pass while a replayed one does not. Both ends keep their numbers across restarts: the
node reserves blocks of numbers in its data directory (:class:`SequenceFile`), the ground
stores each node's highest accepted number.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flightsw.exceptions import AuthError
from flightsw.protocol.codec import encode

__all__ = [
    "AUTH_FIELD",
    "KEY_BYTES",
    "Marks",
    "ReplayWindow",
    "Sealer",
    "SequenceFile",
    "Verifier",
    "canonical",
    "load_key",
    "load_keys",
    "mac",
    "new_key",
]

AUTH_FIELD = "auth"
KEY_BYTES = 32
_DOMAIN = b"odc-auth-v1\x00"


def _sorted(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        items = sorted(obj.items(), key=lambda kv: str(kv[0]).encode())
        return {k: _sorted(v) for k, v in items}
    if isinstance(obj, list | tuple):
        return [_sorted(v) for v in obj]
    return obj


def canonical(obj: Any) -> bytes:
    """The canonical msgpack bytes of a plain structure (keys sorted at every level)."""
    return encode(_sorted(obj))


def mac(key: bytes, topic: str, seq: int, body: Mapping[str, Any]) -> str:
    """The hex MAC of ``body`` (without ``auth``) published on ``topic`` as number ``seq``."""
    head = _DOMAIN + topic.encode() + b"\x00" + seq.to_bytes(8, "big")
    return hmac.new(key, head + canonical(body), hashlib.sha256).hexdigest()


# -- keys ---------------------------------------------------------------------------------
def new_key() -> str:
    """A fresh key as it is stored: 64 hex characters."""
    return secrets.token_hex(KEY_BYTES)


def load_key(path: Path) -> bytes:
    """A key file's 32 bytes (one line of 64 hex characters); :class:`AuthError` naming
    the file otherwise."""
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise AuthError(f"key file {path}: {exc.strerror or exc}") from exc
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise AuthError(f"key file {path}: expected {2 * KEY_BYTES} hex characters")
    return key


def load_keys(directory: Path) -> dict[str, bytes]:
    """Every node's key in ``directory`` (``<node>.key``), by node id."""
    if not directory.is_dir():
        raise AuthError(f"node keys: {directory} is not a directory")
    return {p.stem: load_key(p) for p in sorted(directory.glob("*.key"))}


# -- sending ------------------------------------------------------------------------------
class SequenceFile:
    """Sequence numbers that only grow, across restarts: the file holds the end of the
    block in use; a new block is written (and synced) before its first number is used."""

    def __init__(self, path: Path, block: int = 4096) -> None:
        self.path = path
        self.block = block
        try:
            start = int(path.read_text().strip() or 0)
        except FileNotFoundError:
            start = 0
        except (OSError, ValueError) as exc:
            raise AuthError(f"sequence file {path}: unreadable ({exc})") from exc
        self._next = start
        self._end = start
        self._reserve()

    def _reserve(self) -> None:
        self._end = self._next + self.block
        tmp = self.path.with_suffix(".tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w") as f:
            f.write(f"{self._end}\n")
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.path)

    def take(self) -> int:
        if self._next >= self._end:
            self._reserve()
        n = self._next
        self._next += 1
        return n


class Sealer:
    """Seals a node's messages with its key (``None``: messages go out unsealed)."""

    def __init__(self, key: bytes | None, sequence: SequenceFile | None) -> None:
        if key is not None and sequence is None:
            raise AuthError("a sealing key needs a sequence file")
        self.key = key
        self.sequence = sequence

    def seal(self, topic: str, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` (a message as a plain map) with its ``auth`` field set."""
        body.pop(AUTH_FIELD, None)
        if self.key is None or self.sequence is None:
            return body
        seq = self.sequence.take()
        body[AUTH_FIELD] = {"seq": seq, "mac": mac(self.key, topic, seq, body)}
        return body


# -- receiving ----------------------------------------------------------------------------
class ReplayWindow:
    """Sequence numbers accepted from one sender: the highest, and those within ``size``
    below it. A number is fresh iff above ``floor`` (the highest accepted before a
    restart, whose window is lost), within the window, and not seen."""

    def __init__(self, floor: int = -1, size: int = 1024) -> None:
        self.floor = floor
        self.high = floor
        self.size = size
        self._seen: set[int] = set()

    def fresh(self, seq: int) -> bool:
        if seq <= self.floor:
            return False
        return seq > self.high or (seq > self.high - self.size and seq not in self._seen)

    def accept(self, seq: int) -> bool:
        """Record ``seq``; False (and nothing recorded) if it is not fresh."""
        if not self.fresh(seq):
            return False
        self._seen.add(seq)
        if seq > self.high:
            self.high = seq
            low = seq - self.size
            if len(self._seen) > 2 * self.size:
                self._seen = {s for s in self._seen if s > low}
        return True


@dataclass(slots=True)
class Marks:
    """What the ground keeps per node across its restarts: the highest sequence number
    accepted, the number of the status in force (the broker retains it, and hands that
    same copy to a restarted ground) and of the node's last will (not yet published)."""

    high: int = -1
    status: int | None = None
    will: int | None = None


class Verifier:
    """Checks sealed messages of many nodes against their keys and replay windows.

    ``marks`` are what was accepted before a restart (:class:`Marks`); :attr:`changed`
    names the nodes whose marks moved since it was last cleared. Two old numbers pass on
    the status topic: the status in force (the broker's retained copy, delivered again to a
    restarted ground, taken again) and the node's last will (sealed when the node
    connected, named by its status through :meth:`expect_will`, taken once).
    """

    def __init__(self, keys: Mapping[str, bytes], marks: Mapping[str, Marks] | None = None,
                 window: int = 1024) -> None:
        self.keys = dict(keys)
        self.marks = {n: Marks(m.high, m.status, m.will) for n, m in (marks or {}).items()}
        self._windows = {n: ReplayWindow(m.high, window) for n, m in self.marks.items()}
        self._size = window
        self.changed: set[str] = set()

    def knows(self, node: str) -> bool:
        return node in self.keys

    def high(self, node: str) -> int:
        w = self._windows.get(node)
        return -1 if w is None else w.high

    def marks_of(self, nodes: set[str]) -> dict[str, Marks]:
        out = {}
        for n in nodes:
            m = self.marks.setdefault(n, Marks())
            m.high = self.high(n)
            out[n] = m
        return out

    def expect_will(self, node: str, seq: int | None) -> None:
        self.marks.setdefault(node, Marks()).will = seq
        self.changed.add(node)

    def check(self, node: str, topic: str, obj: Mapping[str, Any]) -> None:
        """Accept ``obj`` (a decoded message map) from ``node`` on ``topic``, or raise
        :class:`AuthError` saying why not (no key, no seal, bad MAC, replayed)."""
        key = self.keys.get(node)
        if key is None:
            raise AuthError(f"auth: no key for node {node!r}")
        seal = obj.get(AUTH_FIELD)
        if not isinstance(seal, Mapping):
            raise AuthError("auth: missing (messages of this node must be sealed)")
        seq, tag = seal.get("seq"), seal.get("mac")
        if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 2**63:
            raise AuthError("auth.seq: expected an integer in [0, 2^63)")
        if not isinstance(tag, str):
            raise AuthError("auth.mac: expected 64 hex characters")
        body = {k: v for k, v in obj.items() if k != AUTH_FIELD}
        if not hmac.compare_digest(tag, mac(key, topic, seq, body)):
            raise AuthError("auth.mac: does not verify (forged, altered or wrong topic)")
        window = self._windows.get(node)
        if window is None:
            window = self._windows[node] = ReplayWindow(-1, self._size)
        status = topic.endswith("/status")
        marks = self.marks.setdefault(node, Marks())
        if window.accept(seq):
            if status:
                marks.status = seq
            self.changed.add(node)
            return
        if status and seq == marks.will:
            marks.will = None  # the node's last will: taken once
            marks.status = seq
            self.changed.add(node)
            return
        if status and seq == marks.status:
            return  # the retained status in force, delivered again
        raise AuthError(f"auth.seq: {seq} was seen before or is too old (replayed)")
