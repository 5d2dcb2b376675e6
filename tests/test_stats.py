import numpy as np
import pytest
from deploybench.stats import bootstrap_median_ci, summarize


def test_summary_statistics_match_numpy():
    rng = np.random.default_rng(1)
    values = rng.lognormal(mean=1.0, sigma=0.3, size=500)
    stats = summarize(values)
    assert stats.n == 500
    assert stats.median_ms == pytest.approx(np.median(values))
    assert stats.p90_ms == pytest.approx(np.percentile(values, 90))
    assert stats.p99_ms == pytest.approx(np.percentile(values, 99))
    assert stats.mean_ms == pytest.approx(values.mean())
    assert stats.std_ms == pytest.approx(values.std(ddof=1))
    assert stats.cv == pytest.approx(values.std(ddof=1) / values.mean())
    assert stats.min_ms == values.min() and stats.max_ms == values.max()
    assert stats.min_ms <= stats.median_ms <= stats.p90_ms <= stats.p99_ms <= stats.max_ms


def test_median_ci_brackets_median_and_narrows_with_more_samples():
    rng = np.random.default_rng(2)
    small = rng.normal(10, 1, size=30)
    large = rng.normal(10, 1, size=3000)
    low_s, high_s = bootstrap_median_ci(small)
    low_l, high_l = bootstrap_median_ci(large)
    assert low_s <= np.median(small) <= high_s
    assert low_l <= np.median(large) <= high_l
    assert (high_l - low_l) < (high_s - low_s)
    # the true median of N(10, 1) lies inside the large-sample interval
    assert low_l < 10 < high_l


def test_single_sample_has_degenerate_interval():
    stats = summarize([3.0])
    assert stats.median_ci_low_ms == stats.median_ci_high_ms == 3.0
    assert stats.std_ms == 0.0


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [-1.0, 2.0], [[1.0, 2.0]]])
def test_rejects_bad_latencies(bad):
    with pytest.raises(ValueError):
        summarize(bad)
