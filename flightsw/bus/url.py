"""Broker URLs: ``mqtt://[user:pass@]host[:port]`` and ``mqtts://`` (TLS).

The CLIs take ``--broker URL`` and default to the ``ODC_BROKER`` environment variable
(:func:`default_broker_url`). An ``mqtts://`` broker whose certificate is signed by a private
CA (the Docker deployment's, docs/docker.md) is trusted through ``ODC_CA_FILE``
(:func:`default_ca_file`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from flightsw.exceptions import ConfigError

__all__ = [
    "BROKER_ENV_VAR",
    "CA_FILE_ENV_VAR",
    "DEFAULT_BROKER_URL",
    "BrokerUrl",
    "default_broker_url",
    "default_ca_file",
    "parse_broker_url",
]

BROKER_ENV_VAR = "ODC_BROKER"
DEFAULT_BROKER_URL = "mqtt://127.0.0.1:1883"
CA_FILE_ENV_VAR = "ODC_CA_FILE"

_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True, slots=True)
class BrokerUrl:
    """Where and how to reach a broker. ``str()`` never shows the password."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @property
    def scheme(self) -> str:
        return "mqtts" if self.tls else "mqtt"

    def redacted(self) -> str:
        """The URL with the password replaced by ``***`` (for logs and error messages)."""
        return self._format(show_password=False)

    def unredacted(self) -> str:
        """The full URL including the password (to hand to a child process)."""
        return self._format(show_password=True)

    def _format(self, *, show_password: bool) -> str:
        auth = ""
        if self.username is not None:
            auth = quote(self.username, safe="")
            if self.password is not None:
                auth += ":" + (quote(self.password, safe="") if show_password else "***")
            auth += "@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{auth}{host}:{self.port}"

    def __str__(self) -> str:
        return self.redacted()


def _redact_raw(url: str) -> str:
    """Hide a password in a URL we could not parse, for the error message."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, path = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":***"
    return f"{scheme}://{userinfo}{at}{hostport}{slash}{path}"


def parse_broker_url(url: str) -> BrokerUrl:
    """Parse ``mqtt://[user[:pass]@]host[:port]`` or ``mqtts://...``.

    Default ports are 1883 (``mqtt``) and 8883 (``mqtts``). User and password may be
    percent-encoded. Raises :class:`ConfigError` naming the URL (password hidden) and
    what is wrong with it.
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"broker URL must be a non-empty string like {DEFAULT_BROKER_URL}, "
                          f"got {url!r}")
    shown = _redact_raw(url.strip())

    def bad(why: str) -> ConfigError:
        return ConfigError(f"invalid broker URL {shown!r}: {why}")

    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:
        raise bad(str(exc)) from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise bad(f"scheme must be 'mqtt' or 'mqtts', got {parts.scheme or '(none)'!r}")
    if parts.path not in ("", "/"):
        raise bad(f"unexpected path {parts.path!r}")
    if parts.query or parts.fragment:
        raise bad("query strings and fragments are not supported")
    host = parts.hostname
    if not host:
        raise bad("missing host")
    try:
        port = parts.port
    except ValueError as exc:
        raise bad(f"port must be an integer in 1..65535 ({exc})") from exc
    if port is None:
        port = _DEFAULT_PORTS[scheme]
    elif port == 0:
        raise bad("port must be an integer in 1..65535, got 0")
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    if username == "":
        if password:
            raise bad("password given without a user name")
        username = None
        password = None
    return BrokerUrl(host=host, port=port, username=username, password=password,
                     tls=scheme == "mqtts")


def default_broker_url() -> str:
    """The broker URL the CLIs use when ``--broker`` is not given: ``$ODC_BROKER`` or
    ``mqtt://127.0.0.1:1883``."""
    return os.environ.get(BROKER_ENV_VAR) or DEFAULT_BROKER_URL


def default_ca_file() -> str | None:
    """The CA certificate file (PEM) that ``mqtts://`` connections trust instead of the
    system's CA store: ``$ODC_CA_FILE``, or ``None`` (system store) when unset or empty."""
    return os.environ.get(CA_FILE_ENV_VAR) or None
