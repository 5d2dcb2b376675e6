"""The timing harness: warm up, then measure until enough iterations *and* enough time.

Every per-iteration latency is kept. Noise is detected, not hidden: the CPU time other processes
used during the run is measured from /proc/stat, and a run is flagged noisy when that or its
coefficient of variation is too high; a noisy run is retried and the steadiest attempt is kept.

A device backend's latency is its own device clock's (CUDA events around the work on its
stream) when the runner offers one: the host clock would add launch and synchronisation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from . import hardware
from .specs import TimingSettings
from .stats import LatencyStats, summarize


@dataclass
class Attempt:
    latencies_ms: list[float]
    warmup_iterations: int
    warmup_seconds: float
    measure_seconds: float
    foreign_cpu: float | None  # cores kept busy by other processes, on average
    hit_time_limit: bool
    stats: LatencyStats | None = None
    noise: list[str] = field(default_factory=list)


def _foreign_cpu(busy_before, busy_after, own_before, own_after, wall) -> float | None:
    if busy_before is None or busy_after is None or wall <= 0:
        return None
    return max(0.0, ((busy_after - busy_before) - (own_after - own_before)) / wall)


def measure(
    step: Callable[[], Any],
    settings: TimingSettings,
    device_ms: Callable[[], float] | None = None,
) -> Attempt:
    """Warm up, then time ``step`` until enough iterations and enough seconds; each latency is
    ``device_ms()`` read after the step when given, else the host clock around it."""
    clock = time.perf_counter
    warm_start = clock()
    warm_count = 0
    while warm_count < settings.warmup_iterations or clock() - warm_start < settings.warmup_seconds:
        step()
        warm_count += 1
        if clock() - warm_start > settings.max_seconds:
            break
    warm_seconds = clock() - warm_start

    latencies: list[float] = []
    busy_before, own_before = hardware.busy_cpu_seconds(), time.process_time()
    start = clock()
    hit_limit = False
    while True:
        t0 = clock()
        step()
        t1 = clock()
        latencies.append(device_ms() if device_ms is not None else (t1 - t0) * 1e3)
        elapsed = t1 - start
        if len(latencies) >= settings.min_iterations and elapsed >= settings.min_seconds:
            break
        if elapsed >= settings.max_seconds:
            hit_limit = len(latencies) < settings.min_iterations
            break
    wall = clock() - start
    foreign = _foreign_cpu(
        busy_before, hardware.busy_cpu_seconds(), own_before, time.process_time(), wall
    )
    attempt = Attempt(latencies, warm_count, warm_seconds, wall, foreign, hit_limit)
    attempt.stats = summarize(latencies)
    if attempt.stats.cv > settings.max_cv:
        attempt.noise.append(f"CV {attempt.stats.cv:.2f} > {settings.max_cv}")
    if foreign is not None and foreign > settings.max_foreign_cpu:
        attempt.noise.append(f"other processes used {foreign:.2f} cores")
    return attempt


def _steadiness(attempt: Attempt) -> tuple[bool, float]:
    return bool(attempt.noise), attempt.stats.cv


def time_runner(
    run_batch: Callable[[], Any],
    settings: TimingSettings,
    device_ms: Callable[[], float] | None = None,
) -> dict[str, Any]:
    """Cold first call, then measured attempts; the steadiest attempt is the result.

    The keys are :class:`~deploybench.records.TimingRecord` fields.
    """
    load_before = hardware.load_average()[0]
    mhz_before = hardware.cpu_frequency_mhz()
    t0 = time.perf_counter()
    run_batch()
    cold_ms = (time.perf_counter() - t0) * 1e3

    attempts = []
    for _ in range(1 + settings.retries_if_noisy):
        attempts.append(measure(run_batch, settings, device_ms))
        if not attempts[-1].noise:
            break
    best = min(attempts, key=_steadiness)
    return {
        "stats": best.stats,
        "latencies_ms": best.latencies_ms,
        "cold_ms": cold_ms,
        "noisy": bool(best.noise),
        "noise": best.noise,
        "attempts": [{k: v for k, v in asdict(a).items() if k != "latencies_ms"} for a in attempts],
        "foreign_cpu": best.foreign_cpu,
        "hit_time_limit": best.hit_time_limit,
        "load_average_before": load_before,
        "load_average_after": hardware.load_average()[0],
        "cpu_mhz_before": mhz_before,
        "cpu_mhz_after": hardware.cpu_frequency_mhz(),
    }
