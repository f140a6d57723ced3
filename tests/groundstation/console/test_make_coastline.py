"""The map's land outlines: the TopoJSON decoding and antimeridian cut of
``make_coastline``, and the shipped ``static/land.json`` checked against geography."""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from groundstation.console.make_coastline import (
    CoastlineError,
    cut_antimeridian,
    decode_arcs,
    land_rings,
    main,
    thin,
)


def _shipped() -> list[np.ndarray]:
    f = resources.files("groundstation.console") / "static" / "land.json"
    doc = json.loads(f.read_text(encoding="utf-8"))
    assert "Natural Earth" in doc["source"]
    return [np.asarray(r, dtype=float).reshape(-1, 2) / 10.0 for r in doc["rings"]]


def _inside(rings: list[np.ndarray], lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Even-odd rule over every ring on the equirectangular plane (as the page fills)."""
    hit = np.zeros(lon.shape, dtype=bool)
    for r in rings:
        x0, y0 = r[:, 0], r[:, 1]
        x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
        for a, b, c, d in zip(x0, y0, x1, y1, strict=True):
            if b == d:
                continue
            cross = ((b > lat) != (d > lat)) & (lon < a + (lat - b) * (c - a) / (d - b))
            hit ^= cross
    return hit


def test_shipped_land_is_small_and_in_range() -> None:
    f = resources.files("groundstation.console") / "static" / "land.json"
    assert len(f.read_bytes()) < 200_000
    rings = _shipped()
    assert len(rings) > 100
    pts = np.concatenate(rings)
    assert pts[:, 0].min() >= -180 and pts[:, 0].max() <= 180
    assert pts[:, 1].min() >= -90 and pts[:, 1].max() <= 90


def test_shipped_land_matches_geography() -> None:
    rings = _shipped()
    places = {  # (lat, lon): land?
        "Paris": (48.85, 2.35, True), "Sahara": (23.0, 10.0, True),
        "Amazon": (-3.0, -60.0, True), "Australia": (-25.0, 134.0, True),
        "South Pole": (-89.0, 0.0, True), "Chukotka": (66.0, 175.0, True),
        "mid-Pacific": (0.0, -150.0, False), "Arctic Ocean": (88.0, 0.0, False),
        "Indian Ocean": (-20.0, 80.0, False), "North Atlantic": (40.0, -40.0, False),
    }
    lat = np.array([v[0] for v in places.values()])
    lon = np.array([v[1] for v in places.values()])
    got = _inside(rings, lon, lat)
    want = np.array([v[2] for v in places.values()])
    wrong = [name for name, g, w in zip(places, got, want, strict=True) if g != w]
    assert not wrong, f"land/sea wrong at {wrong}"
    # land is 29 % of the Earth's surface: area-weighted share of a 1-degree grid
    glat, glon = np.meshgrid(np.arange(-89.5, 90.0, 1.0), np.arange(-179.5, 180.0, 1.0))
    land = _inside(rings, glon.ravel(), glat.ravel())
    w = np.cos(np.radians(glat.ravel()))
    share = float((land * w).sum() / w.sum())
    assert 0.27 < share < 0.31, share


def _topology(
    arcs: list[list[list[int]]], geometries: list[dict[str, object]]
) -> dict[str, object]:
    return {"type": "Topology", "transform": {"scale": [1.0, 1.0], "translate": [-180, -90]},
            "arcs": arcs, "objects": {"land": {"type": "GeometryCollection",
                                                "geometries": geometries}}}


def test_arcs_are_delta_decoded_and_joined_into_rings() -> None:
    # a square from two arcs, the second used reversed (~1 == -2)
    topo = _topology(
        [[[180, 90], [10, 0], [0, 10]], [[180, 90], [0, 10], [10, 0]]],
        [{"type": "Polygon", "arcs": [[0, ~1]]}],
    )
    assert decode_arcs(topo)[0] == [(0.0, 0.0), (10.0, 0.0), (10.0, 10.0)]
    (ring,) = land_rings(topo)
    assert ring == [(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0), (0.0, 0.0)]


def test_bad_topology_is_named() -> None:
    with pytest.raises(CoastlineError, match="transform"):
        decode_arcs({"arcs": []})
    with pytest.raises(CoastlineError, match="no 'land' object"):
        land_rings({"transform": {"scale": [1, 1], "translate": [0, 0]}, "arcs": [],
                    "objects": {}})


def test_a_ring_across_the_antimeridian_is_cut_in_two() -> None:
    ring = [(170.0, 0.0), (-170.0, 0.0), (-170.0, 10.0), (170.0, 10.0), (170.0, 0.0)]
    parts = cut_antimeridian(ring)
    assert len(parts) == 2
    east = next(p for p in parts if p[1][0] > 0 or p[0][0] > 0)
    assert all(lon >= 170.0 for lon, _ in east)
    assert {(180.0, 0.0), (180.0, 10.0)} <= set(east)


def test_a_ring_round_the_pole_is_closed_through_it() -> None:
    ring = [(lon, -70.0) for lon in range(-150, 181, 30)] + [(-150.0, -70.0)]
    ring = [(float(a), b) for a, b in ring]
    (piece,) = cut_antimeridian(ring)
    assert (180.0, -90.0) in piece or (-180.0, -90.0) in piece
    assert all(-180.0 <= lon <= 180.0 for lon, _ in piece)


def test_thin_keeps_ends() -> None:
    ring = [(0.0, 0.0), (0.01, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 0.0)]
    assert thin(ring, 0.5) == [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 0.0)]
    assert math.isclose(len(thin(ring, 0.0)), len(ring))


def test_main_writes_the_page_format(tmp_path: Path) -> None:
    topo = _topology([[[180, 90], [10, 0], [0, 10], [-10, 0], [0, -10]]],
                     [{"type": "MultiPolygon", "arcs": [[[0]]]}])
    src = tmp_path / "land.topo.json"
    src.write_text(json.dumps(topo))
    out = tmp_path / "land.json"
    assert main([str(src), str(out), "--min-step", "0"]) == 0
    doc = json.loads(out.read_text())
    assert doc["rings"] == [[0, 0, 100, 0, 100, 100, 0, 100, 0, 0]]
    assert main([str(tmp_path / "missing.json"), str(out)]) == 2
