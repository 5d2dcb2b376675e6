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
