"""An upper bound on the value any scheduling policy could earn on a scenario and seed.

Why: a policy's value alone does not say how much better any policy could do. The bound is
the optimum of a *fluid relaxation* of the run, a linear program solved with HiGHS
(``scipy.optimize.linprog``): every way a real run could earn value is feasible in it, so
its optimum is at least the value of every run that keeps the battery floor.

What the LP keeps (the same arrivals the run draws, the same physics):

* **jobs**: job ``j`` earns ``value_j x_j`` for a done share ``x_j`` in [0, 1] (value
  counts once); ``x_j = 0`` when its fastest run alone is longer than its deadline allows;
* **time**: node ``n`` has the seconds of slot ``s`` it is alive to compute (a crash
  removes them); a share of that time at power mode ``m`` does work at that mode's speed;
* **energy**: per node and slot, solar energy in (the array's output at the simulator's
  own step instants and illumination), the bus base load and idle compute out, plus the
  energy above idle of the work done, at the cheapest rate of its mode;
  the battery obeys ``e[s+1] <= e[s] + eta_c net`` and ``e[s+1] <= e[s] + net / eta_d``
  (the real step is the smaller of the two, and a sum of per-step minima is at most the
  minimum of the sums), ``e <= capacity`` and ``e >= floor`` at every slot boundary (the
  run keeps the floor at every step boundary, and slot boundaries are step boundaries);
  where the bus alone, with compute off, goes below the floor, the limit is that
  compute-off level instead;
* **deadlines by slot**: a job's work may go into any slot that overlaps
  [release bucket start, deadline];
* **uplink**: a ground job runs only after its inputs went up: its bytes are uplinked in
  slots from its release on, each station sends at most the fastest uplink rate (an optical
  station's own if faster) times its antennas times the
  time some satellite is in view (sampled at the steps, widened by one step after each
  contact run, outages removed), and a job's work in a slot cannot exceed what was
  uplinked before (as a buffer of bytes up but not yet processed).

What it relaxes, each making the LP larger, never smaller, than any real run:
inter-satellite links and handover time (work is pooled across nodes in each slot, one job
may even run on several nodes at once), models and their transfer, result delivery (the
ground need not receive the result), thermal limits and heaters, throttle and safe mode,
pre-emption and its costs (work is fluid), the roofline per job (a class's work uses the
best time and energy ratio of its jobs at each mode), deadlines rounded out to slots and
releases rounded down to buckets of up to a tenth of the deadline. It does not bound runs
that break the floor: ``reserve="empty"`` lowers the limit to an empty battery for those.

The LP's size is about nodes x slots x (modes + 1); ``slot_s`` trades tightness for time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp  # type: ignore[import-untyped]
from scipy.optimize import linprog  # type: ignore[import-untyped]

from flightsw.clock import VirtualClock
from flightsw.node.scheduler import ModeSpec, Work
from flightsw.physics import frames, power, sun
from flightsw.sim.engine import Simulation
from flightsw.sim.world import World

__all__ = ["Bound", "Fluid", "fluid_of_world", "solve_fluid", "value_bound"]

F = npt.NDArray[np.float64]
I = npt.NDArray[np.int64]  # noqa: E741 (the usual name of an index array)
_METHOD = "highs-ipm"  # interior point: 1.5 x faster than dual simplex on the benchmark LP


@dataclass(frozen=True)
class Fluid:
    """The data of the fluid LP (the simulator builds it; tests write it by hand).

    Work is counted in seconds at the fastest mode ("work seconds"). ``time_per_s[k, m]``:
    node seconds per work second of kind ``k`` at mode ``m`` (``inf``: unusable);
    ``wh_per_s[k, m]``: energy above idle per work second, Wh.
    """

    capacity_s: F  # (N, S) seconds each node can compute in each slot
    solar_wh: F  # (N, S) energy from the array
    base_wh: F  # (N, S) bus base load + idle compute
    e0_wh: F  # (N,)
    floor_wh: F  # (N, S) lowest battery allowed at the end of each slot
    cap_wh: F  # (N,)
    eta_c: F  # (N,)
    eta_d: F  # (N,)
    time_per_s: F  # (K, M)
    wh_per_s: F  # (K, M)
    job_kind: I  # (J,)
    job_value: F  # (J,)
    job_work_s: F  # (J,)
    job_first: I  # (J,) first slot the job's work may use
    job_last: I  # (J,) last slot (inclusive)
    job_possible: npt.NDArray[np.bool_]  # (J,) false: cannot finish by its deadline at all
    job_uplink_bytes: F  # (J,) 0 for jobs that need no uplink
    uplink_bytes: F = field(default_factory=lambda: np.zeros(0))  # (S,) per slot, all stations
    job_class: I | None = None  # (J,) for per-class figures


@dataclass(frozen=True)
class Bound:
    """The LP's optimum and what it was computed on."""

    value: float  # the upper bound on value goodput
    value_submitted: float  # value of every job the run will submit (the trivial bound)
    per_class: dict[int, float]
    status: str
    solve_s: float
    variables: int
    constraints: int
    slot_s: float = 0.0
    reserve: str = "floor"


def _hull_modes(tau: F, eps: F) -> list[int]:
    """Modes on the lower convex hull of (time, energy) per work second: any other mode is
    a mix of two hull modes that is no slower and spends no more."""
    ok = [m for m in range(len(tau)) if math.isfinite(tau[m])]
    keep = []
    for m in ok:
        dominated = False
        for a in ok:
            for b in ok:
                if m in (a, b):
                    continue
                if tau[a] <= tau[m] <= tau[b] and tau[a] < tau[b]:
                    w = (tau[m] - tau[a]) / (tau[b] - tau[a])
                    if (1 - w) * eps[a] + w * eps[b] <= eps[m] * (1 + 1e-12):
                        dominated = True
                elif tau[a] <= tau[m] and eps[a] <= eps[m] and (tau[a], eps[a]) != (
                        tau[m], eps[m]):
                    dominated = True
        if not dominated:
            keep.append(m)
    return keep


def solve_fluid(fl: Fluid) -> tuple[float, F, str, int, int, float]:
    """Optimum of the fluid LP: (value, x per job, status, variables, constraints, seconds)."""
    n_nodes, n_slots = (int(v) for v in fl.capacity_s.shape)
    n_jobs = len(fl.job_value)
    # groups: jobs of one kind with the same window (and uplink need) are pooled exactly
    ground = fl.job_uplink_bytes > 0
    keys = np.stack([fl.job_kind, fl.job_first, fl.job_last, ground.astype(np.int64)], axis=1)
    keys_u, group = np.unique(keys, axis=0, return_inverse=True)
    group = group.reshape(-1)
    n_groups = len(keys_u)
    # variable layout
    nv = 0
    x0 = nv
    nv += n_jobs
    z_start = np.zeros(n_groups, dtype=np.int64)
    for g in range(n_groups):
        z_start[g] = nv
        nv += int(keys_u[g, 2] - keys_u[g, 1] + 1)
    kinds = fl.time_per_s.shape[0]
    usable = [(k, m) for k in range(kinds) for m in _hull_modes(fl.time_per_s[k], fl.wh_per_s[k])]
    u0 = nv  # u[n, q, s] for q over usable (kind, mode)
    nq = len(usable)
    nv += n_nodes * nq * n_slots
    e0 = nv  # e[n, s] for s = 1..S (battery at the end of slot s)
    nv += n_nodes * n_slots
    gro = [g for g in range(n_groups) if keys_u[g, 3]]
    y_start: dict[int, int] = {}
    for g in gro:  # y (bytes uplinked) then d (bytes up, not yet processed), per slot
        y_start[g] = nv
        nv += 2 * int(keys_u[g, 2] - keys_u[g, 1] + 1)

    def u_ix(n: int, q: int, s: int) -> int:
        return u0 + (n * nq + q) * n_slots + s

    rows_eq: list[int] = []
    cols_eq: list[int] = []
    vals_eq: list[float] = []
    b_eq: list[float] = []
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    b_ub: list[float] = []

    def eq(entries: Sequence[tuple[int, float]], rhs: float) -> None:
        r = len(b_eq)
        for c, v in entries:
            rows_eq.append(r)
            cols_eq.append(c)
            vals_eq.append(v)
        b_eq.append(rhs)

    def le(entries: Sequence[tuple[int, float]], rhs: float) -> None:
        r = len(b_ub)
        for c, v in entries:
            rows.append(r)
            cols.append(c)
            vals.append(v)
        b_ub.append(rhs)

    # (group) work of a group's slots = work of its done shares
    members: list[list[int]] = [[] for _ in range(n_groups)]
    for j in range(n_jobs):
        members[int(group[j])].append(j)
    for g in range(n_groups):
        width = int(keys_u[g, 2] - keys_u[g, 1] + 1)
        entries = [(int(z_start[g]) + i, 1.0) for i in range(width)]
        entries += [(x0 + j, -float(fl.job_work_s[j])) for j in members[g]]
        eq(entries, 0.0)
    # (pool) per kind and slot: the groups' work <= the nodes' work of that kind
    by_kind_slot: dict[tuple[int, int], list[int]] = {}
    for g in range(n_groups):
        k, first, last = (int(v) for v in keys_u[g, :3])
        for s in range(first, last + 1):
            by_kind_slot.setdefault((k, s), []).append(int(z_start[g]) + s - first)
    for (k, s), zs in by_kind_slot.items():
        entries = [(c, 1.0) for c in zs]
        entries += [(u_ix(n, q, s), -1.0) for n in range(n_nodes)
                    for q, (kq, _) in enumerate(usable) if kq == k]
        le(entries, 0.0)
    # (time) and (energy) per node and slot
    for n in range(n_nodes):
        ec, ed = float(fl.eta_c[n]), float(fl.eta_d[n])
        for s in range(n_slots):
            le([(u_ix(n, q, s), float(fl.time_per_s[k, m])) for q, (k, m) in enumerate(usable)],
               float(fl.capacity_s[n, s]))
            net = float(fl.solar_wh[n, s] - fl.base_wh[n, s])
            prev = [] if s == 0 else [(e0 + n * n_slots + s - 1, -1.0)]
            start = float(fl.e0_wh[n]) if s == 0 else 0.0
            here = (e0 + n * n_slots + s, 1.0)
            use = [(u_ix(n, q, s), float(fl.wh_per_s[k, m])) for q, (k, m) in enumerate(usable)]
            le([here, *prev, *((c, ec * v) for c, v in use)], start + ec * net)
            le([here, *prev, *((c, v / ed) for c, v in use)], start + net / ed)
    # (uplink) per slot: bytes sent <= capacity; per ground group: a buffer that work drains
    if gro:
        per_slot: dict[int, list[int]] = {}
        for g in gro:
            first, last = int(keys_u[g, 1]), int(keys_u[g, 2])
            width = last - first + 1
            js = members[g]
            beta = float(np.min(fl.job_uplink_bytes[js] / fl.job_work_s[js]))
            for i in range(width):
                y, d = y_start[g] + i, y_start[g] + width + i
                per_slot.setdefault(first + i, []).append(y)
                prev_d = [] if i == 0 else [(d - 1, -1.0)]
                eq([(d, 1.0), *prev_d, (y, -1.0), (int(z_start[g]) + i, beta)], 0.0)
        for s, ys in per_slot.items():
            le([(y, 1.0) for y in ys], float(fl.uplink_bytes[s]))
    bounds = np.zeros((nv, 2))
    bounds[:, 1] = np.inf
    bounds[x0:x0 + n_jobs, 1] = np.where(fl.job_possible, 1.0, 0.0)
    for n in range(n_nodes):
        lo = np.minimum(fl.floor_wh[n], fl.cap_wh[n])
        bounds[e0 + n * n_slots:e0 + (n + 1) * n_slots, 0] = lo
        bounds[e0 + n * n_slots:e0 + (n + 1) * n_slots, 1] = fl.cap_wh[n]
    c = np.zeros(nv)
    c[x0:x0 + n_jobs] = -fl.job_value
    a_ub = sp.csr_matrix((vals, (rows, cols)), shape=(len(b_ub), nv))
    a_eq = sp.csr_matrix((vals_eq, (rows_eq, cols_eq)), shape=(len(b_eq), nv))
    clock = VirtualClock(0.0)  # host time of the solve: measured, not part of the result
    t = clock.perf_counter()
    res = linprog(c, A_ub=a_ub, b_ub=np.asarray(b_ub), A_eq=a_eq, b_eq=np.asarray(b_eq),
                  bounds=bounds, method=_METHOD)
    took = clock.perf_counter() - t
    if res.status != 0:
        raise RuntimeError(f"fluid bound: HiGHS did not solve the LP: {res.message}")
    xs = np.asarray(res.x[x0:x0 + n_jobs], dtype=np.float64)
    return float(-res.fun), xs, str(res.message), nv, len(b_ub) + len(b_eq), took


# ------------------------------------------------------------------ from a scenario
def _step_times(world: World, tail_s: float) -> F:
    """The simulator's step instants t_0 = t0, t_1, ... (its main loop's rule): every
    ``step_s`` to the end of the mission, then every ``step_s`` after it for the tail."""
    step = world.scenario.step_s
    steps = max(1, math.ceil(world.mission_s / step - 1e-9))
    tail = math.ceil(tail_s / step - 1e-9)
    k = np.arange(1, steps + tail + 1, dtype=np.float64)
    t = np.where(k < steps, world.t0 + k * step, world.t_end + (k - steps) * step)
    return np.concatenate(([world.t0], t))


def _dead(world: World, n_nodes: int) -> list[list[tuple[float, float]]]:
    out: list[list[tuple[float, float]]] = [[] for _ in range(n_nodes)]
    for f in world.faults:
        if f.kind == "crash" and f.node is not None:
            out[f.node].append((f.start, math.inf if f.end is None else f.end))
    return out


def _overlap(a: F, b: F, lo: float, hi: float) -> F:
    return np.asarray(np.clip(np.minimum(b, hi) - np.maximum(a, lo), 0.0, None))


def _sums(per_step: F, m: int) -> F:
    """(N, steps) -> (N, slots): sums over consecutive groups of ``m`` steps."""
    n, k = per_step.shape
    slots = -(-k // m)
    pad = np.zeros((n, slots * m))
    pad[:, :k] = per_step
    return np.asarray(pad.reshape(n, slots, m).sum(axis=2))


def fluid_of_world(world: World, *, slot_s: float = 60.0,
                   reserve: Literal["floor", "empty"] = "floor") -> tuple[Fluid, float]:
    """The fluid LP of ``world`` (its scenario and seed), and the value the run submits.

    Uses the run's own arrival draw and initial state (a :class:`Simulation` of the world,
    never run). All nodes must share one hardware profile.
    """
    sim = Simulation(world)  # never run: the run's own arrivals and initial state
    specs = {id(nd.spec): nd.spec for nd in sim.nodes}
    if len(specs) != 1:
        raise ValueError("fluid bound: every node must share one hardware profile "
                         f"(this scenario has {len(specs)})")
    spec = sim.nodes[0].spec
    n_nodes = world.n
    step = world.scenario.step_s
    times = _step_times(world, sim.tail_max_s)
    t_end_steps = times[1:]
    dt = np.diff(times)
    m = max(1, round(slot_s / step))
    n_steps = len(dt)
    n_slots = -(-n_steps // m)
    slot_start = times[np.arange(n_slots) * m]
    slot_end = times[np.minimum((np.arange(n_slots) + 1) * m, n_steps)]
    # physics at the step instants (the simulator samples illumination at a step's end)
    b = sim.budget
    illum = np.empty((n_nodes, n_steps))
    n_st = len(world.stations)
    seen = np.zeros((n_st, n_steps), dtype=bool)
    st_ecef = np.array([s.station.ecef_km for s in world.stations]).reshape(-1, 3)
    st_up = np.array([s.station.up for s in world.stations]).reshape(-1, 3)
    st_sin = np.sin(np.radians([s.min_elevation_deg for s in world.stations]))
    dead = _dead(world, n_nodes)
    alive_at = np.ones((n_nodes, n_steps), dtype=bool)
    idle_paid = np.ones((n_nodes, n_steps), dtype=bool)
    capacity = np.zeros((n_nodes, n_slots))
    for n in range(n_nodes):
        capacity[n] = slot_end - slot_start
        for c0, c1 in dead[n]:
            alive_at[n] &= ~((c0 <= t_end_steps) & (t_end_steps < c1))
            idle_paid[n] &= _overlap(times[:-1], t_end_steps, c0, c1) <= 0.0
            capacity[n] -= _overlap(slot_start, slot_end, c0, c1)
    block = max(1, 2_000_000 // max(n_nodes, 1))
    for k0 in range(0, n_steps, block):
        tk = t_end_steps[k0:k0 + block]
        pos = world.orbits.positions_many(tk)  # (T, N, 3)
        illum[:, k0:k0 + len(tk)] = sun.illumination(pos, sun.sun_position_km(tk)[:, None, :]).T
        if n_st:
            g = frames.gmst_rad(tk)[:, None]
            x, y, z = pos[..., 0], pos[..., 1], pos[..., 2]
            r = np.stack((np.cos(g) * x + np.sin(g) * y, -np.sin(g) * x + np.cos(g) * y, z),
                         axis=-1)
            for s in range(n_st):
                rho = r - st_ecef[s]
                sin_el = (rho @ st_up[s]) / np.linalg.norm(rho, axis=-1)
                vis = (sin_el > st_sin[s]) & alive_at[:, k0:k0 + len(tk)].T
                seen[s, k0:k0 + len(tk)] = vis.any(axis=1)
    solar_w = np.asarray(power.solar_power_w(b.power, illum.T, 1.0)).T  # params are per node
    base_w = b.base_load_w[:, None] + np.where(idle_paid, b.idle_w[:, None], 0.0)
    solar_wh = solar_w * dt / 3600.0
    base_wh = base_w * dt / 3600.0
    eta_c = np.asarray(b.power.charge_efficiency, dtype=np.float64) * np.ones(n_nodes)
    eta_d = np.asarray(b.power.discharge_efficiency, dtype=np.float64) * np.ones(n_nodes)
    cap = b.capacity_wh.copy()
    e0 = b.battery_wh.copy()
    if reserve == "empty":
        floor = np.zeros((n_nodes, n_slots))
    else:  # the floor, or where the bus alone (compute off) goes below it, that level
        e = e0.copy()
        off = np.empty((n_nodes, n_steps))
        for k in range(n_steps):
            net = solar_wh[:, k] - base_wh[:, k]
            e = np.clip(e + np.where(net >= 0, net * eta_c, net / eta_d), 0.0, cap)
            off[:, k] = e
        off_end = off[:, np.minimum((np.arange(n_slots) + 1) * m, n_steps) - 1]
        floor = np.minimum(b.floor_wh[:, None], off_end)
    # uplink capacity: steps in view, widened by one step after each run, outages removed
    up_bytes = np.zeros(n_slots)
    if n_st:
        rate = float(max(p.links.uplink_rate_bps for p in world.profiles)) / 8.0
        for s in range(n_st):
            st = world.stations[s]
            # every antenna may send at once (a relaxation: as many satellites in view),
            # an optical station at its own rate if faster (clouds relaxed away)
            st_rate = rate if st.optical is None else max(rate, st.optical.uplink_rate_bps / 8)
            st_rate *= st.antennas
            vis = seen[s].copy()
            for f in world.faults:
                if f.kind == "ground_outage" and f.station == s:
                    end = math.inf if f.end is None else f.end
                    vis &= ~((f.start <= t_end_steps) & (t_end_steps < end))
            wide = vis.copy()
            wide[1:] |= vis[:-1]
            up_bytes += _sums((wide * dt * st_rate)[None, :], m)[0]
    # kinds: a class's best time and energy ratio per mode over its jobs
    a = sim.arrivals
    keep = np.ones(len(a), dtype=bool)
    for n in range(n_nodes):
        for c0, c1 in dead[n]:
            keep &= ~((a.node == n) & (c0 < a.t) & (a.t < c1))  # dropped at a dead node
    modes: tuple[ModeSpec, ...] = spec.modes
    idle = float(spec.profile.compute.idle_w)
    cls_of = a.cls[keep]
    items = a.items[keep]
    t_arr = a.t[keep]
    n_jobs = len(t_arr)
    work_s = np.zeros(n_jobs)
    up_b = np.zeros(n_jobs)
    value = np.zeros(n_jobs)
    first = np.zeros(n_jobs, dtype=np.int64)
    last = np.zeros(n_jobs, dtype=np.int64)
    possible = np.ones(n_jobs, dtype=bool)
    tau_rows: list[list[float]] = []
    eps_rows: list[list[float]] = []
    for c in world.classes:
        idx = np.nonzero(cls_of == c.index)[0]
        tau = [math.inf] * len(modes)
        eps = [math.inf] * len(modes)
        for j in idx.tolist():
            w: Work = spec.work(c.flops_per_item, c.bytes_per_item, c.weight_bytes,
                                int(items[j]))
            fast = spec.seconds(w)
            work_s[j] = fast
            for q, md in enumerate(modes):
                lat = w.latency_s(md, spec.bandwidth_bps)
                tau[q] = min(tau[q], lat / fast)
                eps[q] = min(eps[q], (md.watts - idle) * lat / fast / 3600.0)
        tau_rows.append(tau)
        eps_rows.append(eps)
        value[idx] = c.value
        if c.origin == "ground":
            up_b[idx] = c.input_bytes_per_item * items[idx]
        rel = np.searchsorted(slot_start, t_arr[idx], side="right") - 1
        if c.deadline_s is None:
            dl = np.full(len(idx), slot_end[-1])
        else:
            dl = t_arr[idx] + c.deadline_s
            possible[idx] = work_s[idx] <= c.deadline_s + 1e-6
        due = np.searchsorted(slot_start, dl, side="left") - 1
        bucket = max(1, int((c.deadline_s or 0.0) / 10.0 // (slot_end[0] - slot_start[0])))
        first[idx] = (rel // bucket) * bucket
        last[idx] = np.minimum((due // bucket + 1) * bucket - 1, n_slots - 1)
    # one kind per distinct (time, energy) profile
    prof = [tuple(r1 + r2) for r1, r2 in zip(tau_rows, eps_rows, strict=True)]
    distinct = sorted(set(prof))
    kind_of_class = np.array([distinct.index(p) for p in prof], dtype=np.int64)
    fl = Fluid(
        capacity_s=capacity, solar_wh=_sums(solar_wh, m), base_wh=_sums(base_wh, m),
        e0_wh=e0, floor_wh=floor, cap_wh=cap, eta_c=eta_c, eta_d=eta_d,
        time_per_s=np.array([p[:len(modes)] for p in distinct]),
        wh_per_s=np.array([p[len(modes):] for p in distinct]),
        job_kind=kind_of_class[cls_of], job_value=value, job_work_s=work_s,
        job_first=first, job_last=last, job_possible=possible, job_uplink_bytes=up_b,
        uplink_bytes=up_bytes, job_class=cls_of.astype(np.int64),
    )
    return fl, float(value.sum())


def value_bound(world: World, *, slot_s: float = 60.0,
                reserve: Literal["floor", "empty"] = "floor") -> Bound:
    """The fluid upper bound on ``world``'s value goodput (see the module docstring)."""
    fl, submitted = fluid_of_world(world, slot_s=slot_s, reserve=reserve)
    best, xs, status, nv, nc, took = solve_fluid(fl)
    assert fl.job_class is not None
    per_class = {c.index: float(np.sum((xs * fl.job_value)[fl.job_class == c.index]))
                 for c in world.classes}
    return Bound(best, submitted, per_class, status, took, nv, nc, slot_s, reserve)
