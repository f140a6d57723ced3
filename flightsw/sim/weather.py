"""Weather at optical ground stations: clear or clouded, cell by cell, drawn per seed.

Time from the mission start is cut into cells of ``weather_cell_s``; each cell of station
``s`` is clear with probability ``availability``, independently of the other cells and
stations, from ``numpy.random.default_rng([seed, 11, s])``. The same seed gives the same
sky, whatever else the run does (draws are made in cell order, on demand, from the
station's own stream). Independent cells are a simplification: real cloud cover is
correlated over hours and between nearby sites; the share of clear time is what is kept.
"""

from __future__ import annotations

import math

import numpy as np

from flightsw.sim.scenario import GroundOptical

__all__ = ["Sky"]

_STREAM = 11  # the weather's rng stream of a run's seed
_CHUNK = 256  # cells drawn at once


class Sky:
    """The weather over a ground network's optical stations (radio stations: always
    clear)."""

    def __init__(self, optical: list[GroundOptical | None], t0: float, seed: int) -> None:
        self.t0 = t0
        self._spec = optical
        self._rng = [np.random.default_rng([seed, _STREAM, s]) for s in range(len(optical))]
        self._clear: list[list[bool]] = [[] for _ in optical]

    def clear(self, s: int, t: float) -> bool:
        """Station ``s`` can use its link at ``t``."""
        spec = self._spec[s]
        if spec is None:
            return True
        if t < self.t0:
            return True  # before the mission: no weather is drawn
        cell = math.floor((t - self.t0) / spec.weather_cell_s)
        cells = self._clear[s]
        while len(cells) <= cell:
            cells.extend((self._rng[s].random(_CHUNK) < spec.availability).tolist())
        return cells[cell]

    def clear_share(self, s: int, t_end: float) -> float:
        """Share of the cells from the start up to ``t_end`` that are clear."""
        spec = self._spec[s]
        if spec is None:
            return 1.0
        n = max(1, math.ceil((t_end - self.t0) / spec.weather_cell_s))
        self.clear(s, self.t0 + (n - 1) * spec.weather_cell_s)
        return sum(self._clear[s][:n]) / n
