"""What the demo's console knows: latest telemetry, every job it submitted, recent events.

Fed from the bus (telemetry, node job events, the ground's job records) and from the
submitter; read by the live view and the final summary. No I/O here.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from flightsw.physics import CircularOrbits, in_contact
from flightsw.protocol import JobEvent, Telemetry
from groundstation.demo.plan import DemoPlan
from groundstation.protocol import TERMINAL, JobRecord

__all__ = ["DemoState", "Event", "JobTrack"]

_EVENTS = 200
_DEFER_WHY = {
    "energy": "no battery margin left through the next eclipse",
    "thermal": "too hot to run it",
}

log = logging.getLogger("groundstation.demo")


@dataclass(slots=True)
class JobTrack:
    """One submitted job as the console follows it."""

    job_id: str
    kind: str
    items: int
    submitted_at: float
    labels: npt.NDArray[np.int64] | None = None
    state: str = "queued"
    node: str | None = None
    migrations: int = 0
    energy_j: float | None = None
    latency_s: float | None = None
    finished_at: float | None = None
    reason: str | None = None
    correct: int | None = None  # classifier: images labelled right (once outputs are in)

    @property
    def short(self) -> str:
        return self.job_id[:6]

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL


@dataclass(frozen=True, slots=True)
class Event:
    """A line for the event pane: mission time, text, and a style (for colour)."""

    t: float
    text: str
    style: str = ""
    seq: int = 0


@dataclass(slots=True)
class DemoState:
    plan: DemoPlan
    telemetry: dict[str, Telemetry] = field(default_factory=dict)
    jobs: dict[str, JobTrack] = field(default_factory=dict)
    events: deque[Event] = field(default_factory=lambda: deque(maxlen=_EVENTS))
    contact: dict[str, str | None] = field(default_factory=dict)
    handovers: int = 0
    event_seq: int = 0
    _orbits: CircularOrbits | None = None
    _uplinks: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    _lit: dict[str, bool] = field(default_factory=dict)
    _safe: dict[str, bool] = field(default_factory=dict)

    @property
    def node_ids(self) -> list[str]:
        return [n.node_id for n in self.plan.nodes]

    def add_event(self, t: float, text: str, style: str = "") -> None:
        self.event_seq += 1
        self.events.append(Event(t, text, style, self.event_seq))

    def label(self, job_id: str) -> str:
        j = self.jobs.get(job_id)
        if j is None:
            return f"job {job_id[:6]}"
        unit = "img" if j.kind in ("classifier", "detector") else "seq"
        return f"job {j.short} ({j.kind}, {j.items} {unit})"

    # -- inputs --------------------------------------------------------------------------
    def submitted(self, track: JobTrack) -> None:
        self.jobs[track.job_id] = track

    def on_telemetry(self, tel: Telemetry) -> None:
        if tel.node not in self._lit and tel.node not in self.node_ids:
            return  # another run's node on a shared broker
        lit = tel.sunlit >= 0.5
        was = self._lit.get(tel.node)
        if was is not None and was != lit:
            if lit:
                self.add_event(tel.t, f"{tel.node} left eclipse: solar {tel.solar_w:.0f} W", "sun")
            else:
                self.add_event(
                    tel.t, f"{tel.node} entered eclipse at {tel.soc:.0%} charge", "eclipse"
                )
        self._lit[tel.node] = lit
        safe = self._safe.get(tel.node)
        if safe is not None and safe != tel.safe_mode:
            if tel.safe_mode:
                self.add_event(
                    tel.t, f"{tel.node} in SAFE MODE at {tel.soc:.0%} charge: compute stopped",
                    "bad",
                )
            else:
                self.add_event(tel.t, f"{tel.node} left safe mode at {tel.soc:.0%}", "good")
        self._safe[tel.node] = tel.safe_mode
        self.telemetry[tel.node] = tel

    def on_job_event(self, ev: JobEvent) -> None:
        if ev.job_id not in self.jobs:
            return
        if ev.state == "handed_over":
            self.handovers += 1
            self.jobs[ev.job_id].node = ev.target
            m = re.search(r"\(([\d.]+) s transfer\)", ev.detail or "")
            how = f" over ISL ({float(m.group(1)) * 1e3:.0f} ms transfer)" if m else ""
            self.add_event(
                ev.t, f"{self.label(ev.job_id)} migrated {ev.node} -> {ev.target}{how}", "move"
            )
        elif ev.state == "deferred" and ev.detail:
            why = _DEFER_WHY.get(ev.detail.split(":", 1)[0], ev.detail)
            self.add_event(ev.t, f"{self.label(ev.job_id)} deferred on {ev.node}: {why}", "warn")

    def on_record(self, rec: JobRecord, now: float) -> JobTrack | None:
        """Update from the ground's record; returns the track when the job just finished."""
        j = self.jobs.get(rec.job_id)
        if j is None or j.terminal:
            return None
        if rec.state == "uplinked" and j.state == "queued" and rec.node is not None:
            self._uplinks.setdefault(rec.node, []).append((j.kind, rec.uplinked_at or now))
        j.state = rec.state
        j.node = rec.node or j.node
        j.migrations = max(j.migrations, rec.migrations)
        if rec.state in TERMINAL:
            j.finished_at = rec.finished_at or now
            j.energy_j = rec.modelled_energy_j
            j.latency_s = rec.modelled_latency_s
            j.reason = rec.reason
            if rec.state == "failed":
                where = f"on {rec.node}" if rec.node else "at the ground"
                self.add_event(now, f"{self.label(rec.job_id)} FAILED {where}: "
                               f"{rec.reason}", "bad")
                log.info("demo: %s failed %s: %s", rec.job_id, where, rec.reason)
            return j
        return None

    def stations_in_view(self, t: float) -> list[str | None]:
        """Per node, the first station it is in contact with at ``t`` (or ``None``)."""
        plan = self.plan
        if self._orbits is None:
            self._orbits = plan.orbits()
        mask = in_contact(self._orbits.positions(t), t, plan.stations, plan.min_elevation_deg)
        out: list[str | None] = []
        for row in mask:
            seen = np.flatnonzero(row).tolist()
            out.append(plan.stations[seen[0]].name if seen else None)
        return out

    def update_contacts(self, t: float) -> None:
        """Which station each node is in contact with now (AOS/LOS and uplinks: events)."""
        for node, now in zip(self.node_ids, self.stations_in_view(t), strict=True):
            before = self.contact.get(node, "?")
            if before == "?":
                pass
            elif before is None and now is not None:
                self.add_event(t, f"{node} acquired {now}: uplink open", "up")
            elif before is not None and now is None:
                self.add_event(t, f"{node} lost {before}", "")
            self.contact[node] = now
        for node, ups in self._uplinks.items():
            kinds = [k for k, _ in ups]
            what = ", ".join(f"{kinds.count(k)} {k}" for k in sorted(set(kinds)))
            i = self.node_ids.index(node) if node in self.node_ids else None
            via = None if i is None else self.stations_in_view(ups[0][1])[i]
            self.add_event(
                t,
                f"uplink to {node}{f' via {via}' if via else ''}: "
                f"{len(kinds)} job{'s' if len(kinds) > 1 else ''} ({what})",
                "up",
            )
        self._uplinks.clear()

    # -- figures -------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        out = {"submitted": len(self.jobs), "done": 0, "failed": 0, "ground": 0, "onboard": 0}
        for j in self.jobs.values():
            if j.state == "done":
                out["done"] += 1
            elif j.state == "failed":
                out["failed"] += 1
            elif j.state == "queued":
                out["ground"] += 1
            else:
                out["onboard"] += 1
        return out

    def accuracy(self) -> tuple[int, int]:
        """(images labelled right, images with a result) over done classifier jobs."""
        right = total = 0
        for j in self.jobs.values():
            if j.kind == "classifier" and j.correct is not None:
                right += j.correct
                total += j.items
        return right, total

    def energy_per_job_j(self) -> float | None:
        vals = [
            j.energy_j for j in self.jobs.values() if j.state == "done" and j.energy_j is not None
        ]
        return float(np.mean(vals)) if vals else None

    def failed_by_reason(self) -> dict[str, int]:
        """Failed jobs by reason (the reason up to its first parenthesis or colon, so
        ``deadline expired before start (...)`` counts as one reason), most frequent first."""
        out: dict[str, int] = {}
        for j in self.jobs.values():
            if j.state == "failed":
                why = re.split(r" \(|: ", j.reason or "unknown reason", maxsplit=1)[0]
                out[why] = out.get(why, 0) + 1
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))

    def migrations(self) -> int:
        return max(self.handovers, sum(j.migrations for j in self.jobs.values()))
