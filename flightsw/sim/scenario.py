"""The simulation scenario: a typed TOML schema (see ``docs/scenarios.md``).

A scenario names everything a run needs: the constellation (Walker parameters, a TLE file
or an explicit list of circular orbits), the hardware profile of each node, the ground
stations, the job classes and their arrival processes, bursts, faults, the mission
duration and the physics step. Every model forbids unknown keys, and every error is a
:class:`ScenarioError` whose text names the file and the field (``jobs[1].deadline_s``).

Units are in the field names: ``_s`` seconds, ``_km``, ``_deg``, ``_m`` metres, ``_bps``
bits per second; ``bytes``, ``flops`` are counts. Times inside the mission (bursts, faults)
are seconds after ``start``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from flightsw.exceptions import ConfigError, ScenarioError
from flightsw.timeutil import parse_iso
from flightsw.tomlfile import read_toml

__all__ = [
    "Burst",
    "Constellation",
    "Fault",
    "GroundOptical",
    "GroundStationSpec",
    "JobClass",
    "ProfileMix",
    "Profiles",
    "SatelliteSpec",
    "Scenario",
    "SchedulerSpec",
    "WalkerSpec",
    "format_errors",
    "load_scenario",
    "parse_scenario",
]

Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
Inclination = float | Literal["sso"]
MAX_STAGES = 256  # stages of a pipeline class (each on its own satellite)
Raan = float | Literal["dawn-dusk"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WalkerSpec(_Model):
    """Walker delta i:T/P/F. ``inclination_deg = "sso"`` picks the sun-synchronous
    inclination for the altitude; ``raan0_deg = "dawn-dusk"`` the dawn-dusk plane at
    ``start``."""

    total: Annotated[int, Field(ge=1, le=100_000)]
    planes: Annotated[int, Field(ge=1)]
    phasing: Annotated[int, Field(ge=0)] = 0
    altitude_km: Annotated[float, Field(gt=100, lt=100_000)]
    inclination_deg: Inclination
    raan0_deg: Raan = 0.0

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.total % self.planes:
            raise ValueError(f"total ({self.total}) must be a multiple of planes ({self.planes})")
        if self.phasing >= self.planes:
            raise ValueError(f"phasing ({self.phasing}) must be below planes ({self.planes})")
        return self


class SatelliteSpec(_Model):
    """One circular orbit of an explicit list. Offsets are added to the angles (handy for
    a close cluster around a reference orbit given as ``"sso"`` / ``"dawn-dusk"``)."""

    name: Name
    altitude_km: Annotated[float, Field(gt=100, lt=100_000)]
    inclination_deg: Inclination
    raan_deg: Raan = 0.0
    arg_latitude_deg: float = 0.0
    inclination_offset_deg: float = 0.0
    raan_offset_deg: float = 0.0


class Constellation(_Model):
    """Exactly one of ``walker``, ``tle_file`` or ``satellites``."""

    walker: WalkerSpec | None = None
    tle_file: Path | None = None
    satellites: list[SatelliteSpec] | None = Field(default=None, min_length=1)
    j2: bool = True
    isl_terminals: Annotated[int, Field(ge=1, le=64)] = 4

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        given = [
            name
            for name, value in (
                ("walker", self.walker),
                ("tle_file", self.tle_file),
                ("satellites", self.satellites),
            )
            if value is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of walker, tle_file or satellites"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.satellites is not None:
            names = [s.name for s in self.satellites]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"satellites: names must be unique; repeated: {dupes}")
        return self


class ProfileMix(_Model):
    profile: str = Field(min_length=1)
    fraction: Annotated[float, Field(gt=0, le=1)]


class Profiles(_Model):
    """Hardware profile per node: ``default``, then ``mix`` (deterministic interleave by
    fraction), then ``planes`` (Walker plane index -> profile), then ``nodes`` (name ->
    profile); later rules win. Profiles are packaged names or paths to TOML files."""

    default: str = Field(min_length=1)
    mix: list[ProfileMix] = Field(default_factory=list)
    planes: dict[int, str] = Field(default_factory=dict)
    nodes: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _fractions(self) -> Self:
        if self.mix:
            total = sum(m.fraction for m in self.mix)
            if abs(total - 1.0) > 1e-6:
                raise ValueError(f"mix: fractions must add up to 1 (got {total:g})")
        return self


@dataclass(frozen=True, slots=True)
class GroundOptical:
    """An optical station's link: its own rates (every satellite is taken to carry a
    matching optical terminal) and the share of time its sky is clear."""

    uplink_rate_bps: float
    downlink_rate_bps: float
    availability: float  # fraction of weather cells clear, drawn per seed
    weather_cell_s: float  # the weather holds for a cell of this length


WEATHER_CELL_S = 3600.0  # an optical station's weather holds this long unless told


class GroundStationSpec(_Model):
    """A ground station. ``antennas``: satellites it uplinks to at once, one per antenna
    (:mod:`flightsw.protocol.antennas`). ``kind = "optical"``: a laser station with its own
    ``uplink_rate_bps`` and ``downlink_rate_bps`` (used instead of the satellites' radio
    rates for links through it) that is usable only while its sky is clear: a share
    ``availability`` of the ``weather_cell_s`` cells, drawn per seed
    (:mod:`flightsw.sim.weather`)."""

    name: Name
    lat_deg: Annotated[float, Field(ge=-90, le=90)]
    lon_deg: Annotated[float, Field(ge=-180, le=360)]
    alt_m: Annotated[float, Field(ge=-500, le=100_000)] = 0.0
    min_elevation_deg: Annotated[float, Field(ge=0, lt=90)] = 10.0
    antennas: Annotated[int, Field(ge=1, le=10_000, strict=True)] = 1
    kind: Literal["rf", "optical"] = "rf"
    uplink_rate_bps: Positive | None = None
    downlink_rate_bps: Positive | None = None
    availability: Annotated[float, Field(ge=0, le=1)] | None = None
    weather_cell_s: Positive | None = None  # optical only; 3600 s when not given

    @model_validator(mode="after")
    def _kind_fields(self) -> Self:
        optical = ("uplink_rate_bps", "downlink_rate_bps", "availability")
        if self.kind == "optical":
            missing = [f for f in optical if getattr(self, f) is None]
            if missing:
                raise ValueError(f"{', '.join(missing)}: required for kind 'optical'")
        else:
            # a field left unset stays None, so a scenario read back from its own dump (a
            # sweep's overrides) passes as the file did
            given = [f for f in (*optical, "weather_cell_s") if getattr(self, f) is not None]
            if given:
                raise ValueError(f"{', '.join(given)}: only for kind 'optical' (a radio "
                                 "station uses each satellite's link rates)")
        for f in ("uplink_rate_bps", "downlink_rate_bps", "weather_cell_s"):
            v = getattr(self, f)
            if v is not None and not math.isfinite(v):
                raise ValueError(f"{f}: must be finite")
        return self

    @property
    def optical(self) -> GroundOptical | None:
        if self.kind != "optical":
            return None
        assert self.uplink_rate_bps is not None
        assert self.downlink_rate_bps is not None
        assert self.availability is not None
        return GroundOptical(self.uplink_rate_bps, self.downlink_rate_bps, self.availability,
                             self.weather_cell_s or WEATHER_CELL_S)


class SchedulerSpec(_Model):
    """Onboard and constellation scheduling parameters (shared by every policy)."""

    policy: str = "forecast"
    migration_period_s: Positive = 10.0
    reconsider_s: Positive = 300.0
    lease_s: Positive = 60.0
    overload_backlog_s: Positive = 1800.0
    max_queue: Annotated[int, Field(gt=0)] = 10_000
    max_migrations: Annotated[int, Field(ge=0)] = 2
    min_gain_s: NonNegative = 5.0
    min_gain_frac: NonNegative = 0.2
    consider_wait_s: NonNegative = 30.0
    max_per_round: Annotated[int, Field(ge=1)] = 8


class JobClass(_Model):
    """A class of inference jobs: its cost (an ONNX model file, or synthetic figures), its
    size, its arrival process and what it is worth."""

    name: Name
    model: Path | None = None
    flops_per_item: NonNegative | None = None
    bytes_per_item: NonNegative | None = None
    weight_bytes: NonNegative | None = None
    input_bytes_per_item: NonNegative | None = None
    output_bytes_per_item: NonNegative | None = None
    items: Annotated[int, Field(ge=1)] | tuple[Annotated[int, Field(ge=1)], int] = 1
    origin: Literal["onboard", "ground"] = "onboard"
    rate_per_node_per_hour: NonNegative | None = None
    rate_per_hour: NonNegative | None = None
    times_s: list[NonNegative] | None = None
    nodes: list[str] = Field(default_factory=list)
    deadline_s: Positive | None = None
    value: NonNegative = 1.0
    priority: Annotated[int, Field(ge=0, le=9)] = 5
    preloaded: Annotated[float, Field(ge=0, le=1)] = 1.0
    # pipeline jobs (flightsw.sim.pipeline): split into this many stages, each on its own
    # member of a chain of ISL-linked nodes; what crosses each cut per item; each stage's
    # share of the work (default equal)
    stages: Annotated[int, Field(strict=True, ge=1, le=MAX_STAGES)] = 1
    activation_bytes_per_item: NonNegative | None = None
    stage_fractions: list[Annotated[float, Field(gt=0, le=1)]] | None = None
    # GPipe-style streaming: each stage runs as this many micro-batches of items / M, each
    # passed on to the next member as soon as it is done (1: the whole batch at once)
    micro_batches: Annotated[int, Field(strict=True, ge=1)] = 1
    # data-parallel training jobs (flightsw.sim.training): a job is a run of train_steps
    # steps on `members` ISL-linked satellites, each computing the class's work for `items`
    # samples per step, then an all-reduce of gradient_bytes; a checkpoint every
    # checkpoint_every steps; up to `spares` replacements for members lost
    train_steps: Annotated[int, Field(strict=True, ge=0)] = 0
    members: Annotated[int, Field(strict=True, ge=1, le=MAX_STAGES)] | None = None
    gradient_bytes: NonNegative | None = None
    allreduce: Literal["ring", "tree"] | None = None
    checkpoint_every: Annotated[int, Field(strict=True, ge=1)] | None = None
    spares: Annotated[int, Field(strict=True, ge=0)] | None = None
    step_deadline_s: Positive | None = None  # each step copy's deadline after its launch

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        self._pipeline_fields()
        self._training_fields()
        given = [
            f for f in ("rate_per_node_per_hour", "rate_per_hour", "times_s")
            if getattr(self, f) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of rate_per_node_per_hour, rate_per_hour or times_s"
            )
        if self.times_s is not None and self.origin == "onboard":
            if not self.nodes:
                raise ValueError("nodes: onboard arrivals at times_s need the node(s)")
            if len(self.nodes) not in (1, len(self.times_s)):
                raise ValueError(
                    f"nodes: give one node or one per time ({len(self.times_s)}), "
                    f"got {len(self.nodes)}"
                )
        elif self.nodes:
            raise ValueError("nodes: only for onboard arrivals at times_s")
        if self.model is None and self.flops_per_item is None:
            raise ValueError("give a model file or flops_per_item (synthetic cost)")
        if isinstance(self.items, tuple) and self.items[1] < self.items[0]:
            raise ValueError(f"items: range {list(self.items)} has max below min")
        return self

    def _pipeline_fields(self) -> None:
        if self.stages == 1:
            for f in ("activation_bytes_per_item", "stage_fractions"):
                if getattr(self, f) is not None:
                    raise ValueError(f"{f}: only for a pipeline class (stages > 1)")
            if self.micro_batches > 1:
                raise ValueError(f"micro_batches: {self.micro_batches} micro-batches are "
                                 "only for a pipeline class (stages > 1)")
            return
        low = self.items_range[0]
        if self.micro_batches > low:
            raise ValueError(f"micro_batches: {self.micro_batches} is more than the class's "
                             f"items ({low}): each micro-batch needs at least one item")
        fr = self.stage_fractions
        if fr is not None:
            if len(fr) != self.stages:
                raise ValueError(f"stage_fractions: give one per stage ({self.stages}), "
                                 f"got {len(fr)}")
            if abs(sum(fr) - 1.0) > 1e-6:
                raise ValueError(f"stage_fractions: must add up to 1 (got {sum(fr):g})")

    def _training_fields(self) -> None:
        if self.train_steps == 0:
            for f in ("members", "gradient_bytes", "allreduce", "checkpoint_every", "spares",
                      "step_deadline_s"):
                if getattr(self, f) is not None:
                    raise ValueError(f"{f}: only for a training class (train_steps > 0)")
            return
        if self.stages > 1:
            raise ValueError("train_steps: a training class cannot also be a pipeline "
                             "(stages > 1)")
        if self.deadline_s is not None:
            raise ValueError("deadline_s: not for a training class (a run has no deadline)")
        ce = self.checkpoint_every
        if ce is not None and ce > self.train_steps:
            raise ValueError(f"checkpoint_every: {ce} is more than train_steps "
                             f"({self.train_steps})")

    @property
    def items_range(self) -> tuple[int, int]:
        return self.items if isinstance(self.items, tuple) else (self.items, self.items)


class Burst(_Model):
    """Arrival rates times ``multiplier`` during [start_s, start_s + duration_s)."""

    start_s: NonNegative
    duration_s: Positive
    multiplier: Positive
    classes: list[str] = Field(default_factory=list)  # empty: every class
    nodes: list[str] = Field(default_factory=list)  # empty: every node (onboard arrivals)


class Fault(_Model):
    """``crash``: ``node`` dies at ``at_s`` (volatile state lost), back empty at
    ``restart_s`` if given. ``isl_outage``: the links of ``node`` (or only the one to
    ``peer``) are down over [start_s, end_s). ``ground_outage``: ``station`` is down."""

    kind: Literal["crash", "isl_outage", "ground_outage"]
    node: str | None = None
    peer: str | None = None
    station: str | None = None
    at_s: NonNegative | None = None
    restart_s: NonNegative | None = None
    start_s: NonNegative | None = None
    end_s: NonNegative | None = None

    @model_validator(mode="after")
    def _fields_for_kind(self) -> Self:
        need: dict[str, tuple[str, ...]] = {
            "crash": ("node", "at_s"),
            "isl_outage": ("node", "start_s", "end_s"),
            "ground_outage": ("station", "start_s", "end_s"),
        }
        missing = [f for f in need[self.kind] if getattr(self, f) is None]
        if missing:
            raise ValueError(f"{', '.join(missing)}: required for kind {self.kind!r}")
        if self.kind == "crash" and self.restart_s is not None:
            assert self.at_s is not None
            if self.restart_s <= self.at_s:
                raise ValueError(f"restart_s ({self.restart_s:g}) must be after at_s")
        if self.start_s is not None and self.end_s is not None and self.end_s <= self.start_s:
            raise ValueError(f"end_s ({self.end_s:g}) must be after start_s ({self.start_s:g})")
        return self


class Scenario(_Model):
    """A whole simulation scenario (see the module docstring)."""

    name: str = "scenario"
    description: str = ""
    seed: int = 0
    start: str = "2025-06-21T00:00:00Z"
    duration_hours: Positive | None = None
    duration_orbits: Positive | None = None
    step_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    telemetry_period_s: NonNegative = 60.0
    # years in orbit: every profile's bus (battery, array, radiator) as aged by then, by the
    # profile's [lifetime] figures (flightsw.node.aging); emulated nodes: --mission-year
    mission_year: Annotated[float, Field(ge=0, le=30)] = 0.0
    # draw accelerator losses and debris manoeuvres from each profile's [lifetime]
    # (flightsw.sim.lifetime_events): lost nodes stop for good, manoeuvres pause compute
    lifetime_events: bool = False
    constellation: Constellation
    profiles: Profiles
    ground_stations: list[GroundStationSpec] = Field(default_factory=list)
    scheduler: SchedulerSpec = Field(default_factory=SchedulerSpec)
    jobs: list[JobClass] = Field(min_length=1)
    bursts: list[Burst] = Field(default_factory=list)
    faults: list[Fault] = Field(default_factory=list)
    base_dir: Path = Field(default=Path("."), exclude=True)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.duration_hours is None) == (self.duration_orbits is None):
            raise ValueError("give exactly one of duration_hours or duration_orbits")
        try:
            parse_iso(self.start, field="start")
        except ConfigError as exc:
            raise ValueError(f"{exc} (use e.g. 2025-06-21T00:00:00Z)") from None
        names = [j.name for j in self.jobs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"jobs: class names must be unique; repeated: {dupes}")
        st = [g.name for g in self.ground_stations]
        if len(set(st)) != len(st):
            raise ValueError("ground_stations: names must be unique")
        return self

    @property
    def start_t(self) -> float:
        return parse_iso(self.start, field="start")

    def path(self, p: Path) -> Path:
        """A path from the scenario, relative to the scenario file's directory."""
        return p if p.is_absolute() else self.base_dir / p


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def format_errors(exc: ValidationError, source: str) -> str:
    """One line per error: ``source: dotted.field: message``."""
    lines = []
    for err in exc.errors(include_url=False):
        # union members add their type to the location ("inclination_deg.float"): drop it
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and _is_type_tag(p)))
        where = _dotted(loc)
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "field required"
        elif err["type"] == "extra_forbidden":
            msg = "unknown field (not part of the scenario schema)"
        lines.append(f"{source}: {where}: {msg}" if where else f"{source}: {msg}")
    return "\n".join(dict.fromkeys(lines))


def _is_type_tag(part: str) -> bool:
    """pydantic adds the union member's type to an error location; it is not a field."""
    return part in {"float", "int", "str", "bool", "constrained-int"} or any(
        c in part for c in "[('"
    )


def parse_scenario(
    data: dict[str, Any], *, source: str = "<scenario>", base_dir: Path | None = None
) -> Scenario:
    """Validate parsed TOML; :class:`ScenarioError` names every bad field."""
    table = dict(data)
    if base_dir is not None:
        table["base_dir"] = base_dir
    try:
        sc = Scenario.model_validate(table)
    except ValidationError as exc:
        raise ScenarioError(format_errors(exc, source)) from exc
    _check_finite(sc, source)
    return sc


def _check_finite(sc: Scenario, source: str) -> None:
    for i, j in enumerate(sc.jobs):
        for f in ("flops_per_item", "bytes_per_item", "weight_bytes", "deadline_s", "value",
                  "activation_bytes_per_item", "gradient_bytes", "step_deadline_s"):
            v = getattr(j, f)
            if v is not None and not math.isfinite(v):
                raise ScenarioError(f"{source}: jobs[{i}].{f}: must be finite")


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario TOML file (relative paths inside it are taken from the
    file's directory; ``name`` defaults to the file stem)."""
    p = Path(path)
    data = read_toml(p, "scenario", ScenarioError)
    data.setdefault("name", p.stem)
    if "base_dir" in data:
        raise ScenarioError(f"{p.name}: base_dir: unknown field (not part of the scenario schema)")
    return parse_scenario(data, source=p.name, base_dir=p.resolve().parent)
