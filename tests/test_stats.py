import numpy as np
import pytest
from deploybench.stats import bootstrap_median_ci, paired_ratio, summarize


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


def test_paired_ratio_cancels_drift_shared_by_a_round():
    rounds = 15
    drift = 1 + 0.6 * np.sin(np.arange(rounds))  # the machine's speed, round by round
    base, fast = 30.0 * drift, 10.0 * drift
    estimate = paired_ratio(base, fast)
    assert estimate.ratio == pytest.approx(3.0)
    assert estimate.ci_low == pytest.approx(3.0) and estimate.ci_high == pytest.approx(3.0)
    assert estimate.rounds == rounds and not estimate.tie
    # the unpaired medians' ratio is the same here, but each side's own CI is widened by the
    # drift: taken apart they bound the ratio only loosely (about 1.4 to 6.7), not at 3 exactly
    base_low, base_high = bootstrap_median_ci(base)
    fast_low, fast_high = bootstrap_median_ci(fast)
    assert base_low / fast_high < 2 and base_high / fast_low > 4


def test_paired_ratio_skips_rounds_a_side_missed():
    base = np.array([10.0, np.nan, 10.0, 10.0])
    other = np.array([5.0, 5.0, np.nan, 5.0])
    estimate = paired_ratio(base, other)
    assert estimate.rounds == 2 and estimate.ratio == 2.0
    with pytest.raises(ValueError, match="no round"):
        paired_ratio(np.array([np.nan]), np.array([1.0]))


@pytest.mark.parametrize(("gap", "tie"), [(0.0, True), (0.25, False)])
def test_tie_when_the_ci_over_rounds_spans_one(gap, tie):
    rng = np.random.default_rng(3)
    drift = 1 + 0.5 * rng.random(20)
    a = 10 * drift * (1 + rng.normal(0, 0.03, 20))
    b = 10 * (1 + gap) * drift * (1 + rng.normal(0, 0.03, 20))
    assert paired_ratio(b, a).tie is tie


def test_ci_over_rounds_covers_the_true_ratio_about_95_percent_of_the_time():
    """Known truth: B is 1.5x slower than A; each round has drift and 5% lognormal noise."""
    rng = np.random.default_rng(7)
    covered = 0
    trials = 300
    for _ in range(trials):
        drift = 1 + rng.random(15)
        a = drift * rng.lognormal(0, 0.05, 15)
        b = 1.5 * drift * rng.lognormal(0, 0.05, 15)
        estimate = paired_ratio(b, a)
        covered += estimate.ci_low <= 1.5 <= estimate.ci_high
    # a percentile bootstrap of the median over 15 rounds: close to nominal, a bit under
    assert 0.88 <= covered / trials <= 0.99


def test_the_edges_of_the_input_checks():
    with pytest.raises(ValueError, match="1-D"):
        summarize(np.float64(3.0))  # a scalar is not a sequence of latencies
    zero = summarize([0.0, 0.0])  # a zero latency is allowed (and its CV is 0, not NaN)
    assert zero.median_ms == 0.0 and zero.cv == 0.0
    sub_millisecond = summarize([0.5, 0.7])
    assert sub_millisecond.cv > 0 and sub_millisecond.std_ms == pytest.approx(
        np.std([0.5, 0.7], ddof=1)
    )
    with pytest.raises(ValueError, match="non-negative"):
        summarize([0.5, -0.5])


def test_two_samples_get_a_real_interval():
    low, high = bootstrap_median_ci([1.0, 3.0])
    assert low == 1.0 and high == 3.0  # resampled medians of two values span both


def test_a_ci_touching_one_is_a_tie_and_estimates_are_immutable():
    import dataclasses

    from deploybench.stats import RatioEstimate

    assert RatioEstimate(1.2, 1.0, 1.3, 10).tie and RatioEstimate(0.9, 0.8, 1.0, 10).tie
    assert not RatioEstimate(1.2, 1.01, 1.3, 10).tie and not RatioEstimate(0.9, 0.8, 0.99, 10).tie
    with pytest.raises(dataclasses.FrozenInstanceError):
        RatioEstimate(1.2, 1.0, 1.3, 10).ratio = 2.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        summarize([1.0]).median_ms = 2.0


@pytest.mark.parametrize(
    ("top", "bottom"),
    [([1.0, 2.0], [1.0, 2.0, 3.0]), ([1.0, 2.0, 3.0], [1.0, 2.0]), ([[1.0, 2.0]], [[1.0, 2.0]])],
)
def test_paired_rounds_must_line_up(top, bottom):
    with pytest.raises(ValueError, match="same length"):
        paired_ratio(np.array(top), np.array(bottom))


def test_rounds_without_a_positive_denominator_are_left_out():
    estimate = paired_ratio(np.array([6.0, 6.0, 6.0]), np.array([0.0, -1.0, 2.0]))
    assert estimate.rounds == 1 and estimate.ratio == 3.0


def test_wilson_interval_matches_the_textbook_and_stays_inside_zero_and_one():
    from deploybench.stats import wilson_interval

    eighty_one = wilson_interval(81, 100)
    assert eighty_one.value == 0.81
    assert (round(eighty_one.low, 4), round(eighty_one.high, 4)) == (0.7222, 0.8749)
    all_right = wilson_interval(16, 16)
    assert all_right.high == 1.0 and 0.79 < all_right.low < 0.81  # not [1, 1]
    # 16 images cannot separate 0.81 from 0.94: their intervals overlap
    assert wilson_interval(13, 16).high > wilson_interval(15, 16).low


def test_the_paired_change_interval_contains_the_change_and_narrows_with_more_images():
    from deploybench.stats import paired_difference

    def pairs(both, only_candidate, only_reference, neither, scale=1):
        candidate = [1] * both + [1] * only_candidate + [0] * only_reference + [0] * neither
        reference = [1] * both + [0] * only_candidate + [1] * only_reference + [0] * neither
        return np.repeat(candidate, scale), np.repeat(reference, scale)

    small = paired_difference(*pairs(70, 2, 8, 20))
    assert small.value == -0.06 and small.low < -0.06 < small.high
    large = paired_difference(*pairs(70, 2, 8, 20, scale=10))
    assert large.low < -0.06 < large.high and (large.high - large.low) < (small.high - small.low)
    assert large.high < 0  # 1000 images tell this drop from none; 100 do not
    assert small.high > 0
    # the sample size the drop needs sits between the two
    assert 100 < small.images_needed < 1000 and small.images_needed == large.images_needed
    # swapping the sides mirrors the interval
    mirrored = paired_difference(*reversed(pairs(70, 2, 8, 20)))
    assert (round(mirrored.low, 12), round(mirrored.high, 12)) == (
        round(-small.high, 12),
        round(-small.low, 12),
    )
    identical = paired_difference(*pairs(90, 0, 0, 10))
    assert (
        identical.value == 0
        and identical.images_needed is None
        and identical.low < 0 < identical.high
    )
    # four images both sides got the same: no evidence they always will (no zero-width interval)
    four = paired_difference(*pairs(2, 0, 0, 2))
    assert four.high - four.low > 0.5
    # Agresti and Min's (2005) interval by hand for b=2, c=8, n=100: half a case added per cell
    b, c, m = 2.5, 8.5, 102
    half = 1.959963984540054 * np.sqrt((b + c) - (b - c) ** 2 / m) / m
    assert small.low == pytest.approx((b - c) / m - half)
    assert small.high == pytest.approx((b - c) / m + half)
