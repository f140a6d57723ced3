"""Typed configuration of one node (from the CLI, a scenario or a test).

The orbit part (:class:`OrbitSpec` and its conversions) lives in :mod:`flightsw.orbitdesc`,
which the ground station shares; it is re-exported here for the node's modules.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from flightsw.orbitdesc import OrbitSpec, build_orbits, orbit_info

__all__ = ["NodeConfig", "OrbitSpec", "build_orbits", "orbit_info"]


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
    node_key_file: Path | None = Field(
        default=None, description="this node's key: seals what it publishes (docs/security.md)"
    )
    mission_year: float = Field(
        default=0.0, ge=0, le=30,
        description="years in orbit: the bus (battery, array, radiator) as aged by then",
    )
    lifetime_seed: int | None = Field(
        default=None,
        description="draw lifetime events (accelerator loss, debris manoeuvres) with this "
        "seed from the profile's [lifetime], over the rest of its design life",
    )
    ground_public_key_file: Path | None = Field(
        default=None, description="the ground's public warrant key: run only jobs it signed"
    )
    seed: int = 0
    execute: bool = Field(default=True, description="run inference for real")
    lease_s: float = Field(default=60.0, gt=0, description="mission seconds a lease lasts")
    policy: str = "local"
