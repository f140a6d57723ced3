"""A real mosquitto as a child process, for the tests and the benchmarks (not the product).

:class:`MosquittoProcess` listens on 127.0.0.1 only and persists to a data directory, so
a restart keeps sessions and queued messages (what the tests of the MQTT bus need).
``tests/conftest.py`` builds the ``mosquitto`` fixtures on it; benchmarks put
``tests/helpers`` on ``sys.path`` and import it from here.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import pwd
import shutil
import signal
from pathlib import Path
from types import TracebackType
from typing import Self

from flightsw.broker import check_port, free_port
from flightsw.exceptions import BrokerError

__all__ = ["MosquittoProcess", "find_mosquitto"]

_log = logging.getLogger(__name__)

_MOSQUITTO_CANDIDATES = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


def find_mosquitto() -> str | None:
    """Path of the mosquitto binary: ``mosquitto`` on ``PATH`` or in ``/usr/sbin``."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in _MOSQUITTO_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


class MosquittoProcess:
    """A mosquitto child process on ``127.0.0.1:port``.

    ``async with MosquittoProcess(port, data_dir=d) as broker:`` or explicit
    :meth:`start` / :meth:`stop` / :meth:`kill` / :meth:`restart`. ``start`` returns once
    mosquitto logs that it is running (listening). Anonymous clients are allowed unless a
    ``password_file`` is given. With ``persistence`` the in-memory database (sessions,
    subscriptions, queued and retained messages) is saved to ``data_dir`` on a clean stop
    and loaded at start.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        data_dir: str | Path,
        persistence: bool = True,
        password_file: str | Path | None = None,
        acl_file: str | Path | None = None,
        config_extra: str = "",
        binary: str | None = None,
        start_timeout_s: float = 10.0,
        max_queued_messages: int = 100_000,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = check_port(port) if port is not None else free_port(self.host)
        self.data_dir = Path(data_dir)
        self.persistence = persistence
        self.password_file = Path(password_file) if password_file is not None else None
        self.acl_file = Path(acl_file) if acl_file is not None else None
        self.config_extra = config_extra
        self._binary = binary
        self.start_timeout_s = start_timeout_s
        self.max_queued_messages = max_queued_messages
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None
        #: The last log lines mosquitto wrote (for error messages and debugging).
        self.log: collections.deque[str] = collections.deque(maxlen=200)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "mosquitto.conf"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def config_text(self) -> str:
        """The mosquitto configuration this process runs with."""
        # mosquitto started as root drops to user "mosquitto" unless told otherwise; stay
        # as the current user so the data directory stays writable.
        user = pwd.getpwuid(os.getuid()).pw_name
        lines = [
            f"listener {self.port} {self.host}",
            f"user {user}",
            f"allow_anonymous {'false' if self.password_file else 'true'}",
            "set_tcp_nodelay true",
            f"max_queued_messages {self.max_queued_messages}",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
        ]
        if self.password_file is not None:
            lines.append(f"password_file {self.password_file}")
        if self.acl_file is not None:
            lines.append(f"acl_file {self.acl_file}")
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.data_dir}/"]
        else:
            lines.append("persistence false")
        if self.config_extra:
            lines.append(self.config_extra.strip())
        return "\n".join(lines) + "\n"

    async def start(self) -> None:
        """Write the config and start mosquitto; return once it is listening."""
        if self.running:
            return
        binary = self._binary or find_mosquitto()
        if binary is None:
            raise BrokerError(
                "mosquitto is not installed (looked for 'mosquitto' on PATH and in "
                "/usr/sbin); install it (e.g. `apt-get install mosquitto`) or pass binary="
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_text())
        try:
            proc = await asyncio.create_subprocess_exec(
                binary, "-c", str(self.config_path),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise BrokerError(f"cannot run mosquitto {binary!r}: {exc}") from exc
        self._proc = proc
        ready = asyncio.Event()
        self._ready = ready
        self._reader = asyncio.create_task(self._read_log(proc, ready), name="mosquitto-log")
        waiters = {asyncio.ensure_future(ready.wait()), asyncio.ensure_future(proc.wait())}
        try:
            done, _ = await asyncio.wait(
                waiters, timeout=self.start_timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
        if not ready.is_set():
            await self._terminate(signal.SIGKILL)
            tail = " | ".join(list(self.log)[-5:])
            why = "did not start" if done else f"not listening after {self.start_timeout_s} s"
            raise BrokerError(f"mosquitto on {self.host}:{self.port} {why}: {tail}")
        _log.debug("mosquitto %d listening on %s:%d", proc.pid, self.host, self.port)

    async def _read_log(self, proc: asyncio.subprocess.Process, ready: asyncio.Event) -> None:
        assert proc.stderr is not None
        while True:
            raw = await proc.stderr.readline()
            if not raw:
                return
            line = raw.decode(errors="replace").rstrip()
            self.log.append(line)
            if not ready.is_set() and line.endswith(" running"):
                ready.set()

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Stop cleanly (SIGTERM; mosquitto saves its database), SIGKILL after timeout."""
        await self._terminate(signal.SIGTERM, timeout_s)

    async def kill(self) -> None:
        """Crash it (SIGKILL): nothing is saved since the last autosave."""
        await self._terminate(signal.SIGKILL)

    async def restart(self) -> None:
        """Stop cleanly and start again on the same port and data directory."""
        await self.stop()
        await self.start()

    async def _terminate(self, sig: signal.Signals, timeout_s: float = 10.0) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            try:
                await asyncio.wait_for(proc.wait(), timeout_s)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._reader = None
        self._proc = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
