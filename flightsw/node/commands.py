"""Telecommands: verify (HMAC and monotonic counter), let the core execute, acknowledge.

What a command does is the core's decision (:meth:`~flightsw.node.core.NodeCore.command`);
this module parses, authenticates and answers.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flightsw.bus import Message
from flightsw.exceptions import ProtocolError
from flightsw.protocol import Ack, Command, parse, topics
from flightsw.protocol.auth import CommandVerifier
from flightsw.protocol.codec import decode

if TYPE_CHECKING:
    from flightsw.node.service import Node

__all__ = ["COUNTER_FILE", "CommandDesk"]

log = logging.getLogger("flightsw.node")

_MAX_COMMAND_BYTES = 64 * 1024
COUNTER_FILE = "command.counter"  # the last accepted counter, kept across restarts


def _read_counter(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except FileNotFoundError:
        return -1
    except (OSError, ValueError):
        log.error("unreadable %s: refusing every counter until one above 2^62", path)
        return 2**62


def _write_counter(path: Path, counter: int) -> None:
    tmp = path.with_suffix(".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "w") as f:
        f.write(f"{counter}\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


class CommandDesk:
    def __init__(self, node: Node) -> None:
        self.node = node
        self._counter_path = node.config.data_dir / COUNTER_FILE
        self.verifier = CommandVerifier(node.config.command_key,
                                        last_counter=_read_counter(self._counter_path))

    async def on_message(self, msg: Message) -> None:
        node = self.node
        try:
            raw = decode(msg.payload, max_bytes=_MAX_COMMAND_BYTES)
            cmd = parse(Command, raw)
        except ProtocolError as exc:
            await node.error("invalid_command", str(exc), field=exc.field, topic=msg.topic)
            return
        problem = self.verifier.check(cmd, raw)
        if problem is not None:
            log.warning("node %s: rejected telecommand %s: %s", node.id, cmd.cmd_id, problem)
            await self._ack(cmd, False, problem)
            return
        if self.verifier.enabled:  # durable before it acts: a replay after a restart fails
            _write_counter(self._counter_path, self.verifier.last_counter)
        ok, reason, data, effects = node.core.command(cmd.name, cmd.args, node.clock.now())
        await node.carry(effects)
        node.wake()
        await self._ack(cmd, ok, reason, data)

    async def _ack(
        self, cmd: Command, ok: bool, reason: str | None, data: dict[str, Any] | None = None
    ) -> None:
        node = self.node
        ack = Ack(
            cmd_id=cmd.cmd_id,
            node=node.id,
            name=cmd.name,
            ok=ok,
            t=node.clock.now(),
            reason=reason,
            data=data or {},
        )
        await node.send(topics.ack(node.id), ack)
