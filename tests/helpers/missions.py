"""Archives of real protocol messages for the archive, replay, export and report tests.

The ``mission`` and ``mission_writer`` fixtures in ``tests/conftest.py`` build on these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from flightsw.archive import ArchiveWriter
from flightsw.protocol import JobResult, Status, Telemetry, Tensor, dump, topics

EPOCH = 1_790_000_000.0  # 2026-09-21T14:13:20Z
ORBIT_S = 95.65 * 60  # 550 km circular (DESIGN_BRIEF reference figure)
ECLIPSE_FRACTION = 0.37
LOAD_W = {"low": 60.0, "balanced": 120.0, "max": 200.0}  # per power mode


@dataclass
class MissionLog:
    """What a synthetic mission wrote: every record in append order."""

    path: Path
    records: list[tuple[float, str, bytes]] = field(default_factory=list)
    nodes: dict[str, str] = field(default_factory=dict)  # node -> profile


def make_telemetry(node: str, profile: str, seq: int, t: float, *, done: int = 0,
                   rng: np.random.Generator | None = None) -> Telemetry:
    """Telemetry with a plausible state at mission time ``t`` (eclipse, battery, heat)."""
    rng = rng or np.random.default_rng(seq)
    phase = ((t - EPOCH) % ORBIT_S) / ORBIT_S
    sunlit = 0.0 if phase > 1.0 - ECLIPSE_FRACTION else 1.0
    soc = 0.65 + 0.2 * math.cos(2 * math.pi * phase) + float(rng.normal(0, 0.002))
    temp = 18.0 + 12.0 * math.sin(2 * math.pi * phase) + float(rng.normal(0, 0.1))
    mode = "low" if sunlit < 0.5 else ("max" if soc > 0.7 else "balanced")
    return Telemetry(
        node=node, seq=seq, t=t, profile=profile,
        lat_deg=51.6 * math.sin(2 * math.pi * phase), lon_deg=(phase * 360.0) - 180.0,
        alt_km=550.0 + float(rng.normal(0, 0.05)), sunlit=sunlit, beta_deg=12.5,
        solar_w=0.0 if sunlit < 0.5 else 410.0 + float(rng.normal(0, 1)),
        load_w=LOAD_W[mode] + float(rng.normal(0, 2)), battery_wh=soc * 1500.0, soc=soc,
        temperature_c=temp, power_mode=mode, safe_mode=False, paused=False,
        queue_depth=int(rng.integers(0, 5)), jobs_running=int(rng.integers(0, 2)),
        jobs_done=done, jobs_failed=0, energy_used_j=float(seq) * 3.6e3, upsets=0,
    )


def make_result(node: str, job: int, t: float, rng: np.random.Generator) -> JobResult:
    logits = rng.normal(size=(2, 10)).astype(np.float32)
    return JobResult(
        job_id=f"job-{node}-{job:04d}", epoch=0, node=node, status="done",
        outputs={"logits": Tensor.from_array(logits),
                 "label": Tensor.from_array(np.argmax(logits, axis=1).astype(np.int64))},
        items=2, host_wall_s=0.0012, modelled_latency_s=0.034, modelled_energy_j=1.02,
        power_mode="balanced", submitted_at=t - 40.0, accepted_at=t - 30.0,
        started_at=t - 0.5, finished_at=t, value=1.0,
    )


def write_mission(path: Path, *, nodes: dict[str, str], hours: float = 3.0,
                  period_s: float = 30.0, seed: int = 7, **writer_kw: Any) -> MissionLog:
    """Status, telemetry every ``period_s`` and a result now and then, per node.

    Reception times jitter by up to 0.4 s, so records are only nearly in ``t`` order.
    """
    rng = np.random.default_rng(seed)
    log = MissionLog(path, nodes=dict(nodes))
    n = int(hours * 3600 / period_s)
    with ArchiveWriter(path, **writer_kw) as w:
        for node, profile in nodes.items():
            rec = (EPOCH - 1.0, topics.status(node),
                   dump(Status(node=node, state="online", t=EPOCH - 1.0, profile=profile)))
            w.append(*rec)
            log.records.append(rec)
        done = dict.fromkeys(nodes, 0)
        for k in range(n):
            t = EPOCH + k * period_s
            for node, profile in nodes.items():
                if rng.random() < 0.3:
                    done[node] += 1
                    result = make_result(node, done[node], t - 1.0, rng)
                    rec = (t - 1.0 + float(rng.uniform(0, 0.4)), topics.result(node),
                           dump(result))
                    w.append(*rec)
                    log.records.append(rec)
                tel = make_telemetry(node, profile, k, t, done=done[node], rng=rng)
                rec = (t + float(rng.uniform(0, 0.4)), topics.telemetry(node), dump(tel))
                w.append(*rec)
                log.records.append(rec)
    return log


class MissionHelpers:
    """The helpers above as one object (the ``mission_writer`` fixture)."""

    EPOCH = EPOCH
    write = staticmethod(write_mission)
    telemetry = staticmethod(make_telemetry)
    result = staticmethod(make_result)
