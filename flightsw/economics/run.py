"""Run a study end to end: simulate (when the study names a scenario), cost, sensitivity.

The study's profile and fleet size drive the simulation: the scenario named by
``orbit.simulate`` is run with the study's ``orbit.profile`` and ``orbit.satellites``,
so changing the profile line of a study changes the hardware everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from flightsw.economics.exceptions import StudyError
from flightsw.economics.model import (
    Operations,
    Verdict,
    assumed_operations,
    evaluate,
    operations_from_lifetime,
)
from flightsw.economics.sensitivity import Bar, CurvePoint, break_even_curve, tornado
from flightsw.economics.study import Study
from flightsw.exceptions import ScenarioError
from flightsw.sim.lifetime import LifetimeResult, load_lifetime_scenario, run_lifetime
from hardware_profiles import HardwareProfile, load_profile

__all__ = ["StudyRun", "run_study"]


@dataclass(frozen=True)
class StudyRun:
    study: Study
    profile: HardwareProfile
    operations: Operations
    verdict: Verdict
    tornado: list[Bar]
    curve: list[CurvePoint]
    lifetime: LifetimeResult | None


def run_study(study: Study, *, assumed: bool = False) -> StudyRun:
    """Cost ``study``; ``assumed`` ignores ``orbit.simulate`` and uses the constants."""
    profile = load_profile(study.orbit.profile)
    result: LifetimeResult | None = None
    if study.orbit.simulate is not None and not assumed:
        scenario = load_lifetime_scenario(study.orbit.simulate)
        fleet = scenario.fleet
        if study.orbit.satellites % fleet.planes:
            raise StudyError(
                f"orbit.satellites ({study.orbit.satellites}) must be a multiple of the "
                f"scenario's fleet.planes ({fleet.planes})"
            )
        scenario = scenario.model_copy(update={
            "profile": study.orbit.profile,
            "fleet": fleet.model_copy(update={"satellites": study.orbit.satellites}),
        })
        try:
            result = run_lifetime(scenario, profile)
        except ScenarioError as exc:
            raise StudyError(f"orbit.simulate: {exc}") from exc
        ops = operations_from_lifetime(result)
    else:
        ops = assumed_operations(study, profile)
    verdict = evaluate(study, profile, ops)
    return StudyRun(study, profile, ops, verdict, tornado(study, profile, ops),
                    break_even_curve(study, profile, ops), result)
