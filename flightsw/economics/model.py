"""A fleet in orbit against the same accelerators on the ground, per inference and per kWh.

Why it exists: published analyses fix utilisation, availability and attrition as
constants; here they come from a lifetime simulation of the actual hardware and fleet
(:class:`Operations` from :func:`operations_from_lifetime`) or, to compare, from the
study's assumptions. Both sides serve the same offered work: the ground runs the same
number of accelerators at full power (no bus limits), repairs what fails, and pays for
electricity, cooling (PUE) and the building; the orbit pays for satellites, launch,
replacements, the ground segment and operations. Cost per million inferences and per
delivered kWh of compute follow, and the break-even launch price is where the orbit's
cost per inference equals the ground's (the orbit's cost is linear in the launch price).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from flightsw.economics.exceptions import StudyError
from flightsw.economics.study import Study
from flightsw.economics.terms import energy_cost_usd, launch_cost_usd
from flightsw.node.aging import SECONDS_PER_YEAR
from flightsw.sim.lifetime import LifetimeResult
from hardware_profiles import HardwareProfile

__all__ = [
    "Operations",
    "Side",
    "Verdict",
    "assumed_operations",
    "evaluate",
    "operations_from_lifetime",
]


class Operations(NamedTuple):
    """How the orbital fleet ran: what a lifetime simulation measured, or the assumptions.

    ``delivered_fraction`` is delivered work over the new fleet's capacity, time-averaged;
    it is ``capacity_fraction x availability x utilisation`` for assumed figures (the
    simulation measures it directly, pauses and failures included).
    """

    source: str
    new_capacity_ops: float  # the new fleet's capacity, ops/s
    offered_ops: float  # the work offered, ops/s (the ground serves the same)
    capacity_fraction: float
    availability: float
    utilisation: float
    delivered_fraction: float
    attrition_per_year: float
    replacement_launches: int
    compute_w_per_delivered_ops: float  # accelerator watts per delivered ops/s
    simulated_years: float | None


@dataclass(frozen=True)
class Side:
    """One side of the comparison: line items, what it delivered, and the unit costs."""

    name: str
    items: dict[str, float]
    inferences: float
    compute_kwh: float

    @property
    def total_usd(self) -> float:
        return sum(self.items.values())

    @property
    def usd_per_million_inferences(self) -> float:
        return self.total_usd / self.inferences * 1e6 if self.inferences > 0 else float("inf")

    @property
    def usd_per_kwh(self) -> float:
        return self.total_usd / self.compute_kwh if self.compute_kwh > 0 else float("inf")


@dataclass(frozen=True)
class Verdict:
    """The study's answer."""

    title: str
    profile: str
    years: float
    launch_usd_per_kg: float
    operations: Operations
    orbit: Side
    ground: Side
    launched_mass_kg: float
    break_even_launch_usd_per_kg: float  # negative: no launch price makes orbit cheaper
    free_launch_gap_usd: float  # orbit cost with free launch minus the cost at parity

    @property
    def ratio(self) -> float:
        """Orbit / ground cost per million inferences (below 1: the orbit is cheaper)."""
        return self.orbit.usd_per_million_inferences / self.ground.usd_per_million_inferences

    @property
    def cheaper(self) -> str:
        return "orbit" if self.ratio < 1.0 else "ground"


def _require(
    profile: HardwareProfile, satellite_usd: float | None = None
) -> tuple[float, float, int]:
    """Unit cost of one satellite with its accelerators, its mass, its accelerators."""
    if profile.cost is None:
        raise StudyError(f"orbit.profile: {profile.name!r} has no [cost] section")
    if profile.design.mass_kg is None:
        raise StudyError(f"orbit.profile: {profile.name!r} has no design.mass_kg")
    accelerators = profile.lifetime.accelerators if profile.lifetime is not None else 1
    bus = profile.cost.satellite_usd if satellite_usd is None else satellite_usd
    unit = bus + accelerators * profile.cost.accelerator_usd
    return unit, profile.design.mass_kg, accelerators


def assumed_operations(study: Study, profile: HardwareProfile) -> Operations:
    """The study's constant figures, for a fleet running the profile's sustained mode."""
    _, _, acc = _require(profile)
    mode = profile.sustained_mode
    new = study.orbit.satellites * acc * profile.effective_ops_per_s(mode)
    a = study.orbit.assumed
    return Operations(
        source="assumed",
        new_capacity_ops=new,
        offered_ops=study.workload.demand * new,
        capacity_fraction=a.capacity_fraction,
        availability=a.availability,
        utilisation=a.utilisation,
        delivered_fraction=a.capacity_fraction * a.availability * a.utilisation,
        attrition_per_year=0.0,
        replacement_launches=0,
        compute_w_per_delivered_ops=mode.watts / profile.effective_ops_per_s(mode),
        simulated_years=None,
    )


def operations_from_lifetime(result: LifetimeResult) -> Operations:
    """What a lifetime run measured, as the cost model reads it."""
    s = result.summary
    delivered_ops_s = s.delivered_fraction * s.initial_capacity_ops * s.years * SECONDS_PER_YEAR
    return Operations(
        source=f"simulated: {result.scenario.name}",
        new_capacity_ops=s.initial_capacity_ops,
        offered_ops=result.scenario.workload.demand * s.initial_capacity_ops,
        capacity_fraction=s.capacity_fraction,
        availability=s.availability,
        utilisation=s.utilisation,
        delivered_fraction=s.delivered_fraction,
        attrition_per_year=s.attrition_per_year,
        replacement_launches=s.launches,
        compute_w_per_delivered_ops=(
            s.compute_kwh * 3.6e6 / delivered_ops_s if delivered_ops_s > 0 else 0.0
        ),
        simulated_years=s.years,
    )


def _orbit(study: Study, profile: HardwareProfile, ops: Operations, price: float) -> Side:
    unit, mass, _ = _require(profile, study.orbit.satellite_usd)
    o, years = study.orbit, study.years
    n = o.satellites
    hardware = n * unit
    launch = launch_cost_usd(n * mass, price)
    # replacements measured over the simulated years, scaled to the study's years
    scale = years / ops.simulated_years if ops.simulated_years else 1.0
    repl = ops.replacement_launches * scale
    items = {
        "satellites": hardware,
        "launch": launch,
        "replacements": repl * (unit + launch_cost_usd(mass, price)),
        "insurance": o.insurance_fraction * (hardware + launch),
        "ground segment": o.ground_stations * o.ground_station_usd_per_year * years,
        "operations": n * o.operations_usd_per_satellite_year * years,
        "engineering (NRE)": o.nre_usd,
    }
    delivered = ops.delivered_fraction * ops.new_capacity_ops  # ops/s, time mean
    seconds = years * SECONDS_PER_YEAR
    return Side(
        name="orbit",
        items=items,
        inferences=delivered * seconds / study.workload.flops_per_inference,
        compute_kwh=delivered * ops.compute_w_per_delivered_ops * seconds / 3.6e6,
    )


def _ground(study: Study, profile: HardwareProfile, ops: Operations) -> Side:
    _, _, acc = _require(profile)
    g, years = study.ground, study.years
    count = study.orbit.satellites * acc
    fastest = profile.fastest_mode
    capacity = count * profile.effective_ops_per_s(fastest) * g.availability
    delivered = min(ops.offered_ops, capacity)
    busy = delivered / capacity if capacity > 0 else 0.0
    it_w = count * g.it_w_per_accelerator
    servers = count * g.server_usd_per_accelerator
    load = g.idle_fraction + (1.0 - g.idle_fraction) * busy
    items = {
        "servers": servers,
        "replacements": servers * g.failure_per_year * years,
        "facility": it_w * g.facility_usd_per_w,
        "electricity": energy_cost_usd(
            it_w,
            years,
            g.electricity_usd_per_kwh,
            pue=g.pue,
            capacity_factor=load * g.availability,
            hours_per_year=SECONDS_PER_YEAR / 3600.0,
        ),
        "operations": servers * g.operations_fraction_per_year * years,
    }
    seconds = years * SECONDS_PER_YEAR
    compute_w = delivered * fastest.watts / profile.effective_ops_per_s(fastest)
    return Side(
        name="ground",
        items=items,
        inferences=delivered * seconds / study.workload.flops_per_inference,
        compute_kwh=compute_w * seconds / 3.6e6,
    )


def evaluate(
    study: Study,
    profile: HardwareProfile,
    ops: Operations,
    *,
    launch_usd_per_kg: float | None = None,
) -> Verdict:
    """Cost both sides of ``study`` with the fleet's ``ops`` (launch price overridable)."""
    price = study.orbit.launch_usd_per_kg if launch_usd_per_kg is None else launch_usd_per_kg
    if price < 0:
        raise StudyError(f"orbit.launch_usd_per_kg: must be >= 0, got {price!r}")
    orbit = _orbit(study, profile, ops, price)
    ground = _ground(study, profile, ops)
    # the orbit's cost is linear in the launch price: fixed part and slope per $/kg
    fixed = _orbit(study, profile, ops, 0.0).total_usd
    slope = _orbit(study, profile, ops, 1.0).total_usd - fixed
    target = ground.usd_per_million_inferences * orbit.inferences / 1e6
    break_even = (target - fixed) / slope if slope > 0 else float("nan")
    _, mass, _ = _require(profile)
    scale = study.years / ops.simulated_years if ops.simulated_years else 1.0
    return Verdict(
        title=study.title,
        profile=profile.name,
        years=study.years,
        launch_usd_per_kg=price,
        operations=ops,
        orbit=orbit,
        ground=ground,
        launched_mass_kg=(study.orbit.satellites + ops.replacement_launches * scale) * mass,
        break_even_launch_usd_per_kg=break_even,
        free_launch_gap_usd=fixed - target,
    )
