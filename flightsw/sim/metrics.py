"""Metrics of a finished run, and their stable JSON form (``metrics.json``).

Definitions (see ``docs/scenarios.md``):

* a job is *done* when the ground recorded its result (exactly once); it is *on time* when
  it finished on board before its deadline (delivery to the ground is reported apart,
  because contact windows, not the scheduler, decide it);
* ``jobs_lost`` = submitted - done - failed after the end-of-run audit (must be 0);
  ``duplicate_results`` counts jobs with more than one recorded outcome (must be 0);
* ``value_goodput`` is the sum of the values of jobs done on time;
  ``deadline_miss_rate`` is the share of jobs with a deadline not done on time;
* latencies are submission to on-board finish of done jobs (``delivery_latency_*``:
  submission to the ground receiving the result);
* ``energy_per_job_j`` is all modelled compute energy spent on jobs (including runs that
  were stopped or whose result was discarded) over jobs done;
* ``migrations_per_job`` is completed handovers over jobs submitted;
* ``lifetime`` (only with ``lifetime_events = true``): ``nodes_failed`` and
  ``accelerators_lost`` (nodes whose accelerators failed for good, and how many those
  held), ``manoeuvres`` flown, ``manoeuvre_paused_s`` (node-seconds of compute paused by
  them) and ``propulsion_energy_j`` (what their thrusters drew from the batteries);
* ``pipeline`` (only with a job class of ``stages > 1``): per pipeline class, its jobs,
  throughput over the run, latency, the mean stage and hop seconds of the chain that
  finished each job and the hops' share, and ``totals`` of chain searches, re-plans,
  searches that found no chain, hops and broken hops (:mod:`flightsw.sim.pipeline`);
* ``training`` (only with a job class of ``train_steps > 0``): per training class, steps
  done, redone steps, re-plans, step seconds (mean, p95), ``comm_share`` (all-reduce over
  step seconds), ``straggler_share`` (slowest less mean member time over step seconds) and
  samples per second of the steps kept (:mod:`flightsw.sim.training`);
* ``preemptions`` counts runs suspended to let another job run (0 where the engine does not
  pre-empt);
* ``battery_reserve_mean`` (only for a :class:`MeteredSimulation`) is the battery above the
  depth-of-discharge floor as a share of capacity, averaged over live nodes and physics
  steps (negative below the floor); ``battery_soc_mean`` the state of charge alike. This is
  the figure Equinox compares ("mean battery reserve").

Everything but ``wall_s`` (and ``host_inference_s`` when models are executed) is a pure
function of the scenario and the seed; :func:`dumps_metrics` writes sorted keys and floats
rounded to 9 significant digits, so two runs with the same seed give the same bytes once
``wall_s`` is set aside (:func:`without_wall`).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import numpy as np

from flightsw.node.spec import NodeSpec
from flightsw.sim.engine import Simulation
from flightsw.sim.ledger import Job
from flightsw.sim.pipeline import pipeline_metrics
from flightsw.sim.training import training_metrics

__all__ = [
    "HOST_KEYS",
    "MeteredSimulation",
    "collect_metrics",
    "dumps_metrics",
    "lifetime_metrics",
    "without_wall",
]

#: Keys measured on the host (not reproducible run to run).
HOST_KEYS = ("wall_s", "host_inference_s")


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return float(np.percentile(np.asarray(values), q))


def _reason_code(reason: str) -> str:
    """A short, stable key for a failure reason (the text before details)."""
    head = reason.split(":", 1)[0].split("(", 1)[0].strip()
    return head.replace(" ", "_")


def _figures(jobs: list[Job]) -> dict[str, Any]:
    done = [j for j in jobs if j.outcome == "done"]
    failed = [j for j in jobs if j.outcome == "failed"]
    on_time = [j for j in done if j.on_time]
    with_dl = [j for j in jobs if j.deadline is not None]
    missed = [j for j in with_dl if not j.on_time]
    lat = [j.finished_at - j.submitted_at for j in done]
    dlv = [j.delivered_at - j.submitted_at for j in done]
    return {
        "jobs_submitted": len(jobs),
        "jobs_completed": len(done),
        "jobs_failed": len(failed),
        "jobs_on_time": len(on_time),
        "completion_rate": len(done) / len(jobs) if jobs else None,
        "value_submitted": float(sum(j.value for j in jobs)),
        "value_goodput": float(sum(j.value for j in on_time)),
        "deadline_miss_rate": len(missed) / len(with_dl) if with_dl else None,
        "latency_p50_s": _pct(lat, 50),
        "latency_p95_s": _pct(lat, 95),
        "latency_p99_s": _pct(lat, 99),
        "delivery_latency_p50_s": _pct(dlv, 50),
        "delivery_latency_p95_s": _pct(dlv, 95),
    }


def offered_load(sim: Simulation) -> float:
    """Submitted work as a share of the fleet's capacity: modelled seconds of every arrival
    at its class's roofline on the fastest mode of the average node, over node-seconds of
    the mission (1.0 = every node busy all the time at full speed)."""
    w = sim.w
    a = sim.arrivals
    # nodes share a spec per profile: weigh each spec by its node count (one array per
    # spec, not one per node: that would be nodes x arrivals, 80 GB for 10,000 x 24 h)
    specs: dict[int, tuple[NodeSpec, int]] = {}
    for nd in sim.nodes:
        spec, count = specs.get(id(nd.spec), (nd.spec, 0))
        specs[id(nd.spec)] = (spec, count + 1)
    total = 0.0
    for c in w.classes:
        items = a.items[a.cls == c.index]
        if len(items) == 0:
            continue
        secs = np.zeros(len(items))
        for spec, count in specs.values():
            secs += count * spec.work_factor * np.maximum(
                c.flops_per_item * items / spec.fastest.ops_per_s,
                (c.weight_bytes + c.bytes_per_item * items) / spec.bandwidth_bps)
        total += float(np.sum(secs)) / w.n
    return total / (w.n * w.mission_s)


class MeteredSimulation(Simulation):
    """A :class:`Simulation` that also integrates every live node's battery over time (the
    engine keeps only extremes); :func:`collect_metrics` then reports the means."""

    reserve_s: float = 0.0  # sum over steps of dt x mean over live nodes of (soc - floor)
    soc_s: float = 0.0  # the same for the state of charge
    metered_s: float = 0.0  # sum of dt over steps with a live node

    def _physics(self, t: float, dt: float) -> None:
        super()._physics(t, dt)
        live = self.alive
        if dt <= 0 or not np.any(live):
            return
        b = self.budget
        soc = b.battery_wh[live] / b.capacity_wh[live]
        floor = b.floor_wh[live] / b.capacity_wh[live]
        self.reserve_s += dt * float(np.mean(soc - floor))
        self.soc_s += dt * float(np.mean(soc))
        self.metered_s += dt


def lifetime_metrics(sim: Simulation) -> dict[str, Any]:
    """What the lifetime events did in a run (``lifetime_events = true``): nodes whose
    accelerators were lost and how many accelerators that was, manoeuvres flown, the
    node-seconds of compute they paused (windows clipped to the end of the run and to a
    failure) and the propulsion energy they drew."""
    lts = [nd.lifetime for nd in sim.nodes if nd.lifetime is not None]
    failed = [lt for lt in lts if lt.failed]
    return {
        "nodes_failed": len(failed),
        "accelerators_lost": sum(lt.schedule.accelerators for lt in failed),
        "manoeuvres": sum(lt.flown for lt in lts),
        "manoeuvre_paused_s": sum(lt.paused_s(sim.t_stop) for lt in lts),
        "propulsion_energy_j": sum(lt.propulsion_drawn_j for lt in lts),
    }


def collect_metrics(sim: Simulation) -> dict[str, Any]:
    """Every metric of a finished :class:`Simulation` (see the module docstring)."""
    if not sim.finished:
        raise RuntimeError("collect_metrics: the simulation has not finished")
    w = sim.w
    led = sim.ledger
    jobs = list(led.jobs.values())
    st = sim.stats
    out = _figures(jobs)
    unresolved = led.unresolved()
    failed_by = Counter(_reason_code(j.reason) for j in jobs if j.outcome == "failed")
    done = out["jobs_completed"]
    per_class = {}
    for c in w.classes:
        cj = [j for j in jobs if j.cls.index == c.index]
        per_class[c.name] = _figures(cj)
    out.update(
        {
            "scenario": w.scenario.name,
            "policy": sim.policy.name,
            "seed": sim.seed,
            "satellites": w.n,
            "mission_s": w.mission_s,
            "tail_s": sim.t_stop - w.t_end,
            "step_s": sim.step_s,
            "wall_s": sim.wall_s,
            "jobs_lost": len(unresolved),
            "duplicate_results": led.duplicate_outcomes(),
            "stale_results_ignored": led.stale_results,
            "duplicate_deliveries_ignored": led.duplicate_deliveries,
            "failed_by_reason": dict(sorted(failed_by.items())),
            "energy_per_job_j": st.compute_energy_j / done if done else None,
            "compute_energy_j": st.compute_energy_j,
            "wasted_energy_j": st.wasted_energy_j,
            "battery_floor_violation_s": float(np.sum(sim.budget.floor_violation_s)),
            "thermal_violation_s": float(np.sum(sim.budget.thermal_violation_s)),
            "migrations": st.handovers,
            "migrations_per_job": st.handovers / len(jobs) if jobs else 0.0,
            "migration_bytes": st.migration_bytes,
            "handovers_aborted": st.handovers_aborted,
            "reruns": st.reruns,
            "stopped_runs": st.stopped_runs,
            "uplinks": st.uplinks,
            "uplink_retries": st.uplink_retries,
            "uplink_bytes": st.uplink_bytes,
            "relayed_results": st.relayed_results,
            "arrivals_dropped_at_crashed_node": st.arrivals_dropped,
            "drain_s": st.drain_s,
            "events": st.events,
            "per_class": per_class,
            "min_soc": sim.min_soc,
            # floor seconds of a twin with compute off: what no scheduler could prevent
            "bus_only_floor_violation_s": sim.bus_only_floor_violation_s,
            "max_temperature_c": sim.max_temp_c,
            "offered_load": offered_load(sim),
            "preemptions": int(getattr(sim, "preemptions", 0)),
        }
    )
    if w.lifetime is not None:
        out["lifetime"] = lifetime_metrics(sim)
    if sim.pipes.active:
        out["pipeline"] = pipeline_metrics(sim)
    if sim.trains.active:
        out["training"] = training_metrics(sim)
    if isinstance(sim, MeteredSimulation) and sim.metered_s > 0:
        out["battery_reserve_mean"] = sim.reserve_s / sim.metered_s
        out["battery_soc_mean"] = sim.soc_s / sim.metered_s
    if sim.execute:
        out["executed"] = st.executed
        out["host_inference_s"] = st.host_inference_s
    return out


def _round(x: Any) -> Any:
    if isinstance(x, float):
        if not math.isfinite(x):
            return None
        return float(f"{x:.9g}")
    if isinstance(x, dict):
        return {str(k): _round(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_round(v) for v in x]
    return x


def dumps_metrics(metrics: dict[str, Any]) -> str:
    """Stable JSON: sorted keys, floats to 9 significant digits, a trailing newline."""
    return json.dumps(_round(metrics), sort_keys=True, indent=2) + "\n"


def without_wall(metrics: dict[str, Any]) -> dict[str, Any]:
    """The metrics minus the host-measured keys (what must repeat for a seed)."""
    return {k: v for k, v in metrics.items() if k not in HOST_KEYS}
