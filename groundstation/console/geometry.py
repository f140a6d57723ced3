"""Map geometry computed on the ground: ground tracks and station visibility circles.

Longitudes are in [-180, 180); a track is cut where it crosses the antimeridian so the
page draws plain polylines on an equirectangular map without wrapping logic.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from flightsw.physics.frames import ecef_to_geodetic, eci_to_ecef
from flightsw.physics.orbit import Orbits

__all__ = ["EARTH_RADIUS_KM", "footprint_deg", "ground_track", "small_circle"]

EARTH_RADIUS_KM = 6371.0
LatLon = list[tuple[float, float]]


def ground_track(orbits: Orbits, t0: float, t1: float, samples: int = 180) -> list[LatLon]:
    """Sub-satellite points of satellite 0 between ``t0`` and ``t1``, as polylines split at
    the antimeridian; ``[(lat, lon), ...]`` rounded to 0.01 deg."""
    times = np.linspace(t0, t1, samples)
    r = orbits.positions_many(times)[:, 0, :]
    lat, lon, _ = ecef_to_geodetic(eci_to_ecef(r, times))
    lon = (np.asarray(lon) + 180.0) % 360.0 - 180.0
    lines: list[LatLon] = []
    cur: LatLon = []
    prev = None
    for la, lo in zip(np.asarray(lat).tolist(), lon.tolist(), strict=True):
        if prev is not None and abs(lo - prev) > 180.0:
            lines.append(cur)
            cur = []
        cur.append((round(la, 2), round(lo, 2)))
        prev = lo
    if cur:
        lines.append(cur)
    return lines


def footprint_deg(altitude_km: float, min_elevation_deg: float) -> float:
    """Earth-central angle (deg) from a station to where a satellite at ``altitude_km``
    sits at ``min_elevation_deg``: the radius of the station's visibility circle."""
    eps = math.radians(min_elevation_deg)
    ratio = EARTH_RADIUS_KM / (EARTH_RADIUS_KM + altitude_km)
    return math.degrees(math.acos(ratio * math.cos(eps)) - eps)


def small_circle(lat_deg: float, lon_deg: float, radius_deg: float, n: int = 90) -> list[LatLon]:
    """A circle of ``radius_deg`` (central angle) around a point, as polylines split at
    the antimeridian (a circle over a pole is one line along its latitude)."""
    lat1, lon1, d = (math.radians(x) for x in (lat_deg, lon_deg, radius_deg))
    pts: LatLon = []
    for k in range(n + 1):
        b = 2.0 * math.pi * k / n
        lat2 = math.asin(math.sin(lat1) * math.cos(d) + math.cos(lat1) * math.sin(d) * math.cos(b))
        lon2 = lon1 + math.atan2(
            math.sin(b) * math.sin(d) * math.cos(lat1),
            math.cos(d) - math.sin(lat1) * math.sin(lat2),
        )
        lo = (math.degrees(lon2) + 180.0) % 360.0 - 180.0
        pts.append((round(math.degrees(lat2), 2), round(lo, 2)))
    lines: list[LatLon] = [[pts[0]]]
    for a, b2 in itertools.pairwise(pts):
        if abs(b2[1] - a[1]) > 180.0:
            lines.append([])
        lines[-1].append(b2)
    return lines
