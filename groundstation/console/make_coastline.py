"""Make the console map's land outlines (``static/land.json``) from Natural Earth.

The source is ``land-110m.json`` of the npm package ``world-atlas`` (2.0.2): Natural
Earth's 1:110m land (public domain) as TopoJSON, quantized and delta-encoded. This script
decodes its arcs, joins them into the rings of the ``land`` polygons, cuts each ring where
it crosses the antimeridian (so an equirectangular map can fill it without wrapping),
drops points closer than ``--min-step`` to the previous kept one and writes the rings as
flat integer arrays of tenths of a degree ``[lon0, lat0, lon1, lat1, ...]``::

    npm pack world-atlas && tar xzf world-atlas-2.0.2.tgz
    python -m groundstation.console.make_coastline package/land-110m.json \\
        groundstation/console/static/land.json

Run by hand when the geometry is to change; the page only reads the JSON it writes.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

__all__ = ["cut_antimeridian", "decode_arcs", "land_rings", "main", "thin"]

Point = tuple[float, float]  # (lon, lat) degrees
SOURCE = ("Natural Earth 1:110m land (public domain), via the npm package world-atlas "
          "2.0.2 (land-110m.json)")


class CoastlineError(ValueError):
    """The input is not the TopoJSON this script expects."""


def decode_arcs(topo: dict[str, Any]) -> list[list[Point]]:
    """The topology's arcs in degrees (undoing the quantization's delta encoding)."""
    tr = topo.get("transform")
    if not isinstance(tr, dict) or "scale" not in tr or "translate" not in tr:
        raise CoastlineError("transform: expected a quantized topology (scale, translate)")
    (sx, sy), (tx, ty) = tr["scale"], tr["translate"]
    out: list[list[Point]] = []
    for arc in topo["arcs"]:
        x = y = 0
        pts: list[Point] = []
        for dx, dy in arc:
            x += dx
            y += dy
            pts.append((x * sx + tx, y * sy + ty))
        out.append(pts)
    return out


def _ring(arcs: list[list[Point]], refs: list[int]) -> list[Point]:
    """A ring from arc indexes (``~i``: arc ``i`` reversed); shared end points once."""
    pts: list[Point] = []
    for ref in refs:
        arc = arcs[ref] if ref >= 0 else arcs[~ref][::-1]
        pts.extend(arc if not pts else arc[1:])
    return pts


def land_rings(topo: dict[str, Any], name: str = "land") -> list[list[Point]]:
    """Every ring (outer and holes) of the polygons of object ``name``."""
    obj = topo.get("objects", {}).get(name)
    if obj is None:
        raise CoastlineError(f"objects: no {name!r} object")
    arcs = decode_arcs(topo)
    geoms = obj["geometries"] if obj.get("type") == "GeometryCollection" else [obj]
    rings: list[list[Point]] = []
    for g in geoms:
        if g["type"] == "Polygon":
            polys = [g["arcs"]]
        elif g["type"] == "MultiPolygon":
            polys = g["arcs"]
        else:
            raise CoastlineError(f"{name}: unexpected geometry {g['type']!r}")
        rings.extend(_ring(arcs, refs) for poly in polys for refs in poly)
    return rings


def cut_antimeridian(ring: list[Point]) -> list[list[Point]]:
    """Split a ring where consecutive points jump more than 180 deg in longitude, adding
    the crossing point on each side (+-180 at the interpolated latitude). A ring crossing
    an odd number of times goes round a pole (Antarctica): its piece is closed along the
    map's edge through that pole."""
    crossings = 0
    parts: list[list[Point]] = [[]]
    for i, (lon, lat) in enumerate(ring):
        if i:
            plon, plat = ring[i - 1]
            if abs(lon - plon) > 180.0:
                side = 180.0 if plon > 0 else -180.0
                span = (180.0 - abs(plon)) + (180.0 - abs(lon))
                f = (180.0 - abs(plon)) / span if span else 0.5
                cross = plat + f * (lat - plat)
                parts[-1].append((side, cross))
                parts.append([(-side, cross)])
                crossings += 1
        parts[-1].append((lon, lat))
    if len(parts) > 1 and parts[0] and parts[-1]:
        # the ring started mid-piece: its last piece continues its first
        parts[0] = parts.pop() + parts[0]
    if crossings % 2:
        pole = -90.0 if sum(p[1] for p in ring) < 0 else 90.0
        piece = parts[0]
        piece.extend([(piece[-1][0], pole), (piece[0][0], pole), piece[0]])
    return [p for p in parts if len(p) >= 3]


def thin(ring: list[Point], min_step_deg: float) -> list[Point]:
    """Keep a point only if it lies ``min_step_deg`` or more from the last kept one (and
    always the last, so the ring closes where it did)."""
    if not ring:
        return []
    kept = [ring[0]]
    for p in ring[1:-1]:
        q = kept[-1]
        if math.hypot(p[0] - q[0], p[1] - q[1]) >= min_step_deg:
            kept.append(p)
    kept.append(ring[-1])
    return kept


def encode(rings: list[list[Point]]) -> list[list[int]]:
    """Rings as flat lists of tenths of a degree (lon, lat, lon, lat, ...)."""
    return [[round(v * 10) for p in r for v in p] for r in rings]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("topojson", type=Path, help="world-atlas land-110m.json")
    ap.add_argument("out", type=Path, help="JSON to write (the page's static/land.json)")
    ap.add_argument("--min-step", type=float, default=0.25, help="deg between kept points")
    args = ap.parse_args(argv)
    try:
        topo = json.loads(args.topojson.read_text(encoding="utf-8"))
        rings = [thin(p, args.min_step) for r in land_rings(topo) for p in cut_antimeridian(r)]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"make_coastline: {args.topojson}: {exc}", file=sys.stderr)
        return 2
    rings = [r for r in rings if len(r) >= 3]
    doc = {"source": SOURCE, "units": "0.1 deg, [lon, lat, lon, lat, ...] per ring",
           "rings": encode(rings)}
    args.out.write_text(json.dumps(doc, separators=(",", ":")) + "\n", encoding="utf-8")
    points = sum(len(r) for r in rings)
    print(f"{args.out}: {len(rings)} rings, {points} points, {args.out.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
