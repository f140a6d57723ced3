"""Telecommands: verify (HMAC and monotonic counter), let the core execute, acknowledge.

What a command does is the core's decision (:meth:`~flightsw.node.core.NodeCore.command`);
this module parses, authenticates and answers.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from flightsw.bus import Message
from flightsw.exceptions import ProtocolError
from flightsw.protocol import Ack, Command, dump, parse, topics
from flightsw.protocol.auth import CommandVerifier

if TYPE_CHECKING:
    from flightsw.node.service import Node

__all__ = ["CommandDesk"]

log = logging.getLogger("flightsw.node")

_MAX_COMMAND_BYTES = 64 * 1024


class CommandDesk:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.verifier = CommandVerifier(node.config.command_key)

    async def on_message(self, msg: Message) -> None:
        node = self.node
        try:
            cmd = parse(Command, msg.payload, max_bytes=_MAX_COMMAND_BYTES)
        except ProtocolError as exc:
            await node.error("invalid_command", str(exc), topic=msg.topic)
            return
        problem = self.verifier.check(cmd)
        if problem is not None:
            log.warning("node %s: rejected telecommand %s: %s", node.id, cmd.cmd_id, problem)
            await self._ack(cmd, False, problem)
            return
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
        await node.bus.publish(topics.ack(node.id), dump(ack), qos=1)
