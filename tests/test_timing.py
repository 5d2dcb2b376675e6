import time

import pytest
from deploybench import timing
from deploybench.specs import TimingSettings
from helpers import timing_settings

FAST = timing_settings(
    warmup_iterations=3,
    warmup_seconds=0.0,
    min_iterations=20,
    min_seconds=0.05,
    max_seconds=5.0,
    max_cv=0.5,
    max_foreign_cpu=100.0,
    retries_if_noisy=0,
)


class Counter:
    def __init__(self, sleep=0.0, slow_every=0):
        self.calls = 0
        self.sleep = sleep
        self.slow_every = slow_every

    def __call__(self):
        self.calls += 1
        pause = self.sleep
        if self.slow_every and self.calls % self.slow_every == 0:
            pause *= 20
        time.sleep(pause)


def test_measures_until_both_count_and_duration_are_reached():
    step = Counter(sleep=0.001)
    attempt = timing.measure(step, FAST)
    assert len(attempt.latencies_ms) >= 20
    assert attempt.measure_seconds >= 0.05
    assert attempt.warmup_iterations == 3
    assert step.calls == attempt.warmup_iterations + len(attempt.latencies_ms)
    assert all(latency >= 1.0 for latency in attempt.latencies_ms)


def test_duration_floor_extends_a_fast_step_beyond_the_minimum_count():
    settings = TimingSettings(**{**FAST.__dict__, "min_iterations": 2, "min_seconds": 0.2})
    attempt = timing.measure(Counter(sleep=0.001), settings)
    assert attempt.measure_seconds >= 0.2
    # more than the minimum count, however slowly a loaded host sleeps
    assert len(attempt.latencies_ms) > settings.min_iterations


def test_time_limit_stops_a_slow_step_and_says_so():
    settings = TimingSettings(**{**FAST.__dict__, "min_iterations": 1000, "max_seconds": 0.1})
    attempt = timing.measure(Counter(sleep=0.01), settings)
    assert attempt.hit_time_limit
    assert len(attempt.latencies_ms) < 1000


def test_unsteady_step_is_flagged_noisy_and_retried():
    settings = TimingSettings(**{**FAST.__dict__, "max_cv": 0.1, "retries_if_noisy": 2})
    result = timing.time_runner(Counter(sleep=0.001, slow_every=4), settings)
    assert result["noisy"]
    assert any("CV" in reason for reason in result["noise"])
    assert len(result["attempts"]) == 3
    assert result["cold_ms"] > 0
    assert len(result["latencies_ms"]) == result["stats"].n


def test_retries_happen_only_after_a_noisy_attempt():
    settings = TimingSettings(**{**FAST.__dict__, "retries_if_noisy": 3})
    result = timing.time_runner(Counter(sleep=0.002), settings)
    attempts = result["attempts"]
    for earlier in attempts[:-1]:
        assert earlier["noise"], "a steady attempt must end the retries"
    assert result["noisy"] == all(a["noise"] for a in attempts)


def test_busy_machine_is_flagged(monkeypatch):
    # Pretend the rest of the machine burned 10 CPU-seconds per call of busy_cpu_seconds.
    ticks = iter(range(0, 1000, 10))
    monkeypatch.setattr(timing.hardware, "busy_cpu_seconds", lambda: float(next(ticks)))
    settings = TimingSettings(**{**FAST.__dict__, "max_foreign_cpu": 0.5})
    attempt = timing.measure(Counter(sleep=0.001), settings)
    assert attempt.foreign_cpu > 0.5
    assert any("other processes" in reason for reason in attempt.noise)


def test_foreign_cpu_excludes_our_own_work():
    assert timing._foreign_cpu(10.0, 14.0, 1.0, 5.0, 2.0) == pytest.approx(0.0)
    assert timing._foreign_cpu(10.0, 14.0, 1.0, 3.0, 2.0) == pytest.approx(1.0)
    assert timing._foreign_cpu(None, 14.0, 1.0, 3.0, 2.0) is None
