"""The demo's constellation: which nodes fly where, and which ground stations serve them.

All nodes fly one orbital plane as a train (Suncatcher-style formation, but spaced a few
hundred km so the smaller optical terminals still link neighbours): a 550 km sun-synchronous
orbit whose ascending node is at local noon, so the plane faces the sun (small beta angle) and
every orbit has a long eclipse. The train's phase is chosen by search: a node is in contact
with a ground station when the demo starts, the first eclipse begins a few minutes in (so one
sees the train go from sunlight into shadow), and the ground network covers as much of the
run as possible. Eclipses and passes are then computed with :mod:`flightsw.physics` and
printed, so what the demo promises is what the physics says.

One node (the third) starts with its battery just above the depth-of-discharge floor: its
energy forecast through the coming eclipse is negative, so it defers work and the
constellation policy hands that work to its neighbours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from flightsw.exceptions import ConfigError
from flightsw.orbitdesc import OrbitSpec
from flightsw.physics import (
    CircularOrbits,
    Pass,
    Station,
    contact_windows,
    eclipse_intervals,
    in_contact,
    ltan_raan,
    sun_synchronous_inclination,
)
from flightsw.physics.sun import beta_angle_deg
from hardware_profiles import load_profile

__all__ = [
    "DEFAULT_STATIONS",
    "PROFILE_CYCLE",
    "DemoPlan",
    "NodePlan",
    "plan_demo",
]

#: Hardware of node 1, 2, ... (cycled for more nodes): big and small, with and without ISL.
PROFILE_CYCLE = (
    "starcloud-h100",
    "jetson-agx-orin",
    "pic64-hpsc",
    "jetson-orin-nano-super",
    "cubesat-6u",
    "jetson-agx-orin",
)

#: Index of the node that starts with a low battery (when there are at least three nodes).
LOW_BATTERY_INDEX = 2
#: Its initial state of charge above its depth-of-discharge floor.
LOW_BATTERY_ABOVE_FLOOR = 0.06

#: A polar-heavy commercial-style ground network (approximate public site coordinates of
#: KSAT, SSC, SANSA and NOAA stations); polar sites see a sun-synchronous orbit most orbits.
DEFAULT_STATIONS = (
    Station("Svalbard", 78.23, 15.41),
    Station("Troll", -72.01, 2.54),
    Station("Inuvik", 68.32, -133.55),
    Station("Fairbanks", 64.86, -147.85),
    Station("Kiruna", 67.88, 21.07),
    Station("Punta Arenas", -52.94, -70.86),
    Station("Hartebeesthoek", -25.89, 27.69),
    Station("Singapore", 1.40, 103.83),
    Station("South Point", 19.01, -155.66),
    Station("Awarua", -46.53, 168.38),
)

_ALTITUDE_KM = 550.0
_LTAN_HOURS = 12.0  # ascending node at local noon: the orbit plane faces the sun
_SPACING_DEG = 3.0  # along-track spacing: 363 km at 550 km, inside every ISL range but 2
_MIN_ELEVATION_DEG = 10.0
_PHASE_STEP_DEG = 5.0
_SAMPLE_S = 30.0
_WANT_ECLIPSE_AFTER_S = (4 * 60.0, 15 * 60.0)  # first eclipse this long after the start


@dataclass(frozen=True, slots=True)
class NodePlan:
    """One node of the demo: its id, hardware, orbit and what it will meet."""

    node_id: str
    profile: str
    orbit: OrbitSpec
    initial_soc: float | None
    eclipses: list[tuple[float, float]]
    passes: list[tuple[str, Pass]]
    isl_range_km: float
    dod_floor: float
    note: str = ""


@dataclass(frozen=True, slots=True)
class DemoPlan:
    """The constellation of one demo run (mission times are POSIX seconds)."""

    epoch: float
    duration_s: float
    altitude_km: float
    inclination_deg: float
    raan_deg: float
    beta_deg: float
    spacing_deg: float
    stations: list[Station]
    nodes: list[NodePlan]
    coverage: float  # fraction of the run with at least one node in contact
    min_elevation_deg: float = _MIN_ELEVATION_DEG
    notes: list[str] = field(default_factory=list)

    @property
    def period_s(self) -> float:
        return float(self.orbits().period_s[0])

    def orbits(self) -> CircularOrbits:
        """All nodes' orbits, one row per node, in node order."""
        return CircularOrbits(
            self.altitude_km,
            self.inclination_deg,
            self.raan_deg,
            [n.orbit.arg_latitude_deg for n in self.nodes],
            epoch=self.epoch,
            names=[n.node_id for n in self.nodes],
        )

    def spacing_km(self) -> float:
        r = 6378.137 + self.altitude_km
        return 2.0 * r * math.sin(math.radians(self.spacing_deg) / 2.0)

    def headline(self) -> list[str]:
        """Two short lines for the live view's header."""
        return [
            f"{self.altitude_km:.0f} km SSO, noon plane, beta {self.beta_deg:+.1f} deg, "
            f"period {self.period_s / 60:.1f} min; train {self.spacing_km():.0f} km apart",
            f"{len(self.stations)} ground stations, {self.min_elevation_deg:.0f} deg mask: "
            f"contact {self.coverage:.0%} of the run; uplink only in contact",
        ]

    def describe(self) -> list[str]:
        """Plain lines saying what was chosen and what it will meet."""
        mins = self.duration_s / 60.0
        lines = [
            f"orbit: {self.altitude_km:.0f} km sun-synchronous, inclination "
            f"{self.inclination_deg:.1f} deg, ascending node at local noon, beta "
            f"{self.beta_deg:+.1f} deg, period {self.period_s / 60:.1f} min; "
            f"{len(self.nodes)} node(s) in a train {self.spacing_km():.0f} km apart",
            f"ground network: {len(self.stations)} stations ("
            + ", ".join(s.name for s in self.stations)
            + f"), {self.min_elevation_deg:.0f} deg mask; contact {self.coverage:.0%} "
            f"of the {mins:.0f} mission minutes",
        ]
        for n in self.nodes:
            ecl = ", ".join(
                f"{(a - self.epoch) / 60:.0f}-{(b - self.epoch) / 60:.0f}" for a, b in n.eclipses
            )
            if n.passes:
                name, p = n.passes[0]
                passes = (
                    f"{len(n.passes)} pass(es), first {name} "
                    f"{(p.aos - self.epoch) / 60:.0f}-{(p.los - self.epoch) / 60:.0f}"
                )
            else:
                passes = "no pass"
            isl = f"ISL {n.isl_range_km:.0f} km" if n.isl_range_km > 0 else "no ISL"
            lines.append(
                f"  {n.node_id:<5} {n.profile:<23} {isl:<13} eclipse min {ecl or 'none'}; "
                f"{passes}" + (f"; {n.note}" if n.note else "")
            )
        lines.extend(self.notes)
        return lines


def _phase_scores(
    epoch: float,
    duration_s: float,
    n_nodes: int,
    inclination: float,
    raan: float,
    stations: list[Station],
) -> list[tuple[tuple[float, ...], float, float]]:
    """For every candidate phase: (sort key, phase deg, coverage)."""
    phases = np.arange(0.0, 360.0, _PHASE_STEP_DEG)
    offsets = _SPACING_DEG * np.arange(n_nodes)
    u = (phases[:, None] - offsets[None, :]).reshape(-1)
    orbits = CircularOrbits(_ALTITUDE_KM, inclination, raan, u, epoch=epoch)
    times = epoch + np.arange(0.0, duration_s + _SAMPLE_S / 2, _SAMPLE_S)
    covered = np.zeros((times.shape[0], phases.shape[0]), dtype=bool)
    for k, t in enumerate(times.tolist()):
        seen = in_contact(orbits.positions(t), t, stations, _MIN_ELEVATION_DEG).any(axis=1)
        covered[k] = seen.reshape(phases.shape[0], n_nodes).any(axis=1)
    eclipses = eclipse_intervals(orbits, epoch, epoch + duration_s, step_s=_SAMPLE_S, tol_s=5.0)
    lo, hi = _WANT_ECLIPSE_AFTER_S
    out: list[tuple[tuple[float, ...], float, float]] = []
    for j, phase in enumerate(phases.tolist()):
        rows = eclipses[j * n_nodes : (j + 1) * n_nodes]
        starts = [a - epoch for r in rows for a, _ in r]
        first = min(starts) if starts else math.inf
        miss = 0.0 if lo <= first <= hi else min(abs(first - lo), abs(first - hi)) / 60.0
        coverage = float(covered[:, j].mean())
        key = (float(not starts), float(not covered[0, j]), miss, -coverage)
        out.append((key, float(phase), coverage))
    return out


def plan_demo(
    epoch: float,
    n_nodes: int,
    duration_s: float,
    *,
    stations: list[Station] | None = None,
    profiles: list[str] | None = None,
) -> DemoPlan:
    """Choose the train's phase for a run of ``duration_s`` mission seconds from ``epoch``."""
    if not 1 <= n_nodes <= 60:
        raise ConfigError(f"--nodes: must be between 1 and 60, got {n_nodes}")
    if not duration_s > 0:
        raise ConfigError(f"duration: must be > 0 mission seconds, got {duration_s!r}")
    stations = list(stations or DEFAULT_STATIONS)
    names = list(profiles or PROFILE_CYCLE)
    chosen = [names[i % len(names)] for i in range(n_nodes)]
    inclination = float(sun_synchronous_inclination(_ALTITUDE_KM))
    raan = ltan_raan(epoch, _LTAN_HOURS)
    best = min(_phase_scores(epoch, duration_s, n_nodes, inclination, raan, stations))
    _, phase, coverage = best
    nodes_u = [(phase - _SPACING_DEG * i) % 360.0 for i in range(n_nodes)]
    ids = [f"sat{i + 1}" for i in range(n_nodes)]
    orbits = CircularOrbits(_ALTITUDE_KM, inclination, raan, nodes_u, epoch=epoch, names=ids)
    end = epoch + duration_s
    eclipses = eclipse_intervals(orbits, epoch, end)
    passes: list[list[tuple[str, Pass]]] = [[] for _ in range(n_nodes)]
    for st in stations:
        for i, sat_passes in enumerate(contact_windows(orbits, st, epoch, end, _MIN_ELEVATION_DEG)):
            passes[i].extend((st.name, p) for p in sat_passes)
    beta = float(beta_angle_deg(orbits, epoch)[0])
    nodes: list[NodePlan] = []
    notes: list[str] = []
    for i in range(n_nodes):
        prof = load_profile(chosen[i])
        soc = None
        note = ""
        if n_nodes >= 3 and i == LOW_BATTERY_INDEX:
            soc = prof.bus.dod_floor + LOW_BATTERY_ABOVE_FLOOR
            note = (
                f"starts at {soc:.0%} charge ({LOW_BATTERY_ABOVE_FLOOR:.0%} above its floor): "
                "its eclipse forecast is short of energy"
            )
        nodes.append(
            NodePlan(
                node_id=ids[i],
                profile=chosen[i],
                orbit=OrbitSpec(
                    altitude_km=_ALTITUDE_KM,
                    inclination_deg=inclination,
                    raan_deg=raan,
                    arg_latitude_deg=nodes_u[i],
                ),
                initial_soc=soc,
                eclipses=eclipses[i],
                passes=sorted(passes[i], key=lambda np_: np_[1].aos),
                isl_range_km=prof.links.isl_max_range_km,
                dod_floor=prof.bus.dod_floor,
                note=note,
            )
        )
    if not any(n.eclipses for n in nodes):
        notes.append("note: no node meets an eclipse in so short a run")
    if not any(n.passes for n in nodes):
        notes.append("note: no node meets a ground contact in so short a run")
    return DemoPlan(
        epoch=epoch,
        duration_s=duration_s,
        altitude_km=_ALTITUDE_KM,
        inclination_deg=inclination,
        raan_deg=raan,
        beta_deg=beta,
        spacing_deg=_SPACING_DEG,
        stations=stations,
        nodes=nodes,
        coverage=coverage,
        notes=notes,
    )
