"""The ground's part in a pipeline job: the checks at submission and the group it uplinks.

A pipeline job runs stage ``k`` of its plan on the ``k``-th of as many distinct nodes, and
stage ``k``'s outputs cross an inter-satellite link to stage ``k + 1``: the group is a chain
over the ISL graph. At each uplink (the first, and every re-run after a lapsed lease) the
ground chooses it afresh among the nodes it may place work on (online, a heartbeat within
the lease), so a member that went silent is left out; stage 0's node must also be in
contact. The choice itself (:func:`choose_group`: two nodes linked as the nodes' own
migration rounds and the simulator's link model judge it, from the positions and terminals
in their last heartbeats; each stage preferring a holder of its stage model, then a node
holding no later stage's model, then the least backlog) lives in
:mod:`flightsw.constellation.chain`, shared with the simulator; it is re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from flightsw.constellation.chain import MAX_STEPS, Candidate, choose_group, linked
from groundstation.exceptions import RequestError

__all__ = ["MAX_STEPS", "Candidate", "check_stages", "choose_group", "linked"]


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
