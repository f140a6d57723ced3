"""What a scenario resolves to: orbits, a profile per node, stations, job class costs.

:func:`build_world` turns a validated :class:`~flightsw.sim.scenario.Scenario` into plain
arrays and small records the engine uses; every cross-reference (a node named in a fault, a
class named in a burst, a plane index, a model file) is checked here and a bad one raises
:class:`ScenarioError` naming the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx

from flightsw.exceptions import FlightSwError, ScenarioError
from flightsw.models.cost import analyse
from flightsw.models.spec import TensorSpec, graph_outputs
from flightsw.models.store import sha256_file
from flightsw.node.aging import aged_profile
from flightsw.physics.ground import Station
from flightsw.physics.orbit import (
    CircularOrbits,
    Orbits,
    TleOrbits,
    dawn_dusk_raan,
    sun_synchronous_inclination,
    walker,
)
from flightsw.sim.lifetime_events import LifetimeDraw, draw_lifetime_events
from flightsw.sim.scenario import GroundOptical, Scenario, SchedulerSpec
from hardware_profiles import HardwareProfile, load_profile

__all__ = ["ClassSpec", "FaultSpec", "StationSpec", "World", "build_world"]

F = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ClassSpec:
    """A job class with its cost resolved (from the model file or the synthetic figures)."""

    index: int
    name: str
    flops_per_item: float
    bytes_per_item: float
    weight_bytes: float
    input_bytes_per_item: float
    output_bytes_per_item: float
    model_key: str  # sha256 of the model file, or "synthetic:<class>"
    model_path: Path | None
    items: tuple[int, int]
    origin: str  # "onboard" | "ground"
    rate_per_node_per_hour: float | None
    rate_per_hour: float | None
    times: tuple[float, ...] | None  # explicit arrival times (absolute), or None
    nodes: tuple[int, ...]  # their nodes (onboard), one or one per time
    deadline_s: float | None
    value: float
    priority: int
    preloaded: float
    stages: int = 1  # > 1: a pipeline job, one stage per member of a chain
    activation_bytes_per_item: float = 0.0  # what crosses each cut between stages, per item
    stage_fractions: tuple[float, ...] = (1.0,)  # each stage's share of the work
    micro_batches: int = 1  # > 1: each stage streams the job's items in this many parts
    train_steps: int = 0  # > 0: a data-parallel training run (flightsw.sim.training)
    members: int = 1  # satellites of a training run
    gradient_bytes: float = 0.0  # what each member all-reduces per step
    allreduce: str = "ring"  # "ring" | "tree"
    checkpoint_every: int = 0  # steps between checkpoints (0: none, a loss restarts at 0)
    spares: int = 0  # replacements a training run may draw for members lost
    step_deadline_s: float | None = None  # a step copy's deadline after its launch

    def total_rate_per_hour(self, nodes: int) -> float:
        if self.rate_per_hour is not None:
            return self.rate_per_hour
        if self.rate_per_node_per_hour is None:
            return 0.0  # explicit arrival times
        return self.rate_per_node_per_hour * nodes

    def mean_items(self) -> float:
        return 0.5 * (self.items[0] + self.items[1])


@dataclass(frozen=True, slots=True)
class StationSpec:
    station: Station
    min_elevation_deg: float
    antennas: int = 1  # satellites it serves at once (flightsw.protocol.antennas)
    optical: GroundOptical | None = None  # an optical station's rates and weather


@dataclass(frozen=True, slots=True)
class FaultSpec:
    kind: str
    node: int | None
    peer: int | None
    station: int | None
    start: float  # absolute mission time (crash: the crash time)
    end: float | None  # outage end, or crash restart time (None: never)


@dataclass(frozen=True, slots=True)
class BurstSpec:
    start: float
    end: float
    multiplier: float
    classes: frozenset[int]  # empty: all
    nodes: frozenset[int]  # empty: all


@dataclass(frozen=True)
class World:
    """Everything a run needs, resolved from a scenario."""

    scenario: Scenario
    t0: float
    t_end: float
    names: list[str]
    orbits: Orbits
    profiles: list[HardwareProfile]  # one per node (shared objects)
    stations: list[StationSpec]
    classes: list[ClassSpec]
    faults: list[FaultSpec]
    bursts: list[BurstSpec]
    scheduler: SchedulerSpec
    plane_of: list[int | None]
    lifetime: LifetimeDraw | None = None  # drawn accelerator losses and manoeuvres

    @property
    def n(self) -> int:
        return len(self.names)

    @property
    def mission_s(self) -> float:
        return self.t_end - self.t0

    def index_of(self, name: str, field: str) -> int:
        return _node_index(self.names, {n: i for i, n in enumerate(self.names)}, name, field)


def _node_index(names: list[str], index: dict[str, int], name: str, field: str) -> int:
    try:
        return index[name]
    except KeyError:
        shown = ", ".join(names[:4]) + (" ..." if len(names) > 4 else "")
        raise ScenarioError(
            f"{field}: {name!r} is not a satellite of this scenario (have {shown})"
        ) from None


def _inclination(value: float | str, altitude_km: float) -> float:
    if value == "sso":
        return float(sun_synchronous_inclination(altitude_km))
    assert isinstance(value, float | int)
    return float(value)


def _raan(value: float | str, t0: float) -> float:
    if value == "dawn-dusk":
        return dawn_dusk_raan(t0)
    assert isinstance(value, float | int)
    return float(value)


def _orbits(sc: Scenario, t0: float) -> tuple[Orbits, list[int | None]]:
    c = sc.constellation
    src = sc.name
    try:
        if c.walker is not None:
            w = c.walker
            orb = walker(
                w.total,
                w.planes,
                w.phasing,
                w.altitude_km,
                _inclination(w.inclination_deg, w.altitude_km),
                t0,
                _raan(w.raan0_deg, t0),
                j2=c.j2,
            )
            per = w.total // w.planes
            return orb, [i // per for i in range(w.total)]
        if c.tle_file is not None:
            tle = TleOrbits.from_file(sc.path(c.tle_file))
            return tle, [None] * len(tle)
        sats = c.satellites
        assert sats is not None
        alt = [s.altitude_km for s in sats]
        inc = [_inclination(s.inclination_deg, s.altitude_km) + s.inclination_offset_deg
               for s in sats]
        raan = [_raan(s.raan_deg, t0) + s.raan_offset_deg for s in sats]
        u = [s.arg_latitude_deg for s in sats]
        orb = CircularOrbits(alt, inc, raan, u, t0, [s.name for s in sats], j2=c.j2)
        return orb, [None] * len(sats)
    except FlightSwError as exc:
        raise ScenarioError(f"{src}: constellation: {exc}") from exc


def _assign_profiles(
    sc: Scenario, names: list[str], plane_of: list[int | None]
) -> list[HardwareProfile]:
    cache: dict[str, HardwareProfile] = {}

    def get(ref: str, field: str) -> HardwareProfile:
        if ref not in cache:
            looks_like_path = ref.endswith(".toml") or "/" in ref
            try:
                cache[ref] = load_profile(sc.path(Path(ref)) if looks_like_path else ref)
            except FlightSwError as exc:
                raise ScenarioError(f"{sc.name}: {field}: {exc}") from exc
            if sc.mission_year > 0:  # the bus as aged by then: the node's --mission-year
                cache[ref] = aged_profile(cache[ref], sc.mission_year)
        return cache[ref]

    p = sc.profiles
    n = len(names)
    chosen = [get(p.default, "profiles.default")] * n
    if p.mix:
        profs = [get(m.profile, f"profiles.mix[{k}].profile") for k, m in enumerate(p.mix)]
        counts = [0] * len(p.mix)
        for i in range(n):
            # deterministic interleave: the profile furthest below its share so far
            k = max(range(len(p.mix)), key=lambda j: (p.mix[j].fraction * (i + 1) - counts[j], -j))
            counts[k] += 1
            chosen[i] = profs[k]
    for plane, ref in p.planes.items():
        if not any(pl == plane for pl in plane_of):
            raise ScenarioError(
                f"{sc.name}: profiles.planes: plane {plane} does not exist "
                "(planes come from constellation.walker)"
            )
        prof = get(ref, f"profiles.planes.{plane}")
        chosen = [prof if pl == plane else c for c, pl in zip(chosen, plane_of, strict=True)]
    index = {name: i for i, name in enumerate(names)}
    for node, ref in p.nodes.items():
        if node not in index:
            raise ScenarioError(f"{sc.name}: profiles.nodes: {node!r} is not a satellite")
        chosen[index[node]] = get(ref, f"profiles.nodes.{node}")
    return chosen


def _per_item_bytes(spec: TensorSpec) -> float:
    if not spec.is_tensor or spec.shape is None:
        return 0.0
    size = np.dtype(spec.dtype).itemsize
    for d in spec.shape[1:]:
        if d is None:
            return 0.0
        size *= d
    return float(size)


def _classes(sc: Scenario, t0: float, index: dict[str, int]) -> list[ClassSpec]:
    out = []
    for i, j in enumerate(sc.jobs):
        field = f"jobs[{i}]"
        flops, mem, weights = j.flops_per_item, j.bytes_per_item, j.weight_bytes
        inp, outp = j.input_bytes_per_item, j.output_bytes_per_item
        key = f"synthetic:{j.name}"
        path: Path | None = None
        if j.model is not None:
            path = sc.path(j.model)
            try:
                cost = analyse(path)
                key = sha256_file(path)
                graph = onnx.load(str(path), load_external_data=False)
            except (FlightSwError, OSError) as exc:
                raise ScenarioError(f"{sc.name}: {field}.model: {exc}") from exc
            flops = cost.flops_per_item if flops is None else flops
            mem = float(cost.bytes_per_item) if mem is None else mem
            weights = float(cost.weight_bytes) if weights is None else weights
            if inp is None:
                inp = sum(_per_item_bytes(s) for s in cost.inputs)
            if outp is None:
                outp = sum(_per_item_bytes(s) for s in graph_outputs(graph))
        if j.origin == "ground" and not sc.ground_stations:
            raise ScenarioError(
                f"{sc.name}: {field}.origin: 'ground' needs at least one ground station"
            )
        assert flops is not None
        out.append(
            ClassSpec(
                index=i,
                name=j.name,
                flops_per_item=float(flops),
                bytes_per_item=float(mem or 0.0),
                weight_bytes=float(weights or 0.0),
                input_bytes_per_item=float(inp or 0.0),
                output_bytes_per_item=float(outp or 0.0),
                model_key=key,
                model_path=path,
                items=j.items_range,
                origin=j.origin,
                rate_per_node_per_hour=j.rate_per_node_per_hour,
                rate_per_hour=j.rate_per_hour,
                times=None if j.times_s is None else tuple(t0 + x for x in j.times_s),
                nodes=tuple(
                    _node_index(list(index), index, nm, f"{sc.name}: {field}.nodes")
                    for nm in j.nodes
                ),
                deadline_s=j.deadline_s,
                value=j.value,
                priority=j.priority,
                preloaded=j.preloaded,
                stages=j.stages,
                activation_bytes_per_item=float(
                    (inp or 0.0) if j.activation_bytes_per_item is None
                    else j.activation_bytes_per_item),
                stage_fractions=tuple(j.stage_fractions or [1.0 / j.stages] * j.stages),
                micro_batches=j.micro_batches,
                train_steps=j.train_steps,
                members=j.members or 1,
                gradient_bytes=float(
                    (weights or 0.0) if j.gradient_bytes is None else j.gradient_bytes),
                allreduce=j.allreduce or "ring",
                checkpoint_every=j.checkpoint_every or 0,
                spares=j.spares or 0,
                step_deadline_s=j.step_deadline_s,
            )
        )
    return out


def build_world(sc: Scenario, *, policy: str | None = None, seed: int | None = None) -> World:
    """Resolve ``sc`` (``policy``/``seed`` override the scenario's)."""
    t0 = sc.start_t
    orbits, plane_of = _orbits(sc, t0)
    names = list(getattr(orbits, "names", [f"sat-{i:05d}" for i in range(len(orbits))]))
    if sc.duration_hours is not None:
        mission = sc.duration_hours * 3600.0
    else:
        assert sc.duration_orbits is not None
        mission = sc.duration_orbits * float(np.mean(orbits.period_s))
    profiles = _assign_profiles(sc, names, plane_of)
    stations = [
        StationSpec(Station(g.name, g.lat_deg, g.lon_deg, g.alt_m), g.min_elevation_deg,
                    g.antennas, g.optical)
        for g in sc.ground_stations
    ]
    index = {name: i for i, name in enumerate(names)}
    classes = _classes(sc, t0, index)
    for c in classes:
        if c.stages > len(names):
            raise ScenarioError(
                f"{sc.name}: jobs[{c.index}].stages: {c.stages} stages need as many "
                f"satellites; the constellation has {len(names)}"
            )
        if c.members > len(names):
            raise ScenarioError(
                f"{sc.name}: jobs[{c.index}].members: {c.members} members need as many "
                f"satellites; the constellation has {len(names)}"
            )
    scheduler = sc.scheduler
    if policy is not None:
        scheduler = scheduler.model_copy(update={"policy": policy})

    def node_of(name: str, field: str) -> int:
        return _node_index(names, index, name, f"{sc.name}: {field}")

    st_index = {s.station.name: k for k, s in enumerate(stations)}
    faults: list[FaultSpec] = []
    for k, f in enumerate(sc.faults):
        field = f"faults[{k}]"
        node = node_of(f.node, f"{field}.node") if f.node is not None else None
        peer = node_of(f.peer, f"{field}.peer") if f.peer is not None else None
        station = None
        if f.station is not None:
            if f.station not in st_index:
                raise ScenarioError(
                    f"{sc.name}: {field}.station: {f.station!r} is not a ground station "
                    f"(have {', '.join(st_index) or 'none'})"
                )
            station = st_index[f.station]
        if f.kind == "crash":
            assert f.at_s is not None
            start = t0 + f.at_s
            end = None if f.restart_s is None else t0 + f.restart_s
        else:
            assert f.start_s is not None
            assert f.end_s is not None
            start, end = t0 + f.start_s, t0 + f.end_s
        faults.append(FaultSpec(f.kind, node, peer, station, start, end))
    cls_index = {c.name: c.index for c in classes}
    bursts: list[BurstSpec] = []
    for k, b in enumerate(sc.bursts):
        field = f"bursts[{k}]"
        cl: set[int] = set()
        for name in b.classes:
            if name not in cls_index:
                raise ScenarioError(
                    f"{sc.name}: {field}.classes: {name!r} is not a job class "
                    f"(have {', '.join(cls_index)})"
                )
            cl.add(cls_index[name])
        nodes = {node_of(nm, f"{field}.nodes") for nm in b.nodes}
        if nodes and any(
            classes[c].origin == "ground" for c in (cl or set(range(len(classes))))
        ):
            raise ScenarioError(
                f"{sc.name}: {field}.nodes: only onboard classes arrive per node; "
                "name onboard classes in classes"
            )
        bursts.append(
            BurstSpec(t0 + b.start_s, t0 + b.start_s + b.duration_s, b.multiplier,
                      frozenset(cl), frozenset(nodes))
        )
    if not math.isfinite(t0 + mission):
        raise ScenarioError(f"{sc.name}: duration: not finite")
    lifetime = None
    if sc.lifetime_events:
        run_seed = sc.seed if seed is None else seed
        lifetime = draw_lifetime_events(profiles, t0, mission, sc.mission_year,
                                        np.random.default_rng([run_seed, 17]))
    return World(
        scenario=sc if seed is None else sc.model_copy(update={"seed": seed}),
        t0=t0,
        t_end=t0 + mission,
        names=names,
        orbits=orbits,
        profiles=profiles,
        stations=stations,
        classes=classes,
        faults=faults,
        bursts=bursts,
        scheduler=scheduler,
        plane_of=plane_of,
        lifetime=lifetime,
    )
