"""How one satellite's orbit is described, in configuration and on the wire.

:class:`OrbitSpec` is the orbit of a node's configuration (CLI, scenario, demo plan);
:func:`orbit_info` is the description a node publishes in its retained ``Status`` so the
ground can predict its contacts, and :func:`orbits_from_info` its inverse; both give the
one-row :class:`~flightsw.physics.orbit.Orbits` the node and the ground propagate. Shared by
the node (``flightsw.node``) and the ground station, so it sits below both.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from flightsw.exceptions import ConfigError
from flightsw.physics.orbit import CircularOrbits, Orbits, TleOrbits
from flightsw.protocol.messages import CircularOrbitInfo, OrbitInfo, TleOrbitInfo

__all__ = ["OrbitSpec", "build_orbits", "orbit_info", "orbits_from_info"]


class OrbitSpec(BaseModel):
    """A circular orbit, or one satellite of a TLE file."""

    model_config = ConfigDict(extra="forbid")

    altitude_km: float | None = Field(default=None, gt=100, lt=100_000)
    inclination_deg: float | None = Field(default=None, ge=0, le=180)
    raan_deg: float = 0.0
    arg_latitude_deg: float = 0.0
    tle_file: Path | None = None
    tle_name: str | None = None


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


def orbit_info(spec: OrbitSpec, epoch: float) -> OrbitInfo:
    """The orbit as published in the node's retained status (so the ground can predict)."""
    if spec.tle_file is not None:
        return TleOrbitInfo(name=spec.tle_name, text=spec.tle_file.read_text())
    if spec.altitude_km is None or spec.inclination_deg is None:
        raise ConfigError("orbit: give a TLE file, or both altitude_km and inclination_deg")
    return CircularOrbitInfo(
        altitude_km=spec.altitude_km,
        inclination_deg=spec.inclination_deg,
        raan_deg=spec.raan_deg,
        arg_latitude_deg=spec.arg_latitude_deg,
        epoch=epoch,
    )


def orbits_from_info(info: OrbitInfo, name: str) -> Orbits:
    """Inverse of :func:`orbit_info` (``info`` already validated as it was parsed);
    :class:`ConfigError` if the TLE holds no satellite of that name, :class:`OrbitError` if
    the text holds no TLE."""
    if isinstance(info, TleOrbitInfo):
        tles = TleOrbits.from_text(info.text)
        if info.name is None:
            return tles
        if info.name not in tles.names:
            have = ", ".join(tles.names[:10])
            raise ConfigError(f"orbit.name: {info.name!r} is not in the TLE text (has {have})")
        i = tles.names.index(info.name)
        return TleOrbits([tles.satrecs[i]], [info.name])
    return CircularOrbits(
        info.altitude_km,
        info.inclination_deg,
        info.raan_deg,
        info.arg_latitude_deg,
        epoch=info.epoch,
        names=[name],
    )
