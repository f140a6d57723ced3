"""Alarms: yellow and red limits, raised, listed, acknowledged and cleared.

Pure bookkeeping, no I/O and no clock (``now`` is passed in). An alarm is keyed by node
and kind, so a limit that stays violated is one alarm, not one per telemetry frame. Its
life, as in Yamcs: *raised* (active, unacknowledged) -> *acknowledged* by an operator ->
gone once its condition has also cleared; one that clears unacknowledged stays listed
(``active=False``) until someone acknowledges it, so a brief excursion is not missed.
A red condition after a yellow one of the same kind raises the level (and asks for a new
acknowledgement).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from groundstation.console.exceptions import NotFound
from groundstation.console.limits import Limits

__all__ = ["Alarm", "AlarmBook", "Condition", "Level", "conditions"]

Level = Literal["yellow", "red"]
_RANK = {"yellow": 1, "red": 2}


@dataclass(frozen=True, slots=True)
class Condition:
    """One limit violated now: ``kind`` on ``node`` at ``level``, with what was seen."""

    node: str
    kind: str
    level: Level
    message: str


@dataclass(slots=True)
class Alarm:
    id: str
    node: str
    kind: str
    level: Level
    message: str
    raised_at: float
    updated_at: float
    active: bool = True
    acked: bool = False
    acked_by: str | None = None
    acked_at: float | None = None
    peak: Level | None = None  # the worst level since raised (None: the level itself)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "node": self.node,
            "kind": self.kind,
            "level": self.level,
            "message": self.message,
            "raised_at": self.raised_at,
            "updated_at": self.updated_at,
            "active": self.active,
            "acked": self.acked,
            "acked_by": self.acked_by,
            "acked_at": self.acked_at,
            "peak": self.peak or self.level,
        }


# the kinds judged from telemetry; the others (failed_job, lease_lapsed) are events
TELEMETRY_KINDS = ("battery", "temperature", "safe_mode")


def conditions(
    node: str, soc: float, temperature_c: float, safe_mode: bool, limits: Limits | None
) -> list[Condition]:
    """The limits one telemetry frame violates."""
    out: list[Condition] = []
    if limits is not None:
        if soc <= limits.soc_floor:
            out.append(Condition(node, "battery", "red",
                                 f"SoC {soc:.0%} at or below the floor {limits.soc_floor:.0%}"))
        elif soc < limits.soc_yellow:
            out.append(Condition(node, "battery", "yellow",
                                 f"SoC {soc:.0%} within {limits.soc_yellow - limits.soc_floor:.0%}"
                                 f" of the floor {limits.soc_floor:.0%}"))
        if temperature_c >= limits.max_c:
            out.append(Condition(node, "temperature", "red",
                                 f"{temperature_c:.1f} °C at or above max {limits.max_c:.0f} °C"))
        elif temperature_c >= limits.throttle_c:
            out.append(Condition(
                node, "temperature", "yellow",
                f"{temperature_c:.1f} °C above throttle {limits.throttle_c:.0f} °C"))
    if safe_mode:
        out.append(Condition(node, "safe_mode", "red", "node in safe mode"))
    return out


class AlarmBook:
    """Every alarm listed now; :meth:`changed` hands out those that changed since."""

    def __init__(self) -> None:
        self._alarms: dict[str, Alarm] = {}
        self._changed: dict[str, Alarm] = {}
        self._seq = 0
        self.raised_total: dict[Level, int] = {"yellow": 0, "red": 0}
        self.revision = 0  # rises at every change (the store saves when it moved)

    def _mark(self, key: str, a: Alarm) -> None:
        self._changed[key] = a
        self.revision += 1

    @staticmethod
    def key(node: str, kind: str) -> str:
        return f"{node}:{kind}"

    def judge(self, node: str, kinds: Iterable[str], found: list[Condition], now: float) -> None:
        """Apply the verdict of one observation covering ``kinds`` of ``node``: raise or
        update each condition found, clear the other kinds."""
        seen = set()
        for c in found:
            seen.add(c.kind)
            self.raise_(c, now)
        for kind in kinds:
            if kind not in seen:
                self.clear(node, kind, now)

    def active_level(self, node: str, kind: str) -> Level | None:
        """The level of the active alarm of ``node`` and ``kind``, if any (no sort)."""
        a = self._alarms.get(self.key(node, kind))
        return a.level if a is not None and a.active else None

    def raise_(self, c: Condition, now: float) -> Alarm:
        key = self.key(c.node, c.kind)
        a = self._alarms.get(key)
        if a is None:
            self._seq += 1
            a = Alarm(f"{key}:{self._seq}", c.node, c.kind, c.level, c.message, now, now)
            self._alarms[key] = a
            self.raised_total[c.level] += 1
            self._mark(key, a)
            return a
        peak = a.peak or a.level
        worse = _RANK[c.level] > _RANK[peak]
        if worse:  # worse than ever since raised: counted, and to be acknowledged again
            self.raised_total[c.level] += 1
            a.acked = False
            a.peak = c.level
        if worse or c.level != a.level or not a.active:
            a.active = True
            a.level = c.level  # the level and the message say what holds now
            a.message = c.message
            a.updated_at = now
            self._mark(key, a)
        elif a.message != c.message and now - a.updated_at >= 10.0:
            a.message = c.message  # the figure moves; told now and then, not every frame
            a.updated_at = now
            self._mark(key, a)
        return a

    def clear(self, node: str, kind: str, now: float) -> None:
        key = self.key(node, kind)
        a = self._alarms.get(key)
        if a is None or not a.active:
            return
        a.active = False
        a.updated_at = now
        self._mark(key, a)
        if a.acked:
            del self._alarms[key]

    def acknowledge(self, alarm_id: str, who: str, now: float) -> Alarm:
        for key, a in self._alarms.items():
            if a.id == alarm_id:
                a.acked, a.acked_by, a.acked_at, a.updated_at = True, who, now, now
                self._mark(key, a)
                if not a.active:
                    del self._alarms[key]
                return a
        raise NotFound(f"alarm {alarm_id!r}: not listed (cleared and acknowledged, or unknown)")

    def listed(self) -> list[Alarm]:
        """Red first, then unacknowledged, then newest."""
        return sorted(
            self._alarms.values(),
            key=lambda a: (-_RANK[a.level], a.acked, -a.raised_at),
        )

    def changed(self) -> list[Alarm]:
        out = list(self._changed.values())
        self._changed.clear()
        return out

    def state(self) -> dict[str, Any]:
        """Everything to rebuild the book after a restart (see :meth:`restore`)."""
        return {"seq": self._seq, "raised_total": dict(self.raised_total),
                "alarms": [a.as_dict() for a in self._alarms.values()]}

    def restore(self, state: dict[str, Any]) -> None:
        """Take back what :meth:`state` gave (the alarms listed, acknowledged or not, and
        the id sequence, so new ids never repeat old ones). ``ValueError``/``KeyError``/
        ``TypeError`` name what is wrong."""
        alarms: dict[str, Alarm] = {}
        for i, d in enumerate(state["alarms"]):
            level, peak = d["level"], d.get("peak", d["level"])
            if level not in _RANK or peak not in _RANK:
                raise ValueError(f"alarms[{i}]: level {level!r}/peak {peak!r} not yellow or red")
            a = Alarm(str(d["id"]), str(d["node"]), str(d["kind"]), level, str(d["message"]),
                      float(d["raised_at"]), float(d["updated_at"]), bool(d["active"]),
                      bool(d["acked"]), d.get("acked_by"),
                      None if d.get("acked_at") is None else float(d["acked_at"]),
                      None if peak == level else peak)
            alarms[self.key(a.node, a.kind)] = a
        seq = int(state["seq"])
        totals = state.get("raised_total", {})
        self._alarms = alarms
        self._seq = max([seq, *(int(a.id.rsplit(":", 1)[-1]) for a in alarms.values()
                                if a.id.rsplit(":", 1)[-1].isdigit())])
        self.raised_total = {"yellow": int(totals.get("yellow", 0)),
                             "red": int(totals.get("red", 0))}
        self._changed.clear()

    def counts(self) -> dict[str, int]:
        out = {"red": 0, "yellow": 0, "unacked": 0}
        for a in self._alarms.values():
            if a.active:
                out[a.level] += 1
            if not a.acked:
                out["unacked"] += 1
        return out
