"""Orbits of N satellites, vectorised: one row per satellite.

Two implementations share the :class:`Orbits` interface:

* :class:`CircularOrbits`: circular Keplerian orbits, optionally with the J2 secular drift
  of the ascending node (on by default, so a sun-synchronous plane keeps its local time).
  The argument of latitude advances at the two-body mean motion; J2's small along-track
  rate change (~0.06 % at 550 km) is ignored, so ``period_s`` is the two-body period.
* :class:`TleOrbits`: two-line element sets propagated with SGP4 (the ``sgp4`` package's
  vectorised ``SatrecArray``). SGP4 outputs TEME, which this package uses as its ECI frame
  (see :mod:`flightsw.physics.frames`): TEME differs from a true-of-date frame only by the
  equation of the equinoxes (< 1.2 arcsec), and from GCRS/J2000 by precession-nutation
  (~0.35 deg in 2025), which is why the sun ephemeris here is also "of date".

Positions are km in ECI, velocities km/s, times POSIX seconds UTC.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from sgp4.api import SGP4_ERRORS, Satrec, SatrecArray

from flightsw.exceptions import ConfigError, OrbitError
from flightsw.physics.constants import (
    J2,
    MU_EARTH,
    R_EARTH,
    SECONDS_PER_DAY,
    SSO_RAAN_RATE_RAD_S,
    UNIX_EPOCH_JD,
)
from flightsw.physics.frames import FloatArray
from flightsw.physics.sun import sun_direction

__all__ = [
    "CircularOrbits",
    "Orbits",
    "TleOrbits",
    "circular_period_s",
    "dawn_dusk_raan",
    "ltan_raan",
    "sun_synchronous_inclination",
    "walker",
]

IntArray = npt.NDArray[np.intp]


class Orbits(abc.ABC):
    """N satellites' trajectories. Row ``i`` of every array is satellite ``names[i]``."""

    names: list[str]

    def __len__(self) -> int:
        return len(self.names)

    @property
    @abc.abstractmethod
    def period_s(self) -> FloatArray:
        """Orbital period of each satellite, s, shape (N,)."""

    @abc.abstractmethod
    def positions(self, t: float) -> FloatArray:
        """ECI positions at time ``t``, km, shape (N, 3)."""

    @abc.abstractmethod
    def velocities(self, t: float) -> FloatArray:
        """ECI velocities at time ``t``, km/s, shape (N, 3)."""

    def normals(self, t: float) -> FloatArray:
        """Unit orbit normals h = r x v / |r x v| at time ``t``, shape (N, 3)."""
        h = np.cross(self.positions(t), self.velocities(t))
        return np.asarray(h / np.linalg.norm(h, axis=-1, keepdims=True))

    @abc.abstractmethod
    def positions_many(self, times: npt.ArrayLike) -> FloatArray:
        """ECI positions at each of ``times`` (T,), km, shape (T, N, 3)."""

    @abc.abstractmethod
    def positions_at(self, times: npt.ArrayLike, index: npt.ArrayLike) -> FloatArray:
        """Position of satellite ``index[k]`` at ``times[k]``, shape (K, 3).

        The event finders use this to refine many edges, each on its own satellite and
        time, in one vectorised call.
        """


def circular_period_s(altitude_km: npt.ArrayLike) -> FloatArray:
    """Two-body period of a circular orbit, s (550 km -> 5739 s = 95.65 min)."""
    a = R_EARTH + np.asarray(altitude_km, dtype=np.float64)
    return np.asarray(2.0 * np.pi * np.sqrt(a**3 / MU_EARTH))


def _j2_raan_rate(a_km: FloatArray, inc_rad: FloatArray) -> FloatArray:
    """Secular node drift of a circular orbit, rad/s: -3/2 n J2 (R/a)^2 cos i (Vallado 9-41)."""
    n = np.sqrt(MU_EARTH / a_km**3)
    return np.asarray(-1.5 * n * J2 * (R_EARTH / a_km) ** 2 * np.cos(inc_rad))


def sun_synchronous_inclination(altitude_km: npt.ArrayLike) -> FloatArray:
    """Inclination (deg) whose J2 node drift follows the mean sun (550 km -> 97.6 deg).

    Raises :class:`ConfigError` above ~5,970 km, where no inclination is fast enough.
    """
    a = R_EARTH + np.asarray(altitude_km, dtype=np.float64)
    n = np.sqrt(MU_EARTH / a**3)
    cos_i = -SSO_RAAN_RATE_RAD_S / (1.5 * n * J2 * (R_EARTH / a) ** 2)
    if np.any(np.abs(cos_i) > 1.0):
        raise ConfigError(f"altitude_km: no sun-synchronous orbit at {altitude_km!r} km")
    return np.asarray(np.degrees(np.arccos(cos_i)))


def ltan_raan(epoch: float, ltan_hours: float) -> float:
    """RAAN (deg) putting the ascending node at local (apparent solar) time ``ltan_hours``.

    The node's local time is 12 h plus its right ascension minus the sun's, at 15 deg/h.
    """
    s = sun_direction(epoch)
    sun_ra = math.degrees(math.atan2(float(s[1]), float(s[0])))
    return (sun_ra + (ltan_hours - 12.0) * 15.0) % 360.0


def dawn_dusk_raan(epoch: float) -> float:
    """RAAN (deg) of a dawn-dusk orbit (ascending node at 18:00 local time) at ``epoch``."""
    return ltan_raan(epoch, 18.0)


def _as_1d(name: str, value: npt.ArrayLike) -> FloatArray:
    arr = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if arr.ndim != 1:
        raise ConfigError(f"{name}: expected a scalar or a 1-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ConfigError(f"{name}: values must be finite")
    return arr


class CircularOrbits(Orbits):
    """Circular orbits; scalars and arrays broadcast to N satellites.

    ``arg_latitude_deg`` is the angle from the ascending node at ``epoch``. With ``j2``
    the node drifts at the J2 secular rate (so SSO planes keep their local time).
    """

    def __init__(
        self,
        altitude_km: npt.ArrayLike,
        inclination_deg: npt.ArrayLike,
        raan_deg: npt.ArrayLike = 0.0,
        arg_latitude_deg: npt.ArrayLike = 0.0,
        epoch: float = 0.0,
        names: Sequence[str] | None = None,
        *,
        j2: bool = True,
    ) -> None:
        alt = _as_1d("altitude_km", altitude_km)
        inc = _as_1d("inclination_deg", inclination_deg)
        raan = _as_1d("raan_deg", raan_deg)
        u0 = _as_1d("arg_latitude_deg", arg_latitude_deg)
        try:
            alt, inc, raan, u0 = (np.array(x) for x in np.broadcast_arrays(alt, inc, raan, u0))
        except ValueError as exc:
            raise ConfigError(f"orbit elements have incompatible lengths: {exc}") from exc
        if np.any(alt <= 0.0):
            raise ConfigError(f"altitude_km: must be > 0, got min {alt.min()!r}")
        if np.any((inc < 0.0) | (inc > 180.0)):
            raise ConfigError("inclination_deg: must be within [0, 180]")
        if not math.isfinite(epoch):
            raise ConfigError("epoch: must be finite")
        n_sat = alt.shape[0]
        if names is None:
            names = [f"sat-{i:05d}" for i in range(n_sat)] if n_sat > 1 else ["sat"]
        names = list(names)
        if len(names) != n_sat:
            raise ConfigError(f"names: {len(names)} names for {n_sat} orbits")
        self.names = names
        self.epoch = float(epoch)
        self.altitude_km = alt
        self.inclination_deg = inc
        self.raan_deg = raan
        self.arg_latitude_deg = u0
        self.j2 = j2
        self._a = R_EARTH + alt
        self._inc = np.radians(inc)
        self._cos_i = np.cos(self._inc)
        self._sin_i = np.sin(self._inc)
        self._raan0 = np.radians(raan)
        self._u0 = np.radians(u0)
        self._n = np.sqrt(MU_EARTH / self._a**3)
        self._raan_dot = _j2_raan_rate(self._a, self._inc) if j2 else np.zeros(n_sat)
        self._speed = np.sqrt(MU_EARTH / self._a)

    @property
    def period_s(self) -> FloatArray:
        return np.asarray(2.0 * np.pi / self._n)

    @property
    def raan_rate_deg_per_day(self) -> FloatArray:
        """Node drift, deg/day (J2 secular; zero without ``j2``)."""
        return np.asarray(np.degrees(self._raan_dot) * SECONDS_PER_DAY)

    def _angles(self, dt: FloatArray, idx: IntArray | slice) -> tuple[FloatArray, FloatArray]:
        u = self._u0[idx] + self._n[idx] * dt
        raan = self._raan0[idx] + self._raan_dot[idx] * dt
        return u, raan

    def _pos(self, u: FloatArray, raan: FloatArray, idx: IntArray | slice) -> FloatArray:
        cu, su = np.cos(u), np.sin(u)
        co, so = np.cos(raan), np.sin(raan)
        ci, si = self._cos_i[idx], self._sin_i[idx]
        a = self._a[idx]
        return np.stack(
            (a * (co * cu - so * su * ci), a * (so * cu + co * su * ci), a * (su * si)), axis=-1
        )

    def positions(self, t: float) -> FloatArray:
        u, raan = self._angles(np.asarray(t - self.epoch), slice(None))
        return self._pos(u, raan, slice(None))

    def positions_many(self, times: npt.ArrayLike) -> FloatArray:
        dt = np.asarray(times, dtype=np.float64).reshape(-1, 1) - self.epoch
        u, raan = self._angles(dt, slice(None))
        return self._pos(u, raan, slice(None))

    def positions_at(self, times: npt.ArrayLike, index: npt.ArrayLike) -> FloatArray:
        idx = np.asarray(index, dtype=np.intp)
        dt = np.asarray(times, dtype=np.float64) - self.epoch
        u, raan = self._angles(dt, idx)
        return self._pos(u, raan, idx)

    def normals(self, t: float) -> FloatArray:
        raan = self._raan0 + self._raan_dot * (t - self.epoch)
        return np.stack(
            (np.sin(raan) * self._sin_i, -np.cos(raan) * self._sin_i, self._cos_i), axis=-1
        )

    def velocities(self, t: float) -> FloatArray:
        dt = np.asarray(t - self.epoch)
        u, raan = self._angles(dt, slice(None))
        cu, su = np.cos(u), np.sin(u)
        co, so = np.cos(raan), np.sin(raan)
        ci, si, v = self._cos_i, self._sin_i, self._speed
        vel = np.stack(
            (v * (-co * su - so * cu * ci), v * (-so * su + co * cu * ci), v * (cu * si)), axis=-1
        )
        # The drifting node adds raan_dot * z x r (a few m/s at most).
        r = self._pos(u, raan, slice(None))
        vel[:, 0] -= self._raan_dot * r[:, 1]
        vel[:, 1] += self._raan_dot * r[:, 0]
        return vel


def walker(
    total: int,
    planes: int,
    phasing: int,
    altitude_km: float,
    inclination_deg: float,
    epoch: float,
    raan0_deg: float = 0.0,
    *,
    j2: bool = True,
) -> CircularOrbits:
    """Walker delta constellation i:T/P/F (Walker 1984).

    Plane p (0..P-1) has RAAN ``raan0 + 360 p / P``; slot s (0..T/P-1) in it has argument
    of latitude ``360 s P / T + 360 F p / T`` at ``epoch``. Names are ``P{p:02d}S{s:02d}``
    (wider when needed).
    """
    if total < 1 or planes < 1:
        raise ConfigError(f"walker: total ({total}) and planes ({planes}) must be >= 1")
    if total % planes:
        raise ConfigError(f"walker: total ({total}) must be a multiple of planes ({planes})")
    if not 0 <= phasing < planes:
        raise ConfigError(f"walker: phasing ({phasing}) must be in [0, planes - 1]")
    per_plane = total // planes
    p = np.repeat(np.arange(planes), per_plane)
    s = np.tile(np.arange(per_plane), planes)
    raan = raan0_deg + 360.0 * p / planes
    u = 360.0 * s / per_plane + 360.0 * phasing * p / total
    wp, ws = max(2, len(str(planes - 1))), max(2, len(str(per_plane - 1)))
    names = [f"P{pi:0{wp}d}S{si:0{ws}d}" for pi, si in zip(p.tolist(), s.tolist(), strict=True)]
    return CircularOrbits(altitude_km, inclination_deg, raan, np.mod(u, 360.0), epoch, names, j2=j2)


# --------------------------------------------------------------------------- TLE / SGP4


def _tle_checksum(line: str) -> int:
    """Modulo-10 checksum of a TLE line's first 68 columns ('-' counts 1)."""
    total = 0
    for ch in line[:68]:
        if ch.isdigit():
            total += int(ch)
        elif ch == "-":
            total += 1
    return total % 10


def _check_tle_line(line: str, number: str, lineno: int, source: str) -> None:
    if len(line) < 69:
        raise OrbitError(
            f"{source}:{lineno}: TLE line {number} is {len(line)} characters, expected 69"
        )
    if not line[68].isdigit() or int(line[68]) != _tle_checksum(line):
        raise OrbitError(
            f"{source}:{lineno}: TLE line {number} checksum is {line[68]!r}, "
            f"computed {_tle_checksum(line)}"
        )


def _jd_split(times: FloatArray) -> tuple[FloatArray, FloatArray]:
    """POSIX seconds to (whole JD at midnight - 0.5, fraction), precise to microseconds."""
    days = times / SECONDS_PER_DAY
    whole = np.floor(days)
    return whole + UNIX_EPOCH_JD, days - whole


class TleOrbits(Orbits):
    """Satellites from two-line element sets, propagated with SGP4 (TEME ~ ECI)."""

    def __init__(self, satrecs: Sequence[Satrec], names: Sequence[str]) -> None:
        if not satrecs:
            raise OrbitError("no TLE found")
        if len(satrecs) != len(names):
            raise OrbitError(f"{len(names)} names for {len(satrecs)} TLEs")
        self.names = list(names)
        self._sats = list(satrecs)
        self._array = SatrecArray(self._sats)
        # no_kozai is the mean motion in rad/min.
        self._period = np.array([2.0 * np.pi / s.no_kozai * 60.0 for s in self._sats])
        self.epochs = np.array(
            [(s.jdsatepoch - UNIX_EPOCH_JD + s.jdsatepochF) * SECONDS_PER_DAY for s in satrecs]
        )

    @classmethod
    def from_text(cls, text: str, *, source: str = "<tle>") -> TleOrbits:
        """Parse TLEs; a name line (optionally ``0 NAME``) before a pair is optional.

        Unnamed satellites are called ``NORAD <catalog number>``; repeated names get a
        ``#2``, ``#3`` suffix. Raises :class:`OrbitError` naming the line on bad input.
        """
        lines = [(i + 1, ln.rstrip()) for i, ln in enumerate(text.splitlines())]
        lines = [(i, ln) for i, ln in lines if ln.strip()]
        sats: list[Satrec] = []
        names: list[str] = []
        pending_name: str | None = None
        k = 0
        while k < len(lines):
            lineno, line = lines[k]
            if line.startswith("1 "):
                if k + 1 >= len(lines) or not lines[k + 1][1].startswith("2 "):
                    raise OrbitError(f"{source}:{lineno}: TLE line 1 is not followed by line 2")
                lineno2, line2 = lines[k + 1]
                _check_tle_line(line, "1", lineno, source)
                _check_tle_line(line2, "2", lineno2, source)
                if line[2:7] != line2[2:7]:
                    raise OrbitError(
                        f"{source}:{lineno2}: catalog number {line2[2:7].strip()!r} differs "
                        f"from line 1's {line[2:7].strip()!r}"
                    )
                try:
                    sat = Satrec.twoline2rv(line[:69], line2[:69])
                except ValueError as exc:
                    raise OrbitError(f"{source}:{lineno}: unparseable TLE: {exc}") from exc
                if sat.error:
                    raise OrbitError(
                        f"{source}:{lineno}: TLE rejected by SGP4 initialisation: "
                        f"{SGP4_ERRORS.get(sat.error, sat.error)}"
                    )
                name = pending_name or f"NORAD {line[2:7].strip()}"
                base, n = name, 2
                while name in names:
                    name = f"{base} #{n}"
                    n += 1
                sats.append(sat)
                names.append(name)
                pending_name = None
                k += 2
                continue
            if line.startswith("2 "):
                raise OrbitError(f"{source}:{lineno}: TLE line 2 without a line 1 before it")
            if pending_name is not None:
                raise OrbitError(
                    f"{source}:{lineno}: expected TLE line 1 after name line {pending_name!r}, "
                    f"got {line.strip()[:40]!r}"
                )
            name = line.strip()
            pending_name = name[2:].strip() if name.startswith("0 ") else name
            if len(pending_name) > 64:
                raise OrbitError(f"{source}:{lineno}: not a TLE name or element line")
            k += 1
        if pending_name is not None:
            raise OrbitError(f"{source}: name line {pending_name!r} has no TLE after it")
        if not sats:
            raise OrbitError(f"{source}: no TLE found")
        return cls(sats, names)

    @classmethod
    def from_file(cls, path: str | Path) -> TleOrbits:
        """Read a TLE file (2- or 3-line format, several satellites)."""
        p = Path(path)
        try:
            text = p.read_text(encoding="ascii", errors="replace")
        except OSError as exc:
            raise OrbitError(f"cannot read TLE file {str(p)!r}: {exc.strerror}") from exc
        return cls.from_text(text, source=str(p))

    @property
    def satrecs(self) -> list[Satrec]:
        """The SGP4 records, one per satellite (to build a subset)."""
        return list(self._sats)

    @property
    def period_s(self) -> FloatArray:
        return self._period

    def subset(self, index: Sequence[int]) -> TleOrbits:
        """The satellites at ``index`` (in that order), keeping their names."""
        return TleOrbits([self._sats[i] for i in index], [self.names[i] for i in index])

    def _propagate(self, times: FloatArray) -> tuple[FloatArray, FloatArray]:
        """SGP4 for all satellites at all ``times``: r, v of shape (N, T, 3)."""
        jd, fr = _jd_split(times)
        err, r, v = self._array.sgp4(jd, fr)
        if np.any(err):
            i, j = (int(x) for x in np.argwhere(err)[0])
            raise OrbitError(
                f"SGP4 failed for {self.names[i]!r} at t={float(times[j]):.1f}: "
                f"{SGP4_ERRORS.get(int(err[i, j]), int(err[i, j]))}"
            )
        return np.asarray(r), np.asarray(v)

    def positions(self, t: float) -> FloatArray:
        r, _ = self._propagate(np.array([float(t)]))
        return np.ascontiguousarray(r[:, 0, :])

    def velocities(self, t: float) -> FloatArray:
        _, v = self._propagate(np.array([float(t)]))
        return np.ascontiguousarray(v[:, 0, :])

    def positions_many(self, times: npt.ArrayLike) -> FloatArray:
        r, _ = self._propagate(np.asarray(times, dtype=np.float64).reshape(-1))
        return np.ascontiguousarray(r.transpose(1, 0, 2))

    def positions_at(self, times: npt.ArrayLike, index: npt.ArrayLike) -> FloatArray:
        tt = np.asarray(times, dtype=np.float64).reshape(-1)
        idx = np.asarray(index, dtype=np.intp).reshape(-1)
        out = np.empty((tt.shape[0], 3))
        for i in np.unique(idx).tolist():
            sel = idx == i
            jd, fr = _jd_split(tt[sel])
            err, r, _ = self._sats[i].sgp4_array(jd, fr)
            if np.any(err):
                k = int(np.argmax(err != 0))
                raise OrbitError(
                    f"SGP4 failed for {self.names[i]!r} at t={float(tt[sel][k]):.1f}: "
                    f"{SGP4_ERRORS.get(int(err[k]), int(err[k]))}"
                )
            out[sel] = r
        return out
