"""``flightsw demo``: a whole constellation, a ground station and a job stream in one process."""

from flightsw.demo.plan import DEFAULT_STATIONS, PROFILE_CYCLE, DemoPlan, NodePlan, plan_demo
from flightsw.demo.runner import DemoOptions, find_models, run_demo
from flightsw.demo.state import DemoState, Event, JobTrack
from flightsw.demo.summary import ArchiveFacts, DemoResult, archive_facts
from flightsw.demo.workload import KINDS, JobKind, Submission, Workload

__all__ = [
    "DEFAULT_STATIONS",
    "KINDS",
    "PROFILE_CYCLE",
    "ArchiveFacts",
    "DemoOptions",
    "DemoPlan",
    "DemoResult",
    "DemoState",
    "Event",
    "JobKind",
    "JobTrack",
    "NodePlan",
    "Submission",
    "Workload",
    "archive_facts",
    "find_models",
    "plan_demo",
    "run_demo",
]
