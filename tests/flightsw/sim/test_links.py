"""ISL topology of the simulation: range, line of sight past the Earth, outages."""

from __future__ import annotations

import numpy as np
import pytest

from flightsw.physics import walker
from flightsw.physics.constants import R_EARTH
from flightsw.physics.isl import line_of_sight, nearest_links
from flightsw.sim.links import Topology, nearest_visible
from flightsw.sim.world import FaultSpec

T = 1.75e9


@pytest.mark.parametrize(("n", "planes"), [(24, 4), (1200, 30)])
def test_nearest_visible_matches_the_exact_search(n: int, planes: int) -> None:
    orb = walker(n, planes, 1, 550.0, 53.0, T)
    for dt in (0.0, 1234.0):
        pos = orb.positions(T + dt)
        fast = nearest_visible(pos, 4, 5000.0)
        exact = nearest_links(pos, 4, 5000.0)
        d_fast = np.where(fast >= 0, np.linalg.norm(pos[fast] - pos[:, None, :], axis=2), -1)
        d_exact = np.where(exact >= 0, np.linalg.norm(pos[exact] - pos[:, None, :], axis=2), -1)
        assert np.allclose(np.sort(d_fast, axis=1), np.sort(d_exact, axis=1))


def _topology(n: int, range_km: float, outages: list[FaultSpec] | None = None) -> Topology:
    return Topology(np.full(n, range_km), np.full(n, 10e9), np.full(n, 0.001), outages or [],
                    terminals=3, refresh_s=60.0)


def test_links_respect_range_and_line_of_sight() -> None:
    r = R_EARTH + 550.0
    pos = np.array([
        [r, 0.0, 0.0],
        [r * np.cos(0.1), r * np.sin(0.1), 0.0],  # 693 km away, clear
        [-r, 0.0, 0.0],  # opposite side: behind the Earth, 13,856 km
        [r, 3000.0, 0.0],  # 3,000 km away: beyond a 2,000 km terminal
    ])
    alive = np.ones(4, dtype=bool)
    topo = _topology(4, 2000.0)
    assert topo.up(0, 1, pos, T, alive) is not None
    assert topo.up(0, 2, pos, T, alive) is None
    assert topo.up(0, 3, pos, T, alive) is None
    long = _topology(4, 20_000.0)
    assert not line_of_sight(pos[0], pos[2])
    assert long.up(0, 2, pos, T, alive) is None  # in range, but the Earth is in the way
    link = long.up(0, 1, pos, T, alive)
    assert link is not None
    assert link.latency_s == pytest.approx(link.range_km / 299_792.458 + 0.001)
    dead = alive.copy()
    dead[1] = False
    assert long.up(0, 1, pos, T, dead) is None


def test_every_listed_link_is_in_range_and_clear_of_the_earth() -> None:
    orb = walker(24, 4, 1, 550.0, 53.0, T)
    topo = _topology(24, 5000.0)
    alive = np.ones(24, dtype=bool)
    seen = 0
    for dt in np.arange(0.0, 5739.0, 300.0):
        pos = orb.positions(T + dt)
        got = topo.links_for(np.arange(24), pos, T + dt, alive)
        for i, links in got.items():
            assert [lk.peer for lk in links] == [lk.peer for lk in topo.links_of(i, pos, T + dt,
                                                                                  alive)]
            for lk in links:
                seen += 1
                assert np.linalg.norm(pos[lk.peer] - pos[i]) <= 5000.0
                assert line_of_sight(pos[i], pos[lk.peer])
    assert seen > 100


def test_outages_cut_a_node_or_a_pair_for_their_window() -> None:
    r = R_EARTH + 550.0
    pos = np.array([[r, 0, 0], [r, 500.0, 0], [r, 0, 500.0]])
    alive = np.ones(3, dtype=bool)
    node_out = FaultSpec("isl_outage", 0, None, None, T + 10, T + 20)
    pair_out = FaultSpec("isl_outage", 1, 2, None, T + 10, T + 20)
    topo = _topology(3, 2000.0, [node_out, pair_out])
    assert topo.up(0, 1, pos, T, alive) is not None
    assert topo.up(0, 1, pos, T + 15, alive) is None
    assert topo.up(2, 0, pos, T + 15, alive) is None
    assert topo.up(1, 2, pos, T + 15, alive) is None
    assert topo.up(1, 2, pos, T + 20, alive) is not None
