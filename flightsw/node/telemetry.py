"""What a node reports: housekeeping telemetry and the compact constellation state.

Both read the node's core (queue, run, limits, counters) and its one-row physics state;
neither decides anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from flightsw.protocol import NodeState, Telemetry

if TYPE_CHECKING:
    from flightsw.node.service import Node

__all__ = ["node_state", "telemetry"]


def telemetry(node: Node, seq: int) -> Telemetry:
    b = node.budget
    core = node.core
    now = node.clock.now()
    lat, lon, alt = b.geodetic_of(0)
    return Telemetry(
        node=node.id,
        seq=seq,
        t=now,
        profile=node.profile.name,
        lat_deg=lat,
        lon_deg=lon,
        alt_km=alt,
        sunlit=b.illumination_of(0),
        beta_deg=b.beta_deg_of(0, now),
        solar_w=b.solar_w_of(0),
        load_w=b.load_w_of(0),
        battery_wh=b.battery_wh_of(0),
        soc=b.soc_of(0),
        temperature_c=b.temperature_c_of(0),
        power_mode=core.mode,
        safe_mode=core.safe_mode,
        paused=core.paused,
        queue_depth=len(core.sched),
        jobs_running=1 if core.run is not None else 0,
        jobs_done=core.jobs_done,
        jobs_failed=core.jobs_failed,
        energy_used_j=core.energy_used_j,
        upsets=b.upsets_of(0),
        migrations_in=core.migrations_in,
        migrations_out=core.migrations_out,
        in_contact=node.downlink.in_contact(now),
        upsets_mitigated=node.upsets_mitigated,
        silent_corruptions=node.silent_corruptions,
        # the peers it could hand work to now (it hears peers only when it migrates)
        isl_peers=(sorted(p.node for p in node.migration.linked_peers(now))
                   if node.policy.name != "local" else None),
    )


def node_state(node: Node) -> NodeState:
    """The heartbeat: what peers and the ground plan with (it also renews the leases)."""
    b = node.budget
    core = node.core
    spec = core.spec
    now = node.clock.now()
    nxt = b.next_eclipse(0, now)
    running = core.running_s(now)
    links = node.profile.links
    return NodeState(
        node=node.id,
        t=now,
        soc=b.soc_of(0),
        battery_wh=b.battery_wh_of(0),
        floor_wh=node.profile.dod_floor_wh,
        temperature_c=b.temperature_c_of(0),
        throttle_c=node.profile.thermal.throttle_c,
        queue_depth=len(core.sched),
        queued_work_s=core.queued_s() + running,
        sunlit=b.illumination_of(0),
        next_eclipse_s=None if nxt is None else max(0.0, nxt[0] - now),
        eclipse_s=0.0 if nxt is None else nxt[1] - nxt[0],
        effective_ops_per_s=spec.useful_ops_per_s,
        power_w=spec.fastest.watts,
        position_km=[float(x) for x in b.position_of(0)],
        models=node.store.list(),
        leases=_leases(node),
        safe_mode=core.safe_mode,
        margin_wh=node.margin_wh(now),
        heat_capacity_j_per_k=node.profile.thermal.heat_capacity_j_per_k,
        isl_rate_bps=links.isl_rate_bps,
        isl_max_range_km=links.isl_max_range_km,
        uplink_rate_bps=links.uplink_rate_bps,
        alt_km=float(np.linalg.norm(b.position_of(0))) - 6378.137,
        running_s=running,
        work_by_priority=list(core.work_by_priority()),
    )


def _leases(node: Node) -> dict[str, int]:
    """The jobs queued or running here and those whose result (or stage return) waits in
    the downlink: the ground keeps their leases until the message is down."""
    held = node.downlink.leases()
    for job_id, epoch in node.core.leases().items():
        held[job_id] = max(epoch, held.get(job_id, epoch))
    return held
