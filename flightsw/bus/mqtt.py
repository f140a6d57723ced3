"""The MQTT bus adapter over aiomqtt 2.x: the only module in the project that imports aiomqtt.

:class:`MqttBus` is an async context manager owning one ``asyncio.TaskGroup``:

* ``mqtt-connection`` connects, keeps a persistent session (MQTT 3.1.1,
  ``clean_session=False`` with a stable client id), re-subscribes every active pattern after
  each (re)connect and reconnects with capped exponential backoff.
* ``mqtt-outbox`` hands QoS >= 1 messages to the broker in publish order, at most
  ``max_inflight`` awaiting their PUBACK at once (``mqtt-publish`` tasks). A message leaves
  the outbox only when the broker has acknowledged it; on a disconnect the unacknowledged
  ones go back to the front of the outbox and are sent again after the reconnect
  (at-least-once, as the protocol layer above expects).

A fresh aiomqtt client is made for every connection, so the outbox is the single place
where unacknowledged messages live (paho's own resend queue is discarded with the old
client: no second copy is sent behind our back).

Incoming messages are dispatched synchronously from the socket read callback to the
matching :class:`~flightsw.bus.base.Subscription` queues (a queue subclass handed to
aiomqtt as ``queue_type``), which avoids a task and a queue hop per message.

Backoff sleeps here are host transport delays, not mission time, so they use
``asyncio.sleep`` directly (the one sanctioned use outside ``flightsw/clock.py``): a
scaled or virtual mission clock must not stretch or skip broker reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import socket
import ssl
import zlib
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.reasoncodes import ReasonCode

from flightsw.bus.base import Bus, Message, Subscription, check_topic
from flightsw.bus.url import CA_FILE_ENV_VAR, BrokerUrl, default_ca_file, parse_broker_url
from flightsw.exceptions import BusError, ConfigError

__all__ = ["MqttBus", "Will"]

_log = logging.getLogger(__name__)

T = TypeVar("T")

#: Largest payload the MQTT fixed header can describe, less room for topic and header.
_MQTT_MAX_PAYLOAD = 268_435_455 - 65_540

#: Longest wait for CONNACK once TCP is up. aiomqtt does not notice a connection reset
#: before CONNACK (e.g. a proxy whose broker is down) and waits this long instead.
_CONNACK_TIMEOUT_S = 3.0

#: CONNACK refusals that retrying cannot fix: bad protocol version, client id rejected,
#: bad user name or password, not authorised (MQTT 3.1.1 codes and paho's v5 mapping).
_FATAL_CONNACK = frozenset({1, 2, 4, 5, 0x84, 0x85, 0x86, 0x87, 0x8C})


@dataclass(frozen=True, slots=True)
class Will:
    """Last will: published by the broker if this client vanishes without a DISCONNECT.

    Nodes use a retained ``offline`` status so late subscribers see a dead node as such.
    """

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(slots=True)
class _Outgoing:
    topic: str
    payload: bytes
    qos: int
    retain: bool


def _dispatch_queue_type(
    handler: Callable[[aiomqtt.Message], None],
) -> type[asyncio.Queue[aiomqtt.Message]]:
    """An ``asyncio.Queue`` look-alike that hands each message to ``handler`` at once.

    aiomqtt puts every received message into its queue with ``put_nowait``; this queue
    never holds anything, so ``client.messages`` only ends with the disconnect error.
    """

    class _DispatchQueue(asyncio.Queue[aiomqtt.Message]):
        def put_nowait(self, item: aiomqtt.Message) -> None:
            handler(item)

    return _DispatchQueue


def _no_delay(client: aiomqtt.Client) -> None:
    """Disable Nagle's algorithm: small QoS 1 packets must not wait for a delayed ACK
    (paho leaves it on, which costs ~40 ms per request/reply exchange on loopback)."""
    sock = client._client.socket()
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _refused(codes: tuple[int, ...] | list[ReasonCode]) -> bool:
    """True if a SUBACK refused any filter (return code 0x80 or above)."""
    for code in codes:
        value = code.value if isinstance(code, ReasonCode) else int(code)
        if value >= 0x80:
            return True
    return False


def _fatal(exc: MqttConnectError) -> bool:
    rc = exc.rc
    value = rc.value if isinstance(rc, ReasonCode) else rc
    return value in _FATAL_CONNACK


def _retrieve_disconnect_error(client: aiomqtt.Client) -> None:
    """Mark a disconnect error as seen when nobody else will.

    If the connection drops just as its context is left (bus closing), aiomqtt's
    ``__aexit__`` returns early and leaves the error in a private future, which asyncio
    later reports as "Future exception was never retrieved".
    """
    fut = getattr(client, "_disconnected", None)
    if isinstance(fut, asyncio.Future) and fut.done() and not fut.cancelled():
        fut.exception()


def _default_tls_context() -> ssl.SSLContext:
    """Verifying TLS context for ``mqtts://``: the system CA store, or only the CA in
    ``$ODC_CA_FILE`` when that is set (:class:`ConfigError` naming it if unusable)."""
    cafile = default_ca_file()
    if cafile is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"{CA_FILE_ENV_VAR}={cafile!r}: cannot load a PEM CA certificate from it ({exc})"
        ) from exc


def _positive(name: str, value: float) -> float:
    if not (isinstance(value, int | float) and value > 0 and math.isfinite(value)):
        raise ConfigError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def _check_qos(qos: int, what: str) -> None:
    if qos not in (0, 1, 2):
        raise BusError(f"qos must be 0, 1 or 2, got {qos!r} for {what}")


class MqttBus(Bus):
    """:class:`~flightsw.bus.base.Bus` over a real MQTT broker.

    ``async with MqttBus("mqtt://127.0.0.1:1883", "node-3", will=...) as bus:`` connects
    (retrying with backoff for up to ``connect_timeout_s``, then :class:`BusError` naming
    the URL), and on exit flushes the outbox for up to ``close_timeout_s`` and disconnects
    cleanly (a clean disconnect does not fire the will).

    Publishing: QoS 0 goes straight to the socket when connected and is dropped (counted in
    ``dropped``) while disconnected. QoS >= 1 is queued in the outbox and never lost while
    the process lives; ``publish`` returns once queued and only waits when ``max_inflight``
    messages are already queued while connected, or ``outbox_limit`` while disconnected.
    Order is kept among QoS >= 1 messages and among QoS 0 messages (as MQTT orders per
    QoS level), not across the two.

    Sessions: with ``persistent_session`` (default) the broker keeps this client's
    subscriptions and queues QoS >= 1 messages for it while it is away; they arrive after
    the reconnect. ``clean_start`` discards a session left by an earlier run first.
    """

    def __init__(
        self,
        url: str | BrokerUrl,
        client_id: str,
        *,
        will: Will | None = None,
        clean_start: bool = False,
        persistent_session: bool = True,
        keepalive_s: int = 10,
        reconnect_min_s: float = 0.1,
        reconnect_max_s: float = 5.0,
        connect_timeout_s: float = 10.0,
        close_timeout_s: float = 5.0,
        username: str | None = None,
        password: str | None = None,
        tls_context: ssl.SSLContext | None = None,
        max_payload_bytes: int | None = None,
        max_inflight: int = 1000,
        outbox_limit: int = 100_000,
    ) -> None:
        super().__init__()
        self.url = url if isinstance(url, BrokerUrl) else parse_broker_url(url)
        if not isinstance(client_id, str) or not client_id or len(client_id.encode()) > 65535:
            raise ConfigError(f"client_id must be a non-empty string, got {client_id!r}")
        self.client_id = client_id
        if will is not None:
            check_topic(will.topic)
            _check_qos(will.qos, f"the will on {will.topic!r}")
        self._will = will
        self._clean_start = clean_start
        self._persistent = persistent_session
        if not isinstance(keepalive_s, int) or not 1 <= keepalive_s <= 65535:
            raise ConfigError(f"keepalive_s must be an integer in 1..65535, got {keepalive_s!r}")
        self._keepalive = keepalive_s
        self._reconnect_min = _positive("reconnect_min_s", reconnect_min_s)
        self._reconnect_max = _positive("reconnect_max_s", reconnect_max_s)
        if self._reconnect_max < self._reconnect_min:
            raise ConfigError(
                f"reconnect_max_s ({reconnect_max_s!r}) must be >= reconnect_min_s "
                f"({reconnect_min_s!r})"
            )
        self._connect_timeout = _positive("connect_timeout_s", connect_timeout_s)
        self._close_timeout = _positive("close_timeout_s", close_timeout_s)
        self._username = username if username is not None else self.url.username
        self._password = password if password is not None else self.url.password
        if tls_context is None and self.url.tls:
            tls_context = _default_tls_context()
        self._tls_context = tls_context
        if max_payload_bytes is not None and (
            not isinstance(max_payload_bytes, int) or max_payload_bytes < 0
        ):
            raise ConfigError(
                f"max_payload_bytes must be a non-negative integer or None, "
                f"got {max_payload_bytes!r}"
            )
        self._payload_limit = min(
            _MQTT_MAX_PAYLOAD, _MQTT_MAX_PAYLOAD if max_payload_bytes is None else max_payload_bytes
        )
        if not isinstance(max_inflight, int) or max_inflight < 1:
            raise ConfigError(f"max_inflight must be a positive integer, got {max_inflight!r}")
        self._max_inflight = max_inflight
        if not isinstance(outbox_limit, int) or outbox_limit < max_inflight:
            raise ConfigError(
                f"outbox_limit must be an integer >= max_inflight ({max_inflight}), "
                f"got {outbox_limit!r}"
            )
        self._outbox_limit = outbox_limit
        # deterministic per client id, different between clients (spreads reconnects)
        self._jitter = random.Random(zlib.crc32(client_id.encode()))
        self._queue_type = _dispatch_queue_type(self._on_mqtt_message)

        #: Set while connected and subscribed; cleared while the broker is unreachable.
        self.connected = asyncio.Event()
        #: The complement of ``connected`` (set before the first connect and during outages).
        self.disconnected = asyncio.Event()
        self.disconnected.set()
        #: Messages accepted by :meth:`publish` (QoS 0 sent plus QoS >= 1 queued).
        self.published = 0
        #: QoS >= 1 messages acknowledged by the broker (PUBACK/PUBCOMP).
        self.acked = 0
        #: QoS 0 messages dropped because the broker was unreachable.
        self.dropped = 0
        #: Messages received from the broker.
        self.received = 0
        #: Successful connections after the first one.
        self.reconnects = 0
        #: Connection attempts, successful or not.
        self.connect_attempts = 0
        self.last_error: str | None = None

        self._client: aiomqtt.Client | None = None
        # resolved when the current connection drops
        self._conn_lost: asyncio.Future[None] | None = None
        self._running = False
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._first: asyncio.Future[None] | None = None
        self._outbox: deque[_Outgoing] = deque()
        self._inflight: dict[asyncio.Task[bool], _Outgoing] = {}
        self._wake = asyncio.Event()  # the outbox has work (or a slot was freed)
        self._space = asyncio.Event()  # a publisher waiting for outbox room may retry
        self._idle = asyncio.Event()  # outbox and in-flight set are both empty
        self._idle.set()
        self._pattern_refs: dict[str, int] = {}
        self._pattern_qos: dict[str, int] = {}
        self._stale_patterns: set[str] = set()  # to unsubscribe at the next connect

    # ------------------------------------------------------------------ status

    @property
    def pending(self) -> int:
        """QoS >= 1 messages not yet acknowledged by the broker (queued or in flight)."""
        return len(self._outbox) + len(self._inflight)

    def stats(self) -> dict[str, int]:
        """Counters for telemetry and tests."""
        return {
            "published": self.published,
            "acked": self.acked,
            "dropped": self.dropped,
            "received": self.received,
            "reconnects": self.reconnects,
            "connect_attempts": self.connect_attempts,
            "pending": self.pending,
        }

    # ------------------------------------------------------------------ publish

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        if len(payload) > self._payload_limit:
            raise BusError(
                f"payload of {len(payload)} bytes on {topic!r} exceeds the limit of "
                f"{self._payload_limit} bytes"
            )
        if qos == 0:
            client = self._client
            if client is not None and self.connected.is_set():
                try:
                    await client.publish(topic, payload, 0, retain)
                except aiomqtt.MqttError:
                    self.dropped += 1  # connection just failed; QoS 0 may be lost
                    return
                except (ValueError, TypeError) as exc:
                    raise BusError(f"cannot publish on topic {topic!r}: {exc}") from exc
                self.published += 1
                return
            check_topic(topic)
            self._check_running()
            self.dropped += 1
            return
        check_topic(topic)
        _check_qos(qos, f"topic {topic!r}")
        self._check_running()
        self._outbox.append(_Outgoing(topic, payload, qos, retain))
        self.published += 1
        self._idle.clear()
        self._wake.set()
        if len(self._outbox) >= self._max_inflight:
            await self._wait_for_room()

    async def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every QoS >= 1 message published so far is acknowledged.

        Raises :class:`BusError` if that takes longer than ``timeout_s`` (host seconds).
        """
        if self._idle.is_set():
            return
        try:
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        except TimeoutError:
            raise BusError(
                f"flush to {self.url} timed out after {timeout_s} s with {self.pending} "
                f"messages unacknowledged (connected: {self.connected.is_set()})"
            ) from None

    def _check_running(self) -> None:
        if not self._running:
            raise BusError(f"MqttBus {self.client_id!r} is not running (use `async with`)")

    async def _wait_for_room(self) -> None:
        while True:
            limit = self._max_inflight if self.connected.is_set() else self._outbox_limit
            if len(self._outbox) < limit:
                return
            self._check_running()
            self._space.clear()
            await self._space.wait()

    def _update_idle(self) -> None:
        if not self._outbox and not self._inflight:
            self._idle.set()

    async def _drain_loop(self) -> None:
        outbox = self._outbox
        inflight = self._inflight
        while True:
            await self._wake.wait()
            self._wake.clear()
            client = self._client
            if client is None or not self.connected.is_set() or self._tg is None:
                continue
            while outbox and len(inflight) < self._max_inflight:
                item = outbox.popleft()
                task = self._tg.create_task(self._send(client, item), name="mqtt-publish")
                inflight[task] = item
                task.add_done_callback(self._on_send_done)
            self._space.set()

    @staticmethod
    async def _send(client: aiomqtt.Client, item: _Outgoing) -> bool:
        try:
            await client.publish(item.topic, item.payload, item.qos, item.retain,
                                 timeout=math.inf)
        except aiomqtt.MqttError:
            return False  # disconnected: stays in flight until requeued
        return True

    def _on_send_done(self, task: asyncio.Task[bool]) -> None:
        if task.cancelled():
            return
        if not task.result() or task not in self._inflight:
            return
        del self._inflight[task]
        self.acked += 1
        if self._outbox:
            self._wake.set()
        else:
            self._update_idle()

    def _requeue_inflight(self) -> None:
        """Put every unacknowledged in-flight message back at the outbox front, in order."""
        unacked: list[_Outgoing] = []
        for task, item in self._inflight.items():
            if task.done() and not task.cancelled() and task.result():
                self.acked += 1  # acknowledged; its done callback has not run yet
                continue
            task.cancel()
            unacked.append(item)
        self._inflight.clear()
        self._outbox.extendleft(reversed(unacked))
        self._update_idle()

    # ------------------------------------------------------------------ subscribe

    async def _add_subscription(self, sub: Subscription) -> None:
        await super()._add_subscription(sub)
        pattern = sub.pattern
        self._pattern_refs[pattern] = self._pattern_refs.get(pattern, 0) + 1
        self._stale_patterns.discard(pattern)
        if sub.qos <= self._pattern_qos.get(pattern, -1):
            return
        self._pattern_qos[pattern] = sub.qos
        client = self._client
        if client is None:
            return  # subscribed when the connection comes up
        try:
            codes = await self._unless_lost(client.subscribe(pattern, sub.qos))
        except aiomqtt.MqttError:
            return  # the connection dropped; re-subscribed after the reconnect
        if _refused(codes):
            await self._remove_subscription(sub)
            raise BusError(f"broker {self.url} refused the subscription to {pattern!r}")

    async def _remove_subscription(self, sub: Subscription) -> None:
        if sub not in self._subs:
            return
        await super()._remove_subscription(sub)
        pattern = sub.pattern
        refs = self._pattern_refs.get(pattern, 0) - 1
        if refs > 0:
            self._pattern_refs[pattern] = refs
            return
        self._pattern_refs.pop(pattern, None)
        self._pattern_qos.pop(pattern, None)
        if not self._running:
            return  # closing: the persistent session keeps the subscription
        client = self._client
        if client is None:
            self._stale_patterns.add(pattern)
            return
        try:
            await self._unless_lost(client.unsubscribe(pattern))
        except aiomqtt.MqttError:
            self._stale_patterns.add(pattern)

    def _on_mqtt_message(self, message: aiomqtt.Message) -> None:
        self.received += 1
        try:
            self._dispatch(Message(message.topic.value, message.payload, message.retain))
        except Exception:  # never let a bad message break the socket callback
            _log.exception("dispatching a message on %r failed", message.topic.value)

    # ------------------------------------------------------------------ connection

    def _make_client(self, *, clean: bool, with_will: bool = True) -> aiomqtt.Client:
        will = None
        if with_will and self._will is not None:
            w = self._will
            will = aiomqtt.Will(w.topic, w.payload, w.qos, w.retain)
        return aiomqtt.Client(
            self.url.host,
            self.url.port,
            username=self._username,
            password=self._password,
            identifier=self.client_id,
            queue_type=self._queue_type,
            protocol=aiomqtt.ProtocolVersion.V311,
            will=will,
            clean_session=clean,
            timeout=min(self._connect_timeout, _CONNACK_TIMEOUT_S),
            keepalive=self._keepalive,
            max_inflight_messages=self._max_inflight,
            tls_context=self._tls_context,
        )

    async def _unless_lost(self, call: Coroutine[Any, Any, T]) -> T:
        """Await ``call`` (a request to the broker) unless the connection drops first.

        aiomqtt would otherwise wait for the SUBACK/UNSUBACK of a dead connection until its
        timeout. Raises ``aiomqtt.MqttError`` if the connection is lost.
        """
        lost = self._conn_lost
        if lost is None or lost.done():
            call.close()
            raise aiomqtt.MqttError("not connected")
        task = asyncio.ensure_future(call)
        try:
            await asyncio.wait((task, lost), return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                return task.result()
            raise aiomqtt.MqttError("connection lost while waiting for the broker")
        finally:
            if not task.done():
                task.cancel()

    async def _watch(self, client: aiomqtt.Client, lost: asyncio.Future[None]) -> None:
        """Resolve ``lost`` when the connection drops (our queue never yields messages,
        so ``client.messages`` only ends with the disconnect error)."""
        try:
            async for _ in client.messages:
                pass
        except aiomqtt.MqttError as exc:
            self.last_error = str(exc) or type(exc).__name__
        finally:
            if not lost.done():
                lost.set_result(None)

    async def _on_connected(self, client: aiomqtt.Client) -> None:
        _no_delay(client)
        client.pending_calls_threshold = self._max_inflight + 100
        client.timeout = self._connect_timeout  # for SUBACK/UNSUBACK and the disconnect
        stale = list(self._stale_patterns)
        if stale:
            await self._unless_lost(client.unsubscribe(stale))
            self._stale_patterns.difference_update(stale)
        patterns = list(self._pattern_qos.items())
        if patterns:
            codes = await self._unless_lost(client.subscribe(patterns))
            if _refused(codes):
                _log.error("broker %s refused some of the subscriptions %s", self.url,
                           [p for p, _ in patterns])
        self.disconnected.clear()
        self.connected.set()
        self._wake.set()
        self._space.set()
        if self._first is not None and not self._first.done():
            self._first.set_result(None)

    def _on_disconnected(self) -> None:
        self._client = None
        if self._conn_lost is not None and not self._conn_lost.done():
            self._conn_lost.set_result(None)
        self.connected.clear()
        self.disconnected.set()
        self._requeue_inflight()
        self._space.set()

    async def _connection_loop(self) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        ever_connected = False
        session_wiped = not (self._clean_start and self._persistent)
        while True:
            self.connect_attempts += 1
            up_since: float | None = None
            try:
                if not session_wiped:
                    async with self._make_client(clean=True, with_will=False):
                        pass  # a clean-session connect drops the old session at disconnect
                    session_wiped = True
                async with self._make_client(clean=not self._persistent) as client:
                    # event-loop time: the same host time base as the backoff sleep below
                    up_since = loop.time()
                    lost: asyncio.Future[None] = loop.create_future()
                    self._client, self._conn_lost = client, lost
                    assert self._tg is not None
                    watcher = self._tg.create_task(self._watch(client, lost), name="mqtt-watch")
                    if ever_connected:
                        self.reconnects += 1
                        _log.info("reconnected to %s as %r", self.url, self.client_id)
                    ever_connected = True
                    try:
                        await self._on_connected(client)
                        await lost
                    finally:
                        watcher.cancel()
                        _retrieve_disconnect_error(client)
            except MqttConnectError as exc:
                self.last_error = f"connection refused by the broker: {exc}"
                if (_fatal(exc) and not ever_connected and self._first is not None
                        and not self._first.done()):
                    self._first.set_exception(
                        BusError(f"MQTT broker {self.url} refused client "
                                 f"{self.client_id!r}: {exc}"))
                    return
            except aiomqtt.MqttError as exc:
                self.last_error = str(exc) or type(exc).__name__
            finally:
                self._on_disconnected()
            if up_since is not None:
                lasted = loop.time() - up_since
                _log.warning("lost connection to %s after %.2f s: %s", self.url, lasted,
                             self.last_error)
                # longer than any backoff delay: the connection was stable, retry fast;
                # a connection that flaps (duplicate client id) keeps backing off
                if lasted >= 2 * self._reconnect_max:
                    failures = 0
            elif failures == 0:
                _log.warning("cannot connect to %s: %s (retrying)", self.url, self.last_error)
            failures += 1
            delay = min(self._reconnect_max, self._reconnect_min * 2 ** min(failures - 1, 30))
            delay *= 0.8 + 0.4 * self._jitter.random()
            # host transport delay, not mission time (see the module docstring)
            await asyncio.sleep(delay)

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        if self._running or self._tg is not None:
            raise BusError(f"MqttBus {self.client_id!r} is already running")
        self._first = asyncio.get_running_loop().create_future()
        tg = asyncio.TaskGroup()
        await tg.__aenter__()
        self._tg = tg
        self._running = True
        self._tasks = [
            tg.create_task(self._connection_loop(), name="mqtt-connection"),
            tg.create_task(self._drain_loop(), name="mqtt-outbox"),
        ]
        error: BusError
        try:
            async with asyncio.timeout(self._connect_timeout):
                await self._first
        except TimeoutError:
            error = BusError(
                f"cannot connect to MQTT broker {self.url} within "
                f"{self._connect_timeout:g} s: {self.last_error or 'no answer'}"
            )
        except BusError as exc:
            error = exc
        except BaseException:
            await self._shutdown()
            raise
        else:
            return self
        await self._shutdown()
        raise error

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._tg is None:
            return
        if exc_type is None and self.connected.is_set() and self.pending:
            with contextlib.suppress(BusError):
                await self.flush(self._close_timeout)
        await self._shutdown()

    async def _shutdown(self) -> None:
        """Stop every task of the bus. An exception from the ``async with`` body is not
        handed to the TaskGroup, so it reaches the caller as it was (not wrapped in an
        ExceptionGroup); errors of the bus's own tasks do surface as an ExceptionGroup."""
        self._running = False
        self._space.set()
        for task in self._tasks:
            task.cancel()
        for send in list(self._inflight):
            send.cancel()
        tg, self._tg = self._tg, None
        try:
            if tg is not None:
                await tg.__aexit__(None, None, None)
        finally:
            self._tasks = []
            lost = self.pending
            if lost:
                _log.warning("%s closed with %d QoS>=1 messages unacknowledged", self.client_id,
                             lost)
