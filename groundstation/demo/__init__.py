"""``flightsw demo``: a whole constellation, a ground station and a job stream in one process.

It drives the ground station and the nodes, so it lives in ``groundstation`` (which may
import ``flightsw``, never the reverse); ``flightsw demo`` reaches it through the
``flightsw.commands`` entry point (``groundstation/cli/demo.py``).
"""

from groundstation.demo.plan import DEFAULT_STATIONS, PROFILE_CYCLE, DemoPlan, NodePlan, plan_demo
from groundstation.demo.runner import DemoOptions, find_models, run_demo
from groundstation.demo.state import DemoState, Event, JobTrack
from groundstation.demo.summary import ArchiveFacts, DemoResult, archive_facts
from groundstation.demo.workload import KINDS, JobKind, Submission, Workload

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
