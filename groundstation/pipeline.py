"""The ground's part in a pipeline job: the checks at submission and the group it uplinks.

A pipeline job runs stage ``k`` of its plan on the ``k``-th of as many distinct nodes. At
each uplink (the first, and every re-run after a lapsed lease) the ground chooses the
group afresh among the nodes it may place work on (online, a heartbeat within the lease),
so a member that went silent is left out; stage 0's node must also be in contact. First
each stage, in order, takes the free candidate with the least backlog of those holding (or
being sent) its stage model; then each stage still without a node takes the free one with
the least backlog. No node is in the group twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from groundstation.exceptions import RequestError

__all__ = ["Candidate", "check_stages", "choose_group"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A node the ground may place a stage on, as the choice sees it."""

    node: str
    backlog_s: float
    models: frozenset[str]  # held or being sent
    in_contact: bool


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


def choose_group(stages: Sequence[str], candidates: Sequence[Candidate]) -> list[str] | None:
    """The node of each stage (see the module doc); None if there are too few nodes or
    none in contact for stage 0."""
    if len(candidates) < len(stages):
        return None
    group: list[str | None] = [None] * len(stages)

    def free(k: int, model: str | None) -> list[Candidate]:
        return [c for c in candidates if c.node not in group and (k > 0 or c.in_contact)
                and (model is None or model in c.models)]

    for holders in (True, False):
        for k, model in enumerate(stages):
            if group[k] is not None:
                continue
            pool = free(k, model if holders else None)
            if pool:
                group[k] = min(pool, key=lambda c: (c.backlog_s, c.node)).node
    done = [n for n in group if n is not None]
    return done if len(done) == len(stages) else None
