"""What a node of one hardware profile knows about itself: its power modes, fastest mode,
memory bandwidth and the work factor of its mitigations (shared by all its nodes)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from flightsw.node.scheduler import ModeSpec, Work
from flightsw.node.upsets import work_factor
from hardware_profiles import HardwareProfile

__all__ = ["NodeSpec"]


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """What a node of one hardware profile knows about itself (shared by its nodes)."""

    profile: HardwareProfile
    modes: tuple[ModeSpec, ...]  # sorted by watts
    fastest: ModeSpec
    bandwidth_bps: float
    work_factor: float  # mitigation that repeats work (dual execution) multiplies it

    @classmethod
    def of(cls, profile: HardwareProfile) -> NodeSpec:
        modes = sorted(
            (
                ModeSpec(m.name, m.watts, profile.effective_ops_per_s(m.name))
                for m in profile.compute.power_modes
            ),
            key=lambda m: m.watts,
        )
        fastest = max(modes, key=lambda m: (m.ops_per_s, -m.watts))
        return cls(
            profile,
            tuple(modes),
            fastest,
            profile.compute.memory_bandwidth_bps,
            work_factor(profile.radiation.mitigation),
        )

    def work(self, flops_per_item: float, bytes_per_item: float, weight_bytes: float,
             items: int) -> Work:
        """The one rule for a job's modelled work on this node (mitigation included)."""
        k = self.work_factor
        return Work(k * flops_per_item * items, k * (weight_bytes + bytes_per_item * items))

    def seconds(self, work: Work) -> float:
        """Seconds of ``work`` at the fastest mode (what a node publishes as its backlog)."""
        return work.latency_s(self.fastest, self.bandwidth_bps)

    @property
    def useful_ops_per_s(self) -> float:
        """Ops per second of the job's own work at the fastest mode (after the mitigation
        that repeats work): what a node publishes, so peers price a job's FLOPs alike."""
        return self.fastest.ops_per_s / self.work_factor

    def job_flops(self, work: Work) -> float:
        """The job's own FLOPs behind ``work`` on this node (mitigation taken out)."""
        return work.flops / self.work_factor

    def cheapest_wh(self, work: Work, cap_w: float) -> float:
        """Least energy (Wh) any mode under ``cap_w`` needs for ``work``."""
        best = math.inf
        for m in self.modes:
            if m.watts <= cap_w + 1e-9:
                best = min(best, m.watts * work.latency_s(m, self.bandwidth_bps))
        return best / 3600.0
