"""The nodes of a scenario as emulated nodes: one configuration, profile and orbit each.

A scenario (``flightsw.sim.scenario``) is the one description of the constellation for the
simulator and the emulation alike. :func:`scenario_roster` resolves it the way the simulator
does (:func:`flightsw.sim.world.build_world`: node names, orbits, profiles aged to the
scenario's mission year) and cuts each node's row out of it, so ``flightsw nodes`` runs the
satellites the simulator would run, under the same names. ``only`` picks some of them by
shell-style pattern (``P0[0-4]*``, comma-separated for several), so the nodes of one
scenario can be spread over several node hosts or containers.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from flightsw.exceptions import ConfigError
from flightsw.node.config import NodeConfig
from flightsw.node.lifetime import LifetimeSchedule, schedule_of
from flightsw.orbitdesc import OrbitSpec
from flightsw.physics.orbit import CircularOrbits, Orbits, TleOrbits
from flightsw.sim.scenario import Scenario, format_errors
from flightsw.sim.world import build_world
from hardware_profiles import HardwareProfile

__all__ = ["HostedNode", "NodeSettings", "scenario_roster", "select_names"]


@dataclass(frozen=True)
class NodeSettings:
    """What every node of a host shares that the scenario does not say."""

    state_dir: Path
    node_keys: Path | None = None
    ground_public_key_file: Path | None = None
    command_key: str | None = None  # ``{node}`` in it becomes the node's id
    command_keys: Mapping[str, str] = field(default_factory=dict)  # by node, before that
    telemetry_period_s: float = 10.0
    state_period_s: float = 10.0
    physics_step_s: float | None = None  # None: the scenario's step_s
    policy: str | None = None  # None: the scenario's scheduler.policy
    execute: bool = True
    max_payload_bytes: int = 16 * 1024 * 1024


@dataclass(frozen=True)
class HostedNode:
    """One node to run: its configuration, its (aged) profile and its one-row orbit."""

    config: NodeConfig
    profile: HardwareProfile
    orbits: Orbits
    # the scenario's drawn lifetime events of this node (``lifetime_events = true``): the
    # simulator's own draw, so a hosted node fails and manoeuvres when the simulated one does
    lifetime: LifetimeSchedule | None = None


def select_names(names: list[str], only: str | None) -> list[int]:
    """Indices of the names matching any comma-separated shell pattern of ``only`` (all
    for ``None``); a pattern that matches no name is an error naming it."""
    if only is None:
        return list(range(len(names)))
    patterns = [p.strip() for p in only.split(",")]
    if not all(patterns):
        raise ConfigError(f"--only {only!r}: an empty pattern (give e.g. 'P00*,P01S0?')")
    for pat in patterns:
        if not fnmatch.filter(names, pat):
            shown = ", ".join(names[:6]) + (" ..." if len(names) > 6 else "")
            raise ConfigError(
                f"--only: pattern {pat!r} matches none of the {len(names)} satellites "
                f"of the scenario ({shown})"
            )
    return [i for i, n in enumerate(names) if any(fnmatch.fnmatchcase(n, p) for p in patterns)]


def _command_key(settings: NodeSettings, name: str) -> str | None:
    if name in settings.command_keys:
        return settings.command_keys[name]
    return settings.command_key.replace("{node}", name) if settings.command_key else None


def _row(orbits: Orbits, i: int, name: str, tle_file: Path | None) -> tuple[OrbitSpec, Orbits]:
    if isinstance(orbits, CircularOrbits):
        alt, inc = float(orbits.altitude_km[i]), float(orbits.inclination_deg[i])
        raan, u = float(orbits.raan_deg[i]), float(orbits.arg_latitude_deg[i])
        spec = OrbitSpec(altitude_km=alt, inclination_deg=inc, raan_deg=raan,
                         arg_latitude_deg=u)
        return spec, CircularOrbits(alt, inc, raan, u, orbits.epoch, [name], j2=orbits.j2)
    if isinstance(orbits, TleOrbits) and tle_file is not None:
        return (OrbitSpec(tle_file=tle_file, tle_name=name),
                TleOrbits([orbits.satrecs[i]], [name]))
    raise ConfigError(f"node {name}: orbits of type {type(orbits).__name__} cannot be hosted")


def scenario_roster(sc: Scenario, settings: NodeSettings, only: str | None = None
                    ) -> list[HostedNode]:
    """The nodes of ``sc`` selected by ``only``, each with its own state directory
    (``state_dir/<node>``) and, with ``node_keys``, its key file (``node_keys/<node>.key``).

    Raises :class:`ConfigError` for a pattern that selects nothing, a missing key file or a
    setting a node configuration refuses, and :class:`ScenarioError` for a bad scenario.
    """
    world = build_world(sc)
    picked = select_names(world.names, only)
    tle = sc.path(sc.constellation.tle_file) if sc.constellation.tle_file else None
    sched = sc.scheduler
    roster = []
    for i in picked:
        name = world.names[i]
        key = None
        if settings.node_keys is not None:
            key = settings.node_keys / f"{name}.key"
            if not key.is_file():
                raise ConfigError(f"--node-keys: no key for node {name} ({key} is missing)")
        spec, one = _row(world.orbits, i, name, tle)
        try:
            config = NodeConfig(
                node_id=name,
                profile=world.profiles[i].name,
                orbit=spec,
                data_dir=settings.state_dir / name,
                physics_step_s=settings.physics_step_s or sc.step_s,
                telemetry_period_s=settings.telemetry_period_s,
                state_period_s=settings.state_period_s,
                max_payload_bytes=settings.max_payload_bytes,
                overload_backlog_s=sched.overload_backlog_s,
                max_queue=sched.max_queue,
                command_key=_command_key(settings, name),
                node_key_file=key,
                ground_public_key_file=settings.ground_public_key_file,
                mission_year=sc.mission_year,
                seed=sc.seed * 1_000_003 + i,  # a stream of its own per node
                execute=settings.execute,
                lease_s=sched.lease_s,
                policy=settings.policy or sched.policy,
            )
        except ValidationError as exc:
            raise ConfigError(format_errors(exc, f"node {name}")) from None
        life = (schedule_of(world.lifetime, i, world.profiles[i])
                if world.lifetime is not None else None)
        roster.append(HostedNode(config, world.profiles[i], one, life))
    return roster
