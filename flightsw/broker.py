"""A local MQTT broker for the demo: :class:`EmbeddedBroker`, amqtt inside this process.

Zero setup; slower than mosquitto and without persistence across restarts. (The tests and
benchmarks run a real mosquitto child process: ``tests/helpers/mosquitto.py``.)
"""

from __future__ import annotations

import socket
from types import TracebackType
from typing import Any, Self

from flightsw.exceptions import BrokerError, ConfigError

__all__ = ["EmbeddedBroker", "check_port", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def check_port(port: int) -> int:
    """``port`` if it is an integer in 1..65535, else :class:`ConfigError` naming it."""
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfigError(f"port must be an integer in 1..65535, got {port!r}")
    return port


class EmbeddedBroker:
    """amqtt's pure-Python broker in this process, on ``host:port`` (``port=None``: any).

    The zero-setup default for the demo. Sessions and retained messages live in memory
    only. ``async with EmbeddedBroker(port=None) as broker: ... broker.url``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int | None = 1883) -> None:
        self.host = host
        self.port = check_port(port) if port is not None else free_port(host)
        self._broker: Any = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"mqtt://{host}:{self.port}"

    def _config(self) -> dict[str, Any]:
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            # anonymous access only: no $SYS publisher, no per-packet logging plugins
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin":
                        {"allow_anonymous": True}},
        }

    async def __aenter__(self) -> Self:
        try:
            from amqtt.broker import Broker  # noqa: PLC0415  (heavy import, only when used)
            from amqtt.errors import AMQTTError, PluginError  # noqa: PLC0415
            from amqtt.errors import BrokerError as AmqttBrokerError  # noqa: PLC0415
        except ImportError as exc:
            raise BrokerError(f"amqtt is not installed: {exc}") from exc
        broker = Broker(self._config())
        try:
            await broker.start()
        except (AMQTTError, AmqttBrokerError, PluginError, OSError) as exc:
            raise BrokerError(f"cannot start the embedded broker on {self.url}: {exc}") from exc
        self._broker = broker
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.shutdown()
