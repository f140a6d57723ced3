"""Signed telecommands from the console, and the acknowledgements that answer them.

Each node has its own HMAC key (``flightsw node`` reads ``ODC_COMMAND_KEY``); the console
finds it with a :class:`KeyRing`: a JSON file ``{"node": "key", ...}`` and/or a pattern
such as ``{node}-cmd-dev`` (the keys ``docker/gen_compose.py --passwords dev`` gives).
The counter must rise from one command to the next on a node; it is the mission time in
milliseconds (or one more than the last sent, if higher), so it also rises across console
restarts.
"""

from __future__ import annotations

import json
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any

from flightsw.bus import Bus
from flightsw.clock import Clock
from flightsw.exceptions import ProtocolError
from flightsw.protocol import Ack, Command, dump, parse, topics
from flightsw.protocol.auth import sign_command
from groundstation.console.exceptions import ConsoleError, NotFound

__all__ = ["COMMANDS", "CommandDesk", "KeyRing"]

# the operator's names for the node's telecommands, and the args each takes
COMMANDS: dict[str, tuple[str, ...]] = {
    "pause": (),
    "resume": (),
    "set_power_mode": ("mode",),
    "enter_safe": (),
    "leave_safe": (),
    "cancel_job": ("job_id",),
    "ping": (),
}
_KEEP = 512  # commands remembered with their acks


class KeyRing:
    """The telecommand key of each node."""

    def __init__(self, keys: dict[str, str] | None = None, pattern: str | None = None) -> None:
        self._keys = dict(keys or {})
        self._pattern = pattern

    @classmethod
    def from_file(cls, path: Path | None, pattern: str | None) -> KeyRing:
        keys: dict[str, str] = {}
        if path is not None:
            try:
                raw = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise ConsoleError(f"command keys {path}: {exc}") from exc
            if not isinstance(raw, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
            ):
                raise ConsoleError(f"command keys {path}: expected {{\"node\": \"key\"}}")
            keys = raw
        if pattern is not None and "{node}" not in pattern:
            raise ConsoleError(f"command key pattern {pattern!r}: must contain {{node}}")
        return cls(keys, pattern)

    def key(self, node: str) -> str | None:
        if node in self._keys:
            return self._keys[node]
        return None if self._pattern is None else self._pattern.replace("{node}", node)

    @property
    def empty(self) -> bool:
        return not self._keys and self._pattern is None


class CommandDesk:
    """Builds, signs and publishes commands; matches acks to them."""

    def __init__(self, bus: Bus, clock: Clock, keys: KeyRing) -> None:
        self.bus = bus
        self.clock = clock
        self.keys = keys
        self._counter = -1
        self.sent: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._acks: list[dict[str, Any]] = []

    def build(self, node: str, name: str, args: dict[str, Any], operator: str) -> Command:
        topics.validate_node_id(node)
        if name not in COMMANDS:
            raise ConsoleError(f"command {name!r}: not one of {', '.join(COMMANDS)}")
        missing = [a for a in COMMANDS[name] if a not in args]
        if missing:
            raise ConsoleError(f"command {name}: needs {', '.join(missing)}")
        self._counter = max(self._counter + 1, int(self.clock.now() * 1000))
        try:
            cmd = parse(Command, {
                "cmd_id": f"console-{operator}-{uuid.uuid4().hex[:12]}",
                "name": name,
                "args": {a: args[a] for a in COMMANDS[name]},
                "counter": self._counter,
                "t": self.clock.now(),
            })
        except ProtocolError as exc:
            raise ConsoleError(f"command {name}: {exc}") from exc
        key = self.keys.key(node)
        return cmd if key is None else sign_command(cmd, key)

    async def send(
        self, node: str, name: str, args: dict[str, Any], operator: str
    ) -> dict[str, Any]:
        cmd = self.build(node, name, args, operator)
        await self.bus.publish(topics.command(node), dump(cmd), qos=1)
        rec = {
            "cmd_id": cmd.cmd_id,
            "node": node,
            "name": name,
            "args": cmd.args,
            "signed": cmd.hmac is not None,
            "operator": operator,
            "sent_at": cmd.t,
            "ack": None,
        }
        self.sent[cmd.cmd_id] = rec
        while len(self.sent) > _KEEP:
            self.sent.popitem(last=False)
        return rec

    def on_ack(self, ack: Ack) -> dict[str, Any] | None:
        """The command record this ack answers, updated (``None`` if not ours)."""
        rec = self.sent.get(ack.cmd_id)
        if rec is None:
            return None
        rec["ack"] = {"ok": ack.ok, "reason": ack.reason, "t": ack.t, "data": ack.data}
        self._acks.append(rec)
        return rec

    def get(self, cmd_id: str) -> dict[str, Any]:
        rec = self.sent.get(cmd_id)
        if rec is None:
            raise NotFound(f"command {cmd_id!r}: not sent by this console")
        return rec

    def take_acks(self) -> list[dict[str, Any]]:
        out, self._acks = self._acks, []
        return out

    @staticmethod
    def parse_ack(payload: bytes | dict[str, Any]) -> Ack:
        return parse(Ack, payload)
