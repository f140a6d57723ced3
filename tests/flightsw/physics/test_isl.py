from __future__ import annotations

import math

import numpy as np
import pytest

from flightsw.exceptions import ConfigError
from flightsw.physics.constants import C_KM_S, R_EARTH
from flightsw.physics.isl import (
    DENSE_LIMIT,
    latency_s,
    line_of_sight,
    line_of_sight_pair,
    link_matrix,
    link_pairs,
    nearest_links,
    pair_links,
    range_matrix,
)
from flightsw.physics.orbit import walker

A = R_EARTH + 550.0


def test_line_of_sight_geometry() -> None:
    # Two satellites at 550 km separated by central angle theta: the chord's lowest point is
    # at a cos(theta/2); it clears R_E + 80 km while theta < 2 acos((R_E + 80) / a).
    limit = 2 * np.degrees(np.arccos((R_EARTH + 80) / A))
    theta = np.radians(np.array([10.0, limit - 0.1, limit + 0.1, 180.0]))
    a = np.array([[A, 0.0, 0.0]] * 4)
    b = np.stack([A * np.cos(theta), A * np.sin(theta), np.zeros(4)], axis=1)
    assert line_of_sight(a, b).tolist() == [True, True, False, False]
    assert line_of_sight(a, b, margin_km=0.0)[2]  # clears the bare Earth
    assert line_of_sight(a[0], a[0])  # same point



def test_line_of_sight_pair_gives_the_vectorised_answer() -> None:
    """The one-pair form must agree with the array form everywhere, edges included."""
    rng = np.random.default_rng(7)
    n = 20_000
    a = rng.normal(size=(n, 3))
    a *= ((R_EARTH + rng.uniform(200.0, 1200.0, n)) / np.linalg.norm(a, axis=1))[:, None]
    b = a + rng.normal(size=(n, 3)) * rng.uniform(1.0, 9000.0, n)[:, None]
    b[:10] = a[:10]  # zero-length segments
    want = line_of_sight(a, b).tolist()
    got = [line_of_sight_pair(p, q) for p, q in zip(a.tolist(), b.tolist(), strict=True)]
    assert got == want
    assert 0.2 < sum(want) / n < 0.95  # both answers occur
    # the geometry test's edge, through the pair form and another margin
    limit = 2 * math.acos((R_EARTH + 80) / A)
    for theta, clear in ((limit - 0.002, True), (limit + 0.002, False)):
        far = [A * math.cos(theta), A * math.sin(theta), 0.0]
        assert line_of_sight_pair([A, 0.0, 0.0], far) is clear
    near_edge = [A * math.cos(limit - 0.002), A * math.sin(limit - 0.002), 0.0]
    assert line_of_sight_pair([A, 0.0, 0.0], near_edge, 200.0) is False

def test_range_and_link_matrix_agree_with_brute_force() -> None:
    orb = walker(60, 6, 1, 550.0, 53.0, 1.7e9, j2=False)
    r = orb.positions(1.7e9)
    rng = range_matrix(r)
    brute = np.array([[np.linalg.norm(r[i] - r[j]) for j in range(60)] for i in range(60)])
    assert np.allclose(rng, brute)
    links = link_matrix(r, 3000.0)
    expected = (brute <= 3000.0) & line_of_sight(r[:, None, :], r[None, :, :])
    np.fill_diagonal(expected, False)
    assert np.array_equal(links, expected)
    assert np.array_equal(links, links.T)
    pairs = link_pairs(r, 3000.0)
    assert np.array_equal(pairs, np.argwhere(np.triu(expected)))
    assert pair_links(r, pairs, 3000.0).all()
    assert not pair_links(r, [[0, 0]], 3000.0)[0]


def test_close_formation_range_is_exact() -> None:
    # Suncatcher-like: satellites ~100 m apart at 650 km.
    base = np.array([R_EARTH + 650.0, 0.0, 0.0])
    r = base + np.array([[0.0, 0.0, 0.0], [0.0, 0.1, 0.0], [0.0, 0.0, 0.2]])
    assert range_matrix(r)[0, 1] == pytest.approx(0.1, abs=1e-9)
    assert link_pairs(r, 1.0).tolist() == [[0, 1], [0, 2], [1, 2]]


def test_link_pairs_scales_to_10000_satellites() -> None:
    orb = walker(10_000, 100, 1, 550.0, 53.0, 1.7e9)
    r = orb.positions(1.7e9)
    pairs = link_pairs(r, 500.0)
    assert pairs.shape[1] == 2
    assert np.all(pairs[:, 0] < pairs[:, 1])
    d = np.linalg.norm(r[pairs[:, 0]] - r[pairs[:, 1]], axis=1)
    assert d.max() <= 500.0
    # Spot-check completeness for a few satellites against a direct scan.
    for i in (0, 1234, 9999):
        direct = np.nonzero(np.linalg.norm(r - r[i], axis=1) <= 500.0)[0]
        direct = set(direct.tolist()) - {i}
        found = set(pairs[pairs[:, 0] == i, 1].tolist()) | set(pairs[pairs[:, 1] == i, 0].tolist())
        assert found == direct
    with pytest.raises(ConfigError, match="dense limit"):
        link_matrix(np.zeros((DENSE_LIMIT + 1, 3)) + A, 100.0)


def test_nearest_links() -> None:
    orb = walker(60, 6, 1, 550.0, 53.0, 1.7e9, j2=False)
    r = orb.positions(1.7e9)
    nn = nearest_links(r, 4, 5000.0)
    rng = range_matrix(r)
    ok = (rng <= 5000.0) & line_of_sight(r[:, None, :], r[None, :, :])
    np.fill_diagonal(ok, False)
    for i in range(60):
        cand = np.nonzero(ok[i])[0]
        best = cand[np.argsort(rng[i, cand])][:4]
        assert set(nn[i][nn[i] >= 0].tolist()) == set(best.tolist())
    lonely = nearest_links(r[:2], 3, 1.0)
    assert (lonely == -1).all()


def test_latency() -> None:
    assert latency_s(C_KM_S) == pytest.approx(1.0)
    assert latency_s(3000.0, 0.002) == pytest.approx(3000 / 299792.458 + 0.002)
