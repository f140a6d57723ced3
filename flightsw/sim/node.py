"""One simulated node: the shared :class:`~flightsw.node.core.NodeCore` (queue, run,
limits, counters: the same decisions as the emulated node) plus what only the simulator
keeps for it: the models it holds, the results it keeps until a downlink path opens (store
and forward), and its crash bookkeeping."""

from __future__ import annotations

from dataclasses import dataclass

from flightsw.node.core import NodeCore
from flightsw.node.scheduler import Queued
from flightsw.node.spec import NodeSpec
from flightsw.sim.ledger import Job, Ticket

__all__ = ["NodeSpec", "OutResult", "SimNode", "ticket"]


@dataclass(slots=True)
class OutResult:
    """A finished job's result waiting for a downlink path."""

    job: Job
    epoch: int
    node: int
    finished_at: float
    started_at: float
    accepted_at: float
    energy_j: float
    latency_s: float
    mode: str
    migrations: int


class SimNode(NodeCore):
    """A node's onboard state (the engine drives it; see :mod:`flightsw.sim.engine`)."""

    __slots__ = ("_models_frozen", "crashes", "i", "lease_checked", "models", "outbox",
                 "tele_seq")

    def __init__(self, i: int, name: str, spec: NodeSpec, *, overload_backlog_s: float,
                 max_queue: int) -> None:
        super().__init__(name, spec, overload_backlog_s=overload_backlog_s, max_queue=max_queue)
        self.i = i
        self.models: set[str] = set()
        self.outbox: list[OutResult] = []
        self.crashes = 0
        self.lease_checked = 0
        self.tele_seq = 0
        self._models_frozen: frozenset[str] | None = None

    def add_model(self, key: str) -> None:
        if key not in self.models:
            self.models.add(key)
            self._models_frozen = None

    def models_frozen(self) -> frozenset[str]:
        if self._models_frozen is None:
            self._models_frozen = frozenset(self.models)
        return self._models_frozen


def ticket(q: Queued) -> Ticket:
    assert isinstance(q.payload, Ticket)
    return q.payload
