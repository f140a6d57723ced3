from __future__ import annotations

import numpy as np
import pytest

from flightsw.exceptions import ConfigError
from flightsw.physics.radiation import expected_upsets, in_saa, sample_upsets, split_rate


def test_saa_region() -> None:
    lat = np.array([-27.0, -30.0, -10.0, 50.0, 0.0, -27.0, -60.0])
    lon = np.array([-45.0, -60.0, -40.0, 0.0, 100.0, 315.0, -45.0])
    assert in_saa(lat, lon).tolist() == [True, True, True, False, False, True, False]


def test_saa_raises_the_upset_rate() -> None:
    rng = np.random.default_rng(7)
    bits = 8 * 2**30  # 1 GiB
    saa = np.arange(2000) % 2 == 0
    counts = sample_upsets(rng, 4e-7, bits, 600.0, saa, 20.0)
    lam = 4e-7 * bits * 600 / 86400
    assert counts[~saa].mean() == pytest.approx(lam, rel=0.1)
    assert counts[saa].mean() == pytest.approx(20 * lam, rel=0.05)
    assert counts.dtype.kind == "i"
    assert expected_upsets(4e-7, bits, 600.0, [True, False], 20.0) == pytest.approx([20 * lam, lam])


def test_seeded_upsets_repeat() -> None:
    saa = np.zeros(500, dtype=bool)
    saa[:100] = True
    a = sample_upsets(np.random.default_rng(42), 1e-6, 1e8, 10.0, saa, 30.0)
    b = sample_upsets(np.random.default_rng(42), 1e-6, 1e8, 10.0, saa, 30.0)
    c = sample_upsets(np.random.default_rng(43), 1e-6, 1e8, 10.0, saa, 30.0)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_split_rate_preserves_the_mean() -> None:
    # Alsat-1 style figure: 4e-7 /bit/day on average, 90 % of upsets in the SAA, which
    # occupies 5 % of the time.
    outside, factor = split_rate(4e-7, 0.9, 0.05)
    mean = outside * (0.95 + 0.05 * factor)
    assert mean == pytest.approx(4e-7)
    assert outside * 0.05 * factor / mean == pytest.approx(0.9)
    with pytest.raises(ConfigError, match="saa_time_fraction"):
        split_rate(4e-7, 0.9, 0.0)
    with pytest.raises(ConfigError, match="rate_per_bit_day"):
        expected_upsets(-1.0, 1, 1.0, False, 1.0)
