"""Typed configuration of one node (from the CLI, a scenario or a test)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from flightsw.exceptions import ConfigError
from flightsw.physics.orbit import CircularOrbits, Orbits, TleOrbits

__all__ = ["NodeConfig", "OrbitSpec", "build_orbits", "orbit_info", "orbits_from_info"]


class OrbitSpec(BaseModel):
    """A circular orbit, or one satellite of a TLE file."""

    model_config = ConfigDict(extra="forbid")

    altitude_km: float | None = Field(default=None, gt=100, lt=100_000)
    inclination_deg: float | None = Field(default=None, ge=0, le=180)
    raan_deg: float = 0.0
    arg_latitude_deg: float = 0.0
    tle_file: Path | None = None
    tle_name: str | None = None


class NodeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    node_id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    profile: str
    orbit: OrbitSpec
    data_dir: Path
    physics_step_s: float = Field(default=10.0, gt=0, description="mission seconds per tick")
    telemetry_period_s: float = Field(default=10.0, gt=0, description="mission seconds")
    state_period_s: float = Field(default=10.0, gt=0, description="mission seconds")
    max_payload_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    overload_backlog_s: float = Field(
        default=1800.0, gt=0, description="queued modelled work beyond which work is shed"
    )
    max_queue: int = Field(default=10_000, gt=0)
    model_wait_s: float = Field(
        default=60.0, ge=0, description="mission seconds a job waits for a missing model"
    )
    initial_soc: float | None = Field(default=None, gt=0, le=1)
    initial_temperature_c: float | None = None
    command_key: str | None = Field(default=None, description="HMAC key for telecommands")
    seed: int = 0
    execute: bool = Field(default=True, description="run inference for real")
    lease_s: float = Field(default=60.0, gt=0, description="mission seconds a lease lasts")
    policy: str = "local"


def build_orbits(spec: OrbitSpec, epoch: float, name: str) -> Orbits:
    """One-row ``Orbits`` for a node from its orbit spec."""
    if spec.tle_file is not None:
        tles = TleOrbits.from_file(spec.tle_file)
        if spec.tle_name is None:
            if len(tles) != 1:
                raise ConfigError(
                    f"tle_name: {spec.tle_file} holds {len(tles)} satellites "
                    f"({', '.join(tles.names[:5])}...); name one"
                )
            return tles
        if spec.tle_name not in tles.names:
            raise ConfigError(
                f"tle_name: {spec.tle_name!r} is not in {spec.tle_file} "
                f"(has {', '.join(tles.names[:10])})"
            )
        i = tles.names.index(spec.tle_name)
        return TleOrbits([tles.satrecs[i]], [spec.tle_name])
    if spec.altitude_km is None or spec.inclination_deg is None:
        raise ConfigError("orbit: give a TLE file, or both altitude_km and inclination_deg")
    return CircularOrbits(
        spec.altitude_km,
        spec.inclination_deg,
        spec.raan_deg,
        spec.arg_latitude_deg,
        epoch=epoch,
        names=[name],
    )


def orbit_info(spec: OrbitSpec, epoch: float) -> dict[str, Any]:
    """The orbit as published in the node's retained status (so the ground can predict)."""
    if spec.tle_file is not None:
        return {"type": "tle", "name": spec.tle_name, "text": spec.tle_file.read_text()}
    return {
        "type": "circular",
        "altitude_km": spec.altitude_km,
        "inclination_deg": spec.inclination_deg,
        "raan_deg": spec.raan_deg,
        "arg_latitude_deg": spec.arg_latitude_deg,
        "epoch": epoch,
    }


def orbits_from_info(info: dict[str, Any], name: str) -> Orbits:
    """Inverse of :func:`orbit_info`; :class:`ConfigError` names a bad field."""
    kind = info.get("type")
    try:
        if kind == "tle":
            tles = TleOrbits.from_text(str(info["text"]))
            wanted = info.get("name")
            if wanted is None:
                return tles
            i = tles.names.index(str(wanted))
            return TleOrbits([tles.satrecs[i]], [str(wanted)])
        if kind == "circular":
            return CircularOrbits(
                float(info["altitude_km"]),
                float(info["inclination_deg"]),
                float(info["raan_deg"]),
                float(info["arg_latitude_deg"]),
                epoch=float(info["epoch"]),
                names=[name],
            )
    except (KeyError, ValueError, TypeError) as exc:
        raise ConfigError(f"orbit: bad orbit description ({exc})") from exc
    raise ConfigError(f"orbit.type: {kind!r} is not 'circular' or 'tle'")
