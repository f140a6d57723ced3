"""Every error the flight software raises on purpose derives from :class:`FlightSwError`.

Third-party errors are translated where the library is called
(``raise BusError(...) from exc``) so callers only ever catch these.
"""

from __future__ import annotations

__all__ = [
    "ArchiveError",
    "AuthError",
    "BrokerError",
    "BusError",
    "ClockError",
    "ConfigError",
    "CostModelError",
    "FlightSwError",
    "InferenceError",
    "JobRejected",
    "ModelStoreError",
    "OrbitError",
    "ProfileError",
    "ProtocolError",
    "ScenarioError",
    "UnknownModelError",
]


class FlightSwError(Exception):
    """Base class of all flight-software errors."""


class ConfigError(FlightSwError):
    """A configuration value (CLI option, TOML field) is invalid; the message names it."""


class ProfileError(ConfigError):
    """A hardware profile is missing or invalid; the message names the file and field."""


class ScenarioError(ConfigError):
    """A simulation scenario file is invalid; the message names the field."""


class OrbitError(FlightSwError):
    """An orbit could not be built or propagated (bad TLE, SGP4 error code, ...)."""


class ClockError(FlightSwError):
    """Misuse of a clock (sleeping into the past on a virtual clock, ...)."""


class BusError(FlightSwError):
    """The message bus failed (broker unreachable, publish refused, ...)."""


class BrokerError(BusError):
    """A local MQTT broker (mosquitto subprocess, embedded amqtt) could not start or stop."""


class ProtocolError(FlightSwError):
    """A message could not be decoded or failed its schema; the message names the field.

    Set where it is raised, so nobody reads them back out of the text: ``code`` is
    ``"oversize"`` (over the receiver's size limit), ``"undecodable"`` (not msgpack),
    ``"schema"`` (a field is missing, unknown or invalid, a tensor included) or
    ``"unencodable"``; ``field`` is the dotted path of the bad field (``"inputs.x.dtype"``)
    when one is to blame.
    """

    def __init__(self, message: str, *, code: str = "schema", field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.field = field


class AuthError(ProtocolError):
    """A sealed message or a key did not check out: no key, no seal, a MAC that does not
    verify, a replayed sequence number, or an unreadable key file."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="unauthenticated", field="auth")


class ModelStoreError(FlightSwError):
    """A model upload is corrupt, incomplete or does not match its hash."""


class UnknownModelError(ModelStoreError):
    """A job names a model hash that the store does not hold."""


class CostModelError(FlightSwError):
    """An ONNX graph could not be analysed for FLOPs and bytes."""


class InferenceError(FlightSwError):
    """onnxruntime refused the inputs or failed while running."""


class JobRejected(FlightSwError):
    """A job was refused (bad input, admission control); ``reason`` names why.

    ``code`` is the ``ErrorEvent`` code a node reports it with (``"invalid_job"``) and
    ``field`` the part of the job to blame (``"inputs"``, ``"inputs.image"``), both set where
    it is raised.
    """

    def __init__(
        self, reason: str, *, code: str = "invalid_job", field: str | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.field = field


class ArchiveError(FlightSwError):
    """The telemetry archive could not be opened, written or read (``flightsw.archive``)."""
