"""The ground's part in a pipeline job: the checks at submission and the group it uplinks.

A pipeline job runs stage ``k`` of its plan on the ``k``-th of as many distinct nodes,
each linked to the next over the ISL graph. At each uplink (the first, every re-run after
a lapsed lease, and the re-plan of the stages left when a member gave the job back) the
ground chooses the group afresh among the nodes it may place work on (online, a heartbeat
within the lease), so a member that went silent is left out; the first stage's node must
also be in contact. The ground builds each node's :class:`Candidate` from its last
heartbeat and announced orbit (``groundstation.service``); the choice itself is the one
rule the simulator uses too, :mod:`flightsw.constellation.chain`, re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from flightsw.constellation.chain import (
    HOT_MARGIN_K,
    LOW_SOC,
    MAX_STEPS,
    TRACK_SAMPLES,
    Candidate,
    Km3,
    choose_group,
    hop_s,
    lasts,
    linked,
    strained,
    track_times,
    usable,
)
from groundstation.exceptions import RequestError

__all__ = ["HOT_MARGIN_K", "LOW_SOC", "MAX_STEPS", "TRACK_SAMPLES", "Candidate", "Km3",
           "check_stages", "choose_group", "hop_s", "lasts", "linked", "strained",
           "track_times", "usable"]


def check_stages(model: str, stages: Sequence[str], node: str | None,
                 stored: Callable[[str], bool]) -> None:
    """A pipeline submission the ground can run: ``model`` is the first stage, every stage
    model is uploaded, and no node is pinned; :class:`RequestError` naming the field."""
    if model != stages[0]:
        raise RequestError(f"job.model: {model} is not the first stage {stages[0]}",
                           field="job.model")
    for k, stage in enumerate(stages):
        if not stored(stage):
            raise RequestError(
                f"job.stages.{k}: {stage} is not uploaded to the ground station",
                field=f"job.stages.{k}",
            )
    if node is not None:
        raise RequestError("node: a pipeline job runs on a group the ground chooses; "
                           "it cannot be pinned to one node", field="node")
