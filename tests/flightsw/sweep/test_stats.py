"""Student-t quantiles and intervals, against scipy and textbook values."""

from __future__ import annotations

import pytest
from scipy import stats

from flightsw.sweep.stats import mean_interval, t_cdf, t_quantile


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 9, 29, 100, 10_000])
@pytest.mark.parametrize("p", [0.55, 0.9, 0.975, 0.995, 0.9999])
def test_quantile_and_cdf_match_scipy(df: int, p: float) -> None:
    assert t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-10)
    assert t_quantile(1 - p, df) == pytest.approx(stats.t.ppf(1 - p, df), rel=1e-10)
    assert t_cdf(1.3, df) == pytest.approx(stats.t.cdf(1.3, df), rel=1e-10)


def test_textbook_values() -> None:
    assert t_quantile(0.975, 1) == pytest.approx(12.706, abs=5e-4)
    assert t_quantile(0.975, 4) == pytest.approx(2.776, abs=5e-4)
    assert t_quantile(0.975, 30) == pytest.approx(2.042, abs=5e-4)
    with pytest.raises(ValueError, match="0 < p < 1"):
        t_quantile(1.0, 3)


def test_interval() -> None:
    values = [10.0, 12.0, 11.0, 15.0]
    iv = mean_interval(values, 0.95)
    res = stats.ttest_1samp(values, 0.0).confidence_interval(0.95)
    assert iv.n == 4 and iv.mean == 12.0
    assert iv.low == pytest.approx(res.low, rel=1e-10)
    assert iv.high == pytest.approx(res.high, rel=1e-10)
    assert mean_interval([3.0], 0.95) == (1, 3.0, None, None)
    assert mean_interval([], 0.95) == (0, None, None, None)
    same = mean_interval([2.5, 2.5, 2.5], 0.9)
    assert same.low == same.high == 2.5
