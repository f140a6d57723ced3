"""The sweep file: which scenarios, policies, seeds and field overrides make the grid.

A TOML file (``docs/sweeps.md``)::

    scenarios = ["../scenarios/quickstart.toml"]   # relative to the sweep file
    policies = ["forecast", "local"]               # default: each scenario's own
    seeds = [1, 2, 3]                              # or a count: seeds = 5 -> 0..4

    [overrides]                                    # dotted paths, each a list of values
    duration_hours = [0.5]
    scheduler.migration_period_s = [10.0, 30.0]

    [cluster]
    scheduler = "tcp://10.0.0.5:8786"              # Dask; default: local processes
    workers = 2                                    # local processes (default: CPU count)

    [summary]
    metrics = ["value_goodput", "latency_p95_s"]   # headline metrics (default below)

Every error is a :class:`~flightsw.exceptions.ConfigError` naming the file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from flightsw.constellation import POLICIES
from flightsw.exceptions import ConfigError
from flightsw.sim.scenario import format_errors
from flightsw.sweep.overrides import RESERVED, parse_path
from flightsw.tomlfile import read_toml

__all__ = ["DEFAULT_METRICS", "ClusterSpec", "SummarySpec", "SweepSpec", "load_sweep",
           "parse_sweep"]

#: Headline metrics of the summary when the sweep file names none.
DEFAULT_METRICS = (
    "value_goodput",
    "jobs_completed",
    "completion_rate",
    "deadline_miss_rate",
    "latency_p50_s",
    "latency_p95_s",
    "energy_per_job_j",
    "migrations_per_job",
    "battery_floor_violation_s",
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClusterSpec(_Model):
    """Where runs execute: a Dask scheduler address, else local processes."""

    scheduler: str | None = Field(default=None, pattern=r"^(tcp|tls|ws|wss|inproc|ucx)://\S+$")
    workers: Annotated[int, Field(ge=1, le=1024)] | None = None


class SummarySpec(_Model):
    metrics: list[str] = Field(default_factory=lambda: list(DEFAULT_METRICS), min_length=1)
    confidence: Annotated[float, Field(gt=0, lt=1)] = 0.95


class SweepSpec(_Model):
    """A whole sweep file (see the module docstring)."""

    name: str = "sweep"
    scenarios: list[Path] = Field(min_length=1)
    policies: list[str] | None = Field(default=None, min_length=1)
    seeds: list[int] | Annotated[int, Field(ge=1, le=100_000)]
    overrides: dict[str, list[Any]] = Field(default_factory=dict)
    cluster: ClusterSpec = Field(default_factory=ClusterSpec)
    summary: SummarySpec = Field(default_factory=SummarySpec)
    base_dir: Path = Field(default=Path("."), exclude=True)

    @field_validator("policies")
    @classmethod
    def _known_policies(cls, v: list[str] | None) -> list[str] | None:
        for i, p in enumerate(v or []):
            if p not in POLICIES:
                raise ValueError(f"[{i}] {p!r} is not a policy (known: {sorted(POLICIES)})")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int] | int) -> list[int] | int:
        if isinstance(v, list):
            if not v:
                raise ValueError("give at least one seed")
            dupes = sorted({s for s in v if v.count(s) > 1})
            if dupes:
                raise ValueError(f"repeated: {dupes}")
        return v

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)

    def scenario_path(self, p: Path) -> Path:
        return p if p.is_absolute() else self.base_dir / p


def _flatten_overrides(table: Any, prefix: str, out: dict[str, Any], source: str) -> None:
    """TOML turns ``a.b = [..]`` into nested tables: fold them back into dotted paths. A
    list is one axis (its values are the alternatives); anything else is an error."""
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: overrides: must be a table of dotted paths")
    for key, value in table.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            _flatten_overrides(value, path, out, source)
        elif isinstance(value, list):
            if not value:
                raise ConfigError(f"{source}: overrides.{path}: give at least one value")
            out[path] = value
        else:
            raise ConfigError(
                f"{source}: overrides.{path}: give a list of values (one-element list to "
                f"fix the field: {path} = [{value!r}])"
            )


def parse_sweep(data: dict[str, Any], *, source: str = "<sweep>",
                base_dir: Path | None = None) -> SweepSpec:
    """Validate a parsed sweep table; :class:`ConfigError` names every bad field."""
    table = dict(data)
    if "base_dir" in table:
        raise ConfigError(f"{source}: base_dir: unknown field (not part of the sweep schema)")
    overrides: dict[str, Any] = {}
    _flatten_overrides(table.pop("overrides", {}), "", overrides, source)
    for path, values in overrides.items():
        try:
            parse_path(path)
        except ConfigError as exc:
            raise ConfigError(f"{source}: overrides.{exc}") from None
        if path in RESERVED:
            raise ConfigError(
                f"{source}: overrides.{path}: set through the sweep's {RESERVED[path]!r}")
        canon = [repr(v) for v in values]
        dupes = sorted({c for c in canon if canon.count(c) > 1})
        if dupes:
            raise ConfigError(f"{source}: overrides.{path}: repeated values {dupes}")
    table["overrides"] = overrides
    if base_dir is not None:
        table["base_dir"] = base_dir
    try:
        spec = SweepSpec.model_validate(table)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, source).replace("unknown field (not part of the "
                          "scenario schema)", "unknown field (not part of the sweep schema)")
                          ) from None
    names = [str(p) for p in spec.scenarios]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{source}: scenarios: repeated {dupes}")
    return spec


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and validate a sweep file (scenario paths are taken from its directory)."""
    p = Path(path)
    data = read_toml(p, "sweep file")
    data.setdefault("name", p.stem)
    return parse_sweep(data, source=p.name, base_dir=p.resolve().parent)
