"""The STUDY.toml schema: a fleet in orbit against the same compute on the ground.

A study names the hardware profile (one line to change the study), the fleet, the launch
price, the ground segment and operations, the ground data centre's prices, the workload,
and where the operating figures come from: a lifetime scenario to simulate (utilisation,
availability, attrition and replacements measured) or constants (the published analyses'
way). Every error is a :class:`StudyError` naming the file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from flightsw.economics.exceptions import StudyError
from flightsw.sim.scenario import format_errors
from flightsw.tomlfile import read_toml

__all__ = [
    "AssumedOperations",
    "GroundSpec",
    "OrbitSpec",
    "Study",
    "load_study",
    "parse_study",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AssumedOperations(_Model):
    """Operating figures taken as constants when nothing is simulated."""

    capacity_fraction: float = Field(
        default=1.0, gt=0, le=1, description="mean capacity kept over the life (attrition)"
    )
    availability: float = Field(default=1.0, gt=0, le=1, description="time computing")
    utilisation: float = Field(default=1.0, gt=0, le=1, description="busy share of the time")


class OrbitSpec(_Model):
    """The fleet in orbit and what it costs to put there and run."""

    profile: str = Field(min_length=1, description="hardware profile name or TOML path")
    satellites: int = Field(ge=1, description="satellites launched at the start")
    launch_usd_per_kg: float = Field(ge=0, description="launch price to the orbit, $/kg")
    ground_stations: int = Field(default=0, ge=0, description="ground stations leased or built")
    ground_station_usd_per_year: float = Field(default=0.0, ge=0)
    operations_usd_per_satellite_year: float = Field(default=0.0, ge=0)
    insurance_fraction: float = Field(
        default=0.0, ge=0, lt=1, description="launch + first-year insurance, share of hardware"
    )
    nre_usd: float = Field(default=0.0, ge=0, description="non-recurring engineering")
    satellite_usd: float | None = Field(
        default=None, gt=0, description="override of the profile's cost.satellite_usd"
    )
    simulate: str | None = Field(
        default=None, description="lifetime scenario TOML; its measured figures are used"
    )
    assumed: AssumedOperations = Field(default_factory=AssumedOperations)


class GroundSpec(_Model):
    """The same accelerators in a terrestrial data centre."""

    server_usd_per_accelerator: float = Field(
        gt=0, description="accelerator plus its share of host, network and rack"
    )
    it_w_per_accelerator: float = Field(
        gt=0, description="IT power per accelerator at full load, host share included"
    )
    facility_usd_per_w: float = Field(ge=0, description="data-centre build cost per IT watt")
    electricity_usd_per_kwh: float = Field(ge=0)
    pue: float = Field(ge=1, le=3, description="power usage effectiveness (cooling overhead)")
    idle_fraction: float = Field(
        default=0.3, ge=0, le=1, description="IT power drawn when idle, share of full load"
    )
    failure_per_year: float = Field(
        default=0.0, ge=0, lt=1, description="accelerators replaced per year (repairable)"
    )
    operations_fraction_per_year: float = Field(
        default=0.0, ge=0, lt=1, description="staff, maintenance, network: share of servers"
    )
    availability: float = Field(default=1.0, gt=0, le=1)


class Workload(_Model):
    """The work: one inference's operations, and (without a simulation) the demand."""

    flops_per_inference: float = Field(gt=0)
    demand: float = Field(
        default=1.0, gt=0, description="offered load, share of the new fleet's capacity"
    )


class Study(_Model):
    """One study: the years, the orbit, the ground, the workload."""

    title: str = Field(min_length=1)
    years: float = Field(gt=0, le=30, description="analysis period, years")
    orbit: OrbitSpec
    ground: GroundSpec
    workload: Workload
    launch_prices: list[float] = Field(
        default_factory=lambda: [20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 3600.0],
        min_length=2,
        description="launch prices of the break-even curve, $/kg",
    )

    @model_validator(mode="after")
    def _prices_positive(self) -> Self:
        if any(p <= 0 for p in self.launch_prices):
            raise ValueError("launch_prices: every price must be > 0")
        return self


def parse_study(
    data: dict[str, Any], *, source: str = "<study>", base_dir: Path | None = None
) -> Study:
    """Validate a parsed table; relative paths (profile, simulate) are taken from ``base_dir``."""
    try:
        study = Study.model_validate(data)
    except ValidationError as exc:
        raise StudyError(format_errors(exc, source)) from exc
    if base_dir is None:
        return study
    orbit = study.orbit
    update: dict[str, str] = {}
    if orbit.simulate is not None and not Path(orbit.simulate).is_absolute():
        update["simulate"] = str(base_dir / orbit.simulate)
    if orbit.profile.endswith(".toml") and not Path(orbit.profile).is_absolute():
        update["profile"] = str(base_dir / orbit.profile)
    if update:
        study = study.model_copy(update={"orbit": orbit.model_copy(update=update)})
    return study


def load_study(path: str | Path) -> Study:
    """Read and validate a STUDY.toml file."""
    p = Path(path)
    data = read_toml(p, "study", StudyError)
    return parse_study(data, source=p.name, base_dir=p.resolve().parent)
