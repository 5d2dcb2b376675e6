"""Properties of the statistics and parity functions that must hold for any input (hypothesis),
and their behaviour against a known truth (simulation)."""

from __future__ import annotations

import numpy as np
import pytest
from deploybench.parity import check, compare_output, degenerate_reason
from deploybench.specs import Tolerance
from deploybench.stats import bootstrap_median_ci, paired_ratio, summarize
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

latencies = st.lists(
    st.floats(min_value=0.01, max_value=1e4, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=200,
)
positive_rounds = arrays(
    np.float64,
    st.integers(min_value=3, max_value=30),
    elements=st.floats(min_value=0.1, max_value=1e3, allow_nan=False, allow_infinity=False),
)
# Outputs below 1e-6 are a "near zero" (degenerate) reference for parity, judged as such; below
# about 1e-150 their squares underflow and the cosine loses digits: not outputs of a network.
logit_tables = arrays(
    np.float64,
    st.tuples(st.integers(2, 12), st.integers(2, 20)),
    elements=st.floats(min_value=-50, max_value=50, allow_nan=False, allow_infinity=False).filter(
        lambda x: x == 0 or abs(x) >= 1e-6
    ),
)


@given(latencies)
@settings(max_examples=60, deadline=None)
def test_summary_is_ordered_and_its_interval_holds_the_median(values):
    stats = summarize(values)
    assert stats.min_ms <= stats.median_ms <= stats.p90_ms <= stats.p99_ms <= stats.max_ms
    assert stats.median_ci_low_ms <= stats.median_ms <= stats.median_ci_high_ms
    assert stats.min_ms <= stats.median_ci_low_ms and stats.median_ci_high_ms <= stats.max_ms
    assert stats.n == len(values) and stats.cv >= 0
    # the order of the latencies carries no information for these figures
    assert summarize(values[::-1]).median_ms == stats.median_ms


@given(positive_rounds, st.floats(min_value=0.2, max_value=5.0))
@settings(max_examples=60, deadline=None)
def test_a_drift_shared_by_both_sides_of_a_round_leaves_the_ratio_unchanged(drift, speedup):
    slow = 10.0 * drift
    fast = slow / speedup
    estimate = paired_ratio(slow, fast)
    assert estimate.ratio == pytest.approx(speedup, rel=1e-9)
    assert estimate.ci_low == pytest.approx(speedup, rel=1e-9)
    assert estimate.ci_high == pytest.approx(speedup, rel=1e-9)
    assert estimate.tie is (abs(speedup - 1) < 1e-9)


@given(positive_rounds, positive_rounds)
@settings(max_examples=60, deadline=None)
def test_the_ratio_the_other_way_round_is_the_reciprocal(first, second):
    n = min(len(first), len(second))
    n -= 1 - n % 2  # an odd count: the median is one of the ratios, so this holds exactly
    forward = paired_ratio(first[:n], second[:n])
    backward = paired_ratio(second[:n], first[:n])
    assert forward.ratio * backward.ratio == pytest.approx(1.0)
    assert forward.tie == backward.tie


@given(logit_tables)
@settings(max_examples=60, deadline=None)
def test_outputs_compared_with_themselves_agree_fully(table):
    same = compare_output(table, table.copy())
    assert same.max_abs == 0 and same.max_rel == 0
    assert same.top1 == 1.0
    assert same.top5 == (1.0 if table.shape[1] >= 5 else None)


@given(logit_tables, st.floats(min_value=0.01, max_value=100))
@settings(max_examples=60, deadline=None)
def test_relative_error_and_cosine_do_not_depend_on_the_output_scale(table, scale):
    candidate = table + np.linspace(-0.01, 0.01, table.size).reshape(table.shape)
    base = compare_output(table, candidate)
    scaled = compare_output(table * scale, candidate * scale)
    assert scaled.max_rel == pytest.approx(base.max_rel, rel=1e-6, abs=1e-12)
    assert scaled.cosine == pytest.approx(base.cosine, rel=1e-7, abs=1e-12)


def test_the_median_interval_covers_a_known_median_at_its_claimed_95_percent():
    """3000 samples of 101 latencies from a lognormal whose median is known (e^1).

    The simulation's own error: a binomial standard error of 0.4 points at 3000 trials. The
    percentile bootstrap of a median covers 94.5% here (measured on 2026-12-02, a little under
    nominal, as expected at n = 101); the band 93.5-95.5% is 2.5 standard errors either side of
    that and excludes what a wrong level covers on the same samples: 96.1% for a 96.7%
    interval (alpha / 3), 88.6% for a 90% one.
    """
    rng = np.random.default_rng(11)
    trials, covered = 3000, 0
    for seed in range(trials):
        sample = rng.lognormal(mean=1.0, sigma=0.4, size=101)
        low, high = bootstrap_median_ci(sample, seed=seed)
        covered += low <= np.e <= high
    assert 0.935 <= covered / trials <= 0.955, covered / trials


def test_each_bootstrap_resample_is_as_large_as_the_sample():
    # the median of a resample of an odd number of values is one of the sample's values, so
    # the interval's ends are too (both quantiles fall among many equal bootstrap medians);
    # resamples one value short (even-sized) have medians halfway between two values
    rng = np.random.default_rng(3)
    for seed in range(200):
        sample = rng.lognormal(mean=1.0, sigma=0.4, size=21)
        low, high = bootstrap_median_ci(sample, seed=seed)
        assert low in sample and high in sample, (seed, low, high)


SPREAD = 1e-3  # parity.MIN_RELATIVE_SPREAD


@pytest.mark.parametrize(
    ("magnitude", "degenerate"), [(5e-7, True), (5e-6, False), (1e-4, False), (1.0, False)]
)
def test_a_reference_is_near_zero_only_below_a_millionth(magnitude, degenerate):
    rng = np.random.default_rng(4)
    reference = rng.standard_normal((6, 10))
    reference *= magnitude / np.abs(reference).max()
    reason = degenerate_reason(reference)
    assert (reason is not None and "near zero" in reason) is degenerate


@pytest.mark.parametrize(("spread", "degenerate"), [(SPREAD / 5, True), (SPREAD * 5, False)])
def test_a_reference_is_nearly_identical_only_below_a_thousandth_spread(spread, degenerate):
    rng = np.random.default_rng(5)
    row = rng.standard_normal(10)
    jitter = rng.uniform(-0.5, 0.5, size=(6, 10)) * spread * np.abs(row).max()
    reference = row + jitter
    reference[:, 0] = np.arange(6)  # a different top class per input: only the spread decides
    reference[:, 0] *= spread * np.abs(row).max() / 10
    reason = degenerate_reason(reference)
    assert (reason is not None and "nearly identical" in reason) is degenerate


def test_top_k_is_not_judged_against_a_degenerate_reference():
    """Near-tied classes in near-identical outputs: a rounding-level error flips the top-1, which
    with a meaningful reference would fail; here it proves nothing, so inconclusive."""
    row = np.zeros(10)
    row[3], row[7] = 1.0, 1.0 - 1e-7
    reference = np.tile(row, (4, 1))
    candidate = reference.copy()
    candidate[:, 7] += 2e-7  # class 7 now wins everywhere
    tolerance = Tolerance(max_rel=1e-4, min_cosine=0.9999, min_top1=1.0)
    assert compare_output(reference, candidate).top1 == 0.0
    result = check({"logits": reference}, {"logits": candidate}, tolerance)
    assert result.verdict == "inconclusive" and result.degenerate_reference
