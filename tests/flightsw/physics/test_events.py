from __future__ import annotations

import numpy as np
import pytest

from flightsw.exceptions import ConfigError
from flightsw.physics.events import BoolArray, IntArray, find_intervals, sample_times
from flightsw.physics.frames import FloatArray
from flightsw.physics.orbit import CircularOrbits

T0 = 1.7e9


def northern(r: FloatArray, _t: FloatArray, _idx: IntArray) -> BoolArray:
    return np.asarray(r[:, 2] > 0.0)


def test_edges_match_analytic_crossings() -> None:
    # Inclined circular orbits are north of the equator for u in (0, 180) deg: the
    # crossings are at known times from each satellite's starting argument of latitude.
    u0 = np.array([10.0, 100.0, 250.0])
    orb = CircularOrbits(550.0, 53.0, 0.0, u0, T0, j2=False)
    period = float(orb.period_s[0])
    end = T0 + 2 * period
    found = find_intervals(orb, T0, end, northern, step_s=30.0, tol_s=0.01)
    for i, u in enumerate(u0):
        # Satellite i crosses the equator northbound at u = 360 k, southbound at 180 + 360 k.
        north = [(T0 + ((360.0 * k - u) / 360.0) * period) for k in range(4)]
        south = [(T0 + ((180.0 + 360.0 * k - u) / 360.0) * period) for k in range(4)]
        edges = sorted(t for t in north + south if T0 < t < end)
        got = sorted(x for iv in found[i] for x in iv if T0 < x < end)
        assert np.allclose(got, edges, atol=0.01)
        # Starts north exactly when u0 < 180; clipped at the window start then.
        assert (found[i][0][0] == T0) == (u < 180.0)


def test_sample_times_end_exactly_and_validate() -> None:
    times = sample_times(0.0, 25.0, 10.0)
    assert times.tolist() == [0.0, 10.0, 20.0, 25.0]
    with pytest.raises(ConfigError, match="end"):
        sample_times(5.0, 5.0, 1.0)
    with pytest.raises(ConfigError, match="step_s"):
        sample_times(0.0, 5.0, -1.0)
    orb = CircularOrbits(550.0, 53.0, epoch=T0)
    with pytest.raises(ConfigError, match="tol_s"):
        find_intervals(orb, T0, T0 + 60, northern, tol_s=0.0)
