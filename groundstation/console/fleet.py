"""What the console knows of each node: its latest telemetry, status, limits and history.

Fed message by message by the console service (pure: ``now`` is passed in); the rows it
marks dirty are what the next WebSocket push carries, so the page receives only what
changed. History is a bounded ring per node (the last hours at the telemetry period);
older history comes from the archive on disk.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from flightsw.physics.orbit import Orbits
from flightsw.protocol import NodeState, Status, Telemetry
from groundstation.console.limits import Limits, limits_for

__all__ = ["HISTORY_FIELDS", "Fleet", "NodeRow"]

HISTORY_LEN = 2048
# per-node plot series, in this order: time, SoC, temperature, load W, solar W, jobs done
# (its slope is the throughput), sunlit fraction (eclipses shaded), in contact (marked)
HISTORY_FIELDS = ("t", "soc", "temperature_c", "load_w", "solar_w", "jobs_done", "sunlit",
                  "in_contact")


@dataclass(slots=True)
class NodeRow:
    node: str
    status: str = "unknown"
    profile: str | None = None
    limits: Limits | None = None
    orbits: Orbits | None = None
    telemetry: Telemetry | None = None
    state: NodeState | None = None
    received_at: float = 0.0  # host time the last telemetry arrived
    history: deque[tuple[float, ...]] = field(default_factory=lambda: deque(maxlen=HISTORY_LEN))

    def as_dict(self) -> dict[str, Any]:
        """The fleet-table row (and the map point) of this node."""
        tm = self.telemetry
        st = self.state
        lim = self.limits
        row: dict[str, Any] = {
            "node": self.node,
            "status": self.status,
            "profile": self.profile,
            "limits": None if lim is None else lim.as_dict(),
        }
        if tm is not None:
            row.update(
                t=tm.t,
                lat=round(tm.lat_deg, 3),
                lon=round(tm.lon_deg, 3),
                alt_km=round(tm.alt_km, 1),
                sunlit=round(tm.sunlit, 3),
                soc=round(tm.soc, 4),
                temperature_c=round(tm.temperature_c, 2),
                load_w=round(tm.load_w, 1),
                solar_w=round(tm.solar_w, 1),
                power_mode=tm.power_mode,
                safe_mode=tm.safe_mode,
                paused=tm.paused,
                queue=tm.queue_depth,
                running=tm.jobs_running,
                jobs_done=tm.jobs_done,
                jobs_failed=tm.jobs_failed,
                upsets=tm.upsets,
                in_contact=tm.in_contact,
                profile=tm.profile,
            )
        if st is not None:
            row.update(floor_wh=st.floor_wh, throttle_c=st.throttle_c,
                       queued_work_s=round(st.queued_work_s, 1))
        return row


class Fleet:
    """Rows by node id, and the set changed since the last :meth:`take_dirty`."""

    def __init__(self) -> None:
        self.rows: dict[str, NodeRow] = {}
        self._dirty: set[str] = set()
        self.frames = 0

    def row(self, node: str) -> NodeRow:
        r = self.rows.get(node)
        if r is None:
            r = self.rows[node] = NodeRow(node)
        return r

    def _set_profile(self, r: NodeRow, profile: str | None) -> None:
        if profile and profile != r.profile:
            r.profile = profile
            r.limits = limits_for(profile)

    def on_telemetry(self, tm: Telemetry, host_now: float) -> NodeRow:
        r = self.row(tm.node)
        self._set_profile(r, tm.profile)
        r.telemetry = tm
        r.received_at = host_now
        if r.status in ("unknown", "offline"):
            r.status = "safe" if tm.safe_mode else "online"
        r.history.append((tm.t, tm.soc, tm.temperature_c, tm.load_w, tm.solar_w,
                          float(tm.jobs_done), tm.sunlit, float(tm.in_contact)))
        self.frames += 1
        self._dirty.add(tm.node)
        return r

    def on_status(self, st: Status, orbits: Orbits | None) -> NodeRow:
        r = self.row(st.node)
        r.status = st.state
        self._set_profile(r, st.profile)
        if orbits is not None:
            r.orbits = orbits
        self._dirty.add(st.node)
        return r

    def on_state(self, st: NodeState) -> NodeRow:
        r = self.row(st.node)
        r.state = st
        return r

    def take_dirty(self) -> list[dict[str, Any]]:
        out = [self.rows[n].as_dict() for n in sorted(self._dirty)]
        self._dirty.clear()
        return out

    def history(self, node: str, start: float | None = None) -> dict[str, list[float]]:
        r = self.rows.get(node)
        rows = [] if r is None else [h for h in r.history if start is None or h[0] >= start]
        return {name: [h[i] for h in rows] for i, name in enumerate(HISTORY_FIELDS)}
