"""Latency statistics: every number the report shows is one of these, over repeated runs."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class LatencyStats:
    n: int
    median_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    cv: float
    min_ms: float
    max_ms: float
    median_ci_low_ms: float
    median_ci_high_ms: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def bootstrap_median_ci(
    samples: np.ndarray, confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the median."""
    values = np.asarray(samples, dtype=np.float64)
    if values.size == 1:
        return float(values[0]), float(values[0])
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, values.size, size=(resamples, values.size))
    medians = np.median(values[draws], axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(medians, [alpha, 1.0 - alpha])
    return float(low), float(high)


def summarize(latencies_ms: np.ndarray | list[float]) -> LatencyStats:
    values = np.asarray(latencies_ms, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError("need a non-empty 1-D sequence of latencies")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError("latencies must be finite and non-negative")
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if values.size > 1 else 0.0
    low, high = bootstrap_median_ci(values)
    return LatencyStats(
        n=int(values.size),
        median_ms=float(np.median(values)),
        p90_ms=float(np.percentile(values, 90)),
        p99_ms=float(np.percentile(values, 99)),
        mean_ms=mean,
        std_ms=std,
        cv=std / mean if mean > 0 else 0.0,
        min_ms=float(values.min()),
        max_ms=float(values.max()),
        median_ci_low_ms=low,
        median_ci_high_ms=high,
    )


@dataclass(frozen=True)
class RatioEstimate:
    """A paired ratio over interleaved rounds: the median of the per-round ratios and its
    bootstrap 95% CI over rounds. ``tie`` when the CI cannot separate the two (it spans 1)."""

    ratio: float
    ci_low: float
    ci_high: float
    rounds: int

    @property
    def tie(self) -> bool:
        return self.ci_low <= 1.0 <= self.ci_high


def paired_ratio(numerator: np.ndarray, denominator: np.ndarray) -> RatioEstimate:
    """``numerator[r] / denominator[r]`` for every round both measured, summarised over rounds.

    Pairing by round cancels the drift both saw in that round: the ratio is stable where each
    side's absolute latency is not. Speedup of B over A = paired_ratio(A's, B's round medians).
    """
    top = np.asarray(numerator, dtype=np.float64)
    bottom = np.asarray(denominator, dtype=np.float64)
    if top.shape != bottom.shape or top.ndim != 1:
        raise ValueError("paired rounds need two 1-D sequences of the same length")
    both = np.isfinite(top) & np.isfinite(bottom) & (bottom > 0)
    if not both.any():
        raise ValueError("no round measured both sides")
    ratios = top[both] / bottom[both]
    low, high = bootstrap_median_ci(ratios)
    return RatioEstimate(float(np.median(ratios)), low, high, int(both.sum()))


# ---------------------------------------------------------------- accuracy on labelled images

#: Two-sided 95%, and 80% power for the sample size a difference needs.
Z_95 = 1.959963984540054
Z_POWER_80 = 0.8416212335729143


@dataclass(frozen=True)
class Proportion:
    """A share of n (an accuracy) with its Wilson score 95% interval."""

    value: float
    low: float
    high: float
    n: int


def wilson_interval(successes: int, n: int) -> Proportion:
    """Wilson's score interval: right at the bounds where the Wald interval is not (an
    accuracy of 15/16 is not 0.94 ± 0.12)."""
    if n <= 0:
        raise ValueError("a proportion needs n >= 1")
    p = successes / n
    z2 = Z_95**2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z_95 * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return Proportion(p, float(max(0.0, centre - half)), float(min(1.0, centre + half)), n)


@dataclass(frozen=True)
class PairedDifference:
    """Accuracy of a candidate minus that of the reference on the same images, with the
    Agresti–Min 95% interval for paired proportions, and how many images a difference of that
    size needs to be told from none (two-sided 5%, 80% power)."""

    value: float
    low: float
    high: float
    discordant: int  # images one got right and the other wrong
    images_needed: int | None  # None: no difference to size


def paired_difference(candidate: np.ndarray, reference: np.ndarray) -> PairedDifference:
    """``candidate`` and ``reference``: whether each image was classified right (booleans,
    the same images in the same order). Agresti and Min (2005): a Wald interval after adding
    half an image to each of the four cells, which keeps its width where both sides agree on
    every image (Newcombe's score interval collapses to zero width there: 4 images on which
    two configurations agree do not show that they always will)."""
    candidate, reference = np.asarray(candidate, bool), np.asarray(reference, bool)
    if candidate.shape != reference.shape or candidate.size == 0:
        raise ValueError("paired proportions need the same non-empty set of images")
    n = candidate.size
    only_candidate = int(np.sum(candidate & ~reference))
    only_reference = int(np.sum(~candidate & reference))
    b, c, m = only_candidate + 0.5, only_reference + 0.5, n + 2.0
    centre = (b - c) / m
    half = Z_95 * np.sqrt((b + c) - (b - c) ** 2 / m) / m
    difference = (only_candidate - only_reference) / n
    discordant = only_candidate + only_reference
    return PairedDifference(
        difference,
        float(max(-1.0, centre - half)),
        float(min(1.0, centre + half)),
        discordant,
        images_for_paired_difference(difference, discordant / n),
    )


def images_for_paired_difference(difference: float, discordant_share: float) -> int | None:
    """Images a paired (McNemar) test needs to tell ``difference`` from none, two-sided 5% and
    80% power, when that share of images is classified right by one side only (Connor 1987)."""
    if difference == 0 or discordant_share <= 0:
        return None
    spread = max(discordant_share - difference**2, 0.0)
    root = Z_95 * np.sqrt(discordant_share) + Z_POWER_80 * np.sqrt(spread)
    return int(np.ceil(root**2 / difference**2))
