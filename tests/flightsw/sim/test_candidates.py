"""The simulator's nodes as the chain rule sees them (flightsw/sim/candidates.py)."""

from __future__ import annotations

from sim_cases import scenario, small

from flightsw.constellation.chain import track_times
from flightsw.sim import Simulation, build_world
from flightsw.sim.candidates import candidates, links_now

NAMES = ["S0", "S1", "S2"]


def _sim() -> Simulation:
    sats = [{"name": n, "altitude_km": 550.0, "inclination_deg": 53.0,
             "arg_latitude_deg": 2.0 * k} for k, n in enumerate(NAMES)]
    data = small(constellation={"satellites": sats}, profiles={"default": "starcloud-h100"},
                 duration_hours=0.1)
    return Simulation(build_world(scenario(data)))


def test_heads_owed_seconds_and_tracks() -> None:
    sim = _sim()
    t = sim.w.t0
    now = candidates(sim, [0, 1, 2], t)
    assert [c.node for c in now] == NAMES
    assert all(c.in_contact for c in now) and all(c.track_km == () for c in now)
    idle = [c.backlog_s for c in now]
    got = candidates(sim, [2, 0], t, 600.0, heads={0}, owed_s=[5.0, 0.0, 7.5])
    assert [c.node for c in got] == ["S2", "S0"]
    assert [c.in_contact for c in got] == [False, True]
    assert [c.backlog_s for c in got] == [idle[2] + 7.5, idle[0] + 5.0]
    # one position per sample time, the first where the node is at that time
    times = track_times(t, 600.0)
    assert len(times) > 0 and all(len(c.track_km) == len(times) for c in got)
    assert got[1].position_km == now[0].position_km
    assert candidates(sim, [], t, 600.0) == []


def test_links_now_are_the_links_up_and_end_with_a_crash() -> None:
    sim = _sim()
    out = links_now(sim, sim.w.t0)
    assert out(1) == {0, 2}  # 2 deg apart in one orbit: each linked to its neighbours
    assert 1 in out(0) and 1 in out(2)
    sim.alive[2] = False
    assert links_now(sim, sim.w.t0)(1) == {0}
