"""The lifetime scenario: a typed TOML schema for a multi-year fluid run of a fleet.

A lifetime scenario names the hardware profile (one line to change the study), the fleet
and its Walker pattern, the years and the coarse step, the workload as a fluid (offered
load and the work of one inference), and the replacement policy. Overrides of the
profile's ``[lifetime]`` figures (shielding, manoeuvre rate...) sit in ``[aging]``. Every
error is a :class:`ScenarioError` naming the file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flightsw.exceptions import ScenarioError
from flightsw.sim.scenario import format_errors
from flightsw.timeutil import parse_iso
from flightsw.tomlfile import read_toml

__all__ = [
    "AgingOverrides",
    "FleetSpec",
    "LifetimeScenario",
    "PolicySpec",
    "WorkloadSpec",
    "load_lifetime_scenario",
    "parse_lifetime_scenario",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FleetSpec(_Model):
    """The fleet: how many satellites of the profile, in which Walker pattern."""

    satellites: int = Field(ge=1, le=1_000_000, description="satellites in the fleet")
    planes: int = Field(default=1, ge=1, description="Walker orbital planes")
    phasing: int = Field(default=0, ge=0, description="Walker phasing F")
    altitude_km: float | None = Field(
        default=None, gt=100, lt=5000, description="default: the profile's design altitude"
    )
    inclination_deg: float | None = Field(
        default=None, ge=0, le=180, description="default: sun-synchronous at the altitude"
    )
    dawn_dusk: bool = Field(
        default=False, description="put the first plane at 18:00 local time (dawn-dusk SSO)"
    )


class WorkloadSpec(_Model):
    """Jobs as a fluid: offered work relative to the fleet's initial capacity."""

    demand: float = Field(
        default=1.0, gt=0, description="offered ops/s as a fraction of the initial fleet capacity"
    )
    flops_per_inference: float = Field(gt=0, description="work of one inference, ops")


class PolicySpec(_Model):
    """What happens to dead and old satellites."""

    replace_failed: bool = Field(
        default=False, description="launch a new satellite when one has no working accelerator"
    )
    deorbit_at_design_life: bool = Field(
        default=True, description="deorbit (and replace, if replace_failed) at the design life"
    )
    replacement_delay_days: float = Field(
        default=60.0, ge=0, description="from loss to the replacement computing in orbit"
    )


class AgingOverrides(_Model):
    """Overrides of the profile's ``[lifetime]`` figures for this scenario."""

    shielding_mm_al: float | None = Field(default=None, gt=0)
    manoeuvres_per_year: float | None = Field(default=None, ge=0)
    random_failure_per_year: float | None = Field(default=None, ge=0, lt=1)
    array_degradation_per_year: float | None = Field(default=None, ge=0, lt=1)
    design_life_years: float | None = Field(default=None, gt=0)


class LifetimeScenario(_Model):
    """A multi-year fluid run of one fleet."""

    name: str = Field(min_length=1)
    profile: str = Field(min_length=1, description="hardware profile name or TOML path")
    years: float = Field(gt=0, le=30, description="simulated mission length")
    step_hours: float = Field(default=24.0, gt=0, le=24 * 30, description="coarse step")
    start: str = Field(default="2027-01-01T00:00:00Z", description="ISO 8601 UTC")
    seed: int = Field(default=0, ge=0)
    fleet: FleetSpec
    workload: WorkloadSpec
    policy: PolicySpec = Field(default_factory=PolicySpec)
    aging: AgingOverrides = Field(default_factory=AgingOverrides)

    @property
    def start_s(self) -> float:
        return parse_iso(self.start, field="start")


def parse_lifetime_scenario(
    data: dict[str, Any], *, source: str = "<lifetime>", base_dir: Path | None = None
) -> LifetimeScenario:
    """Validate a parsed table; a profile given as a relative path is taken from ``base_dir``."""
    try:
        scenario = LifetimeScenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(format_errors(exc, source)) from exc
    prof = scenario.profile
    if base_dir is not None and prof.endswith(".toml") and not Path(prof).is_absolute():
        scenario = scenario.model_copy(update={"profile": str(base_dir / prof)})
    try:
        scenario.start_s  # noqa: B018 - validates the timestamp, naming the field
    except Exception as exc:
        raise ScenarioError(f"{source}: start: {exc}") from exc
    return scenario


def load_lifetime_scenario(path: str | Path) -> LifetimeScenario:
    """Read and validate a lifetime scenario TOML file (``name`` defaults to the file stem)."""
    p = Path(path)
    data = read_toml(p, "lifetime scenario", ScenarioError)
    data.setdefault("name", p.stem)
    return parse_lifetime_scenario(data, source=p.name, base_dir=p.resolve().parent)
