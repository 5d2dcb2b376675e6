"""The timing harness against a scripted clock: every count, duration, stop rule and noise
threshold to the exact value (steps of 1/8 s from t = 1024 s: binary-exact arithmetic, so a
boundary is hit exactly, and a stop rule that is off by one iteration shows)."""

from __future__ import annotations

import types

import pytest
from deploybench import timing
from helpers import timing_settings

STEP = 0.125  # seconds per step, unless a test scripts the durations


class ScriptedClock:
    """perf_counter advances only when the step runs; process_time never moves."""

    def __init__(self, durations=None):
        self.now = 1024.0
        self.durations = list(durations or [])
        self.calls = 0

    def perf_counter(self) -> float:
        return self.now

    def process_time(self) -> float:
        return 7.0

    def step(self) -> None:
        self.now += self.durations[self.calls] if self.calls < len(self.durations) else STEP
        self.calls += 1


@pytest.fixture
def clock(monkeypatch):
    fake = ScriptedClock()
    monkeypatch.setattr(
        timing,
        "time",
        types.SimpleNamespace(perf_counter=fake.perf_counter, process_time=fake.process_time),
    )
    monkeypatch.setattr(timing.hardware, "busy_cpu_seconds", lambda: None)
    return fake


def settings(**changes):
    base = dict(
        warmup_iterations=0,
        warmup_seconds=0.0,
        min_iterations=1,
        min_seconds=0.0,
        max_seconds=100.0,
        max_cv=0.5,
        max_foreign_cpu=0.5,
        retries_if_noisy=0,
    )
    return timing_settings(**{**base, **changes})


def test_counts_and_durations_are_exact(clock):
    attempt = timing.measure(clock.step, settings(warmup_iterations=3, min_iterations=5))
    assert attempt.warmup_iterations == 3
    assert attempt.warmup_seconds == 3 * STEP
    assert attempt.latencies_ms == [STEP * 1e3] * 5
    assert attempt.measure_seconds == 5 * STEP
    assert attempt.hit_time_limit is False
    assert attempt.noise == []


def test_the_warmup_runs_until_its_duration_is_reached_and_not_one_step_more(clock):
    attempt = timing.measure(clock.step, settings(warmup_seconds=3 * STEP))
    assert attempt.warmup_iterations == 3


def test_the_warmup_is_capped_by_the_time_limit(clock):
    attempt = timing.measure(clock.step, settings(warmup_iterations=100, max_seconds=4 * STEP))
    # the cap is checked after each step: past 4 steps' worth, i.e. after the fifth
    assert attempt.warmup_iterations == 5


def test_measuring_stops_when_both_count_and_duration_are_reached(clock):
    by_duration = timing.measure(clock.step, settings(min_iterations=2, min_seconds=4 * STEP))
    assert len(by_duration.latencies_ms) == 4
    clock.calls = 0
    by_count = timing.measure(clock.step, settings(min_iterations=6, min_seconds=2 * STEP))
    assert len(by_count.latencies_ms) == 6


def test_the_time_limit_stops_measuring_at_exactly_the_limit(clock):
    short = timing.measure(clock.step, settings(min_iterations=100, max_seconds=4 * STEP))
    assert len(short.latencies_ms) == 4
    assert short.hit_time_limit is True


def test_a_cv_at_the_threshold_is_not_noise(clock):
    # constant latencies: CV 0, exactly the threshold 0, and below 0.5
    assert timing.measure(clock.step, settings(min_iterations=4, max_cv=0.0)).noise == []
    assert timing.measure(clock.step, settings(min_iterations=4, max_cv=0.5)).noise == []


@pytest.mark.parametrize(("threshold", "noisy"), [(0.5, False), (0.75, False), (0.25, True)])
def test_foreign_cpu_is_noise_only_above_its_threshold(clock, monkeypatch, threshold, noisy):
    # the rest of the machine: 0.25 CPU-s over a 0.5 s measurement = 0.5 cores
    readings = iter([100.0, 100.25])
    monkeypatch.setattr(timing.hardware, "busy_cpu_seconds", lambda: next(readings))
    attempt = timing.measure(clock.step, settings(min_iterations=4, max_foreign_cpu=threshold))
    assert attempt.foreign_cpu == 0.5
    assert bool(attempt.noise) is noisy


def test_foreign_cpu_edge_cases():
    assert timing._foreign_cpu(1.0, 2.0, 0.0, 0.0, 0.0) is None  # no time measured
    assert timing._foreign_cpu(1.0, None, 0.0, 0.0, 1.0) is None
    assert timing._foreign_cpu(10.0, 10.5, 0.0, 1.0, 1.0) == 0.0  # never negative


def test_cold_call_loads_and_retries_are_recorded_exactly(clock, monkeypatch):
    loads = iter([(1.0, 2.0, 3.0), (4.0, 5.0, 6.0)])
    monkeypatch.setattr(timing.hardware, "load_average", lambda: next(loads))
    # cold call 1 s; attempt 1 noisy (one slow step), attempt 2 steady: no third attempt
    clock.durations = [1.0] + [STEP, STEP, 2.0, STEP] + [STEP] * 4 + [STEP] * 4
    result = timing.time_runner(
        clock.step, settings(min_iterations=4, max_cv=0.3, retries_if_noisy=2)
    )
    assert result["cold_ms"] == 1000.0
    assert result["load_average_before"] == 1.0 and result["load_average_after"] == 4.0
    assert len(result["attempts"]) == 2
    assert result["attempts"][0]["noise"] and not result["attempts"][1]["noise"]
    assert result["noisy"] is False and result["latencies_ms"] == [STEP * 1e3] * 4
    assert set(result["attempts"][0]) == {
        "warmup_iterations",
        "warmup_seconds",
        "measure_seconds",
        "foreign_cpu",
        "hit_time_limit",
        "stats",
        "noise",
    }


def test_a_device_clock_gives_the_latencies_while_the_host_clock_still_bounds_the_run(clock):
    device_times = iter([0.5, 0.25, 0.75, 0.5])
    attempt = timing.measure(
        clock.step,
        settings(warmup_iterations=2, min_iterations=4, min_seconds=4 * STEP),
        device_ms=lambda: next(device_times),
    )
    # read once per measured step (none during warm-up): the device's numbers, not the host's
    assert attempt.latencies_ms == [0.5, 0.25, 0.75, 0.5]
    assert attempt.warmup_iterations == 2
    assert attempt.measure_seconds == 4 * STEP
    assert attempt.stats.median_ms == 0.5


def test_time_runner_hands_the_device_clock_to_every_attempt(clock, monkeypatch):
    monkeypatch.setattr(timing.hardware, "load_average", lambda: (0.0, 0.0, 0.0))
    monkeypatch.setattr(timing.hardware, "cpu_frequency_mhz", lambda: None)
    result = timing.time_runner(clock.step, settings(min_iterations=3), device_ms=lambda: 2.0)
    assert result["latencies_ms"] == [2.0, 2.0, 2.0]
    assert result["cold_ms"] == STEP * 1e3  # the cold first call is host time: nothing to read


# ---- which attempt is kept, and what is reported of it (tools/mutants/timing.toml)


def scripted_attempt(latencies_ms, noise=(), foreign_cpu=0.0, hit_time_limit=False):
    attempt = timing.Attempt(list(latencies_ms), 0, 0.0, 1.0, foreign_cpu, hit_time_limit)
    attempt.stats = timing.summarize(attempt.latencies_ms)
    attempt.noise = list(noise)
    return attempt


def run_attempts(monkeypatch, attempts):
    """time_runner over attempts scripted in order; returns its result."""
    scripted = iter(attempts)
    monkeypatch.setattr(timing, "measure", lambda *_args: next(scripted))
    monkeypatch.setattr(timing.hardware, "load_average", lambda: (0.0, 0.0, 0.0))
    monkeypatch.setattr(timing.hardware, "cpu_frequency_mhz", lambda: None)
    return timing.time_runner(lambda: None, settings(retries_if_noisy=len(attempts) - 1))


def test_when_every_attempt_is_noisy_the_one_with_the_lowest_cv_is_kept_with_its_own_facts(
    monkeypatch,
):
    # relative spread decides, not the absolute one: the slow attempt has the larger
    # standard deviation in ms (5 against 2) but the lower CV (0.05 against 0.2)
    first = scripted_attempt([8.0, 10.0, 12.0], ["CV"], foreign_cpu=0.1, hit_time_limit=False)
    steadiest = scripted_attempt(
        [95.0, 100.0, 105.0], ["other processes"], foreign_cpu=0.9, hit_time_limit=True
    )
    last = scripted_attempt([1.0, 2.0, 0.5], ["CV"], foreign_cpu=0.3, hit_time_limit=False)
    result = run_attempts(monkeypatch, [first, steadiest, last])
    # the kept statistics have the lowest CV of the three, but not the lowest spread in ms
    assert result["stats"].cv == min(a.stats.cv for a in (first, steadiest, last))
    assert result["stats"].std_ms > min(a.stats.std_ms for a in (first, steadiest, last))
    assert len(result["attempts"]) == 3
    assert result["latencies_ms"] == [95.0, 100.0, 105.0]
    assert result["stats"] is steadiest.stats
    assert (result["noisy"], result["noise"]) == (True, ["other processes"])
    assert result["foreign_cpu"] == 0.9
    assert result["hit_time_limit"] is True


def test_a_steady_attempt_beats_a_noisy_one_with_a_lower_cv(monkeypatch):
    # noise first, CV second: an attempt flagged for other processes' load is not kept over a
    # clean one, however tight its latencies look
    loaded = scripted_attempt([10.0, 10.0, 10.1], ["other processes used 0.90 cores"], 0.9)
    clean = scripted_attempt([10.0, 12.0, 14.0])
    result = run_attempts(monkeypatch, [loaded, clean])
    assert result["latencies_ms"] == [10.0, 12.0, 14.0]
    assert (result["noisy"], result["noise"], result["foreign_cpu"]) == (False, [], 0.0)


def test_noise_is_judged_on_the_relative_spread_not_the_spread_in_milliseconds(clock):
    # 125 and 250 ms alternating: a standard deviation of ~70 ms, far above 0.5, but a CV of
    # ~0.38, below it: steady
    clock.durations = [STEP, 2 * STEP] * 2
    steady = timing.measure(clock.step, settings(min_iterations=4, max_cv=0.5))
    assert steady.stats.std_ms > 0.5 > steady.stats.cv
    assert steady.noise == []
    clock.durations, clock.calls = [STEP, 2 * STEP] * 2, 0
    noisy = timing.measure(clock.step, settings(min_iterations=4, max_cv=0.3))
    assert noisy.noise == [f"CV {noisy.stats.cv:.2f} > 0.3"]


def test_the_cpu_frequency_is_read_before_and_after_in_that_order(clock, monkeypatch):
    monkeypatch.setattr(timing.hardware, "load_average", lambda: (0.0, 0.0, 0.0))
    readings = iter([2000.0, 3000.0])
    monkeypatch.setattr(timing.hardware, "cpu_frequency_mhz", lambda: next(readings))
    result = timing.time_runner(clock.step, settings())
    assert (result["cpu_mhz_before"], result["cpu_mhz_after"]) == (2000.0, 3000.0)
