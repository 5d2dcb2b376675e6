"""The side-by-side comparison's bookkeeping with scripted workers (no processes, no clock):
which process gets which burst, what the first warm-up is, how crashes, missing rounds, failed
entries and foreign load are handled, and which entry is the baseline. Written from the
survivors of the first mutation run of ``stages/compare.py`` (docs/testing.md)."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
from deploybench.isolation import CallFailed, ChildDied
from deploybench.records import ComparedConfig, ComparisonRecord, Status
from deploybench.stages import compare
from deploybench.stages.compare import (
    _add_speedups,
    _Contender,
    _is_baseline,
    _run_rounds,
    _start_workers,
    burst_settings,
)
from helpers import comparison_settings, limits

# the schema's settings but for these (burst warm-up: 1 iteration; 2 baseline bursts a round)
SETTINGS = comparison_settings(
    rounds=3,
    warmup_seconds=0.5,
    burst_warmup_seconds=0.125,
    burst_min_iterations=2,
    burst_seconds=0.02,
    burst_max_seconds=5.0,
    processes=3,
    gap_seconds=0.0,
)


@pytest.fixture(autouse=True)
def no_real_gaps(monkeypatch):
    """The idle gaps are not slept here: a test that looks at them records them itself."""
    monkeypatch.setattr(compare.time, "sleep", lambda seconds: None)


class Worker:
    """Answers every burst with ``latency`` (and ``foreign``); records what it was asked."""

    def __init__(self, name, log, latency=10.0, foreign=None, dies_on_call=None):
        self.name, self.log, self.latency, self.foreign = name, log, latency, foreign
        self.dies_on_call, self.calls, self.closed, self.pid = dies_on_call, 0, False, 0

    def call(self, method, settings):
        self.calls += 1
        if self.dies_on_call == self.calls:
            raise ChildDied(f"{self.name} killed by SIGKILL during a burst")
        self.log.append((self.name, settings))
        return [self.latency], self.foreign

    def close(self):
        self.closed = True


def contender(backend, workers, precision="fp32", status=Status.OK):
    entry = ComparedConfig(backend=backend, precision=precision, shape="dynamic", status=status)
    return _Contender(entry, workers)


def test_the_first_warm_up_is_the_long_one_and_bursts_have_their_own():
    first = burst_settings(SETTINGS, warmup=True)
    burst = burst_settings(SETTINGS)
    assert first.warmup_seconds == 0.5 and burst.warmup_seconds == 0.125
    log = []
    workers = [Worker(f"p{i}", log) for i in range(3)]
    _run_rounds([contender("pytorch", workers)], SETTINGS, "pytorch fp32")
    # every process's first call is the long warm-up, every later one a burst
    assert [s.warmup_seconds for _, s in log[:3]] == [0.5, 0.5, 0.5]
    assert {s.warmup_seconds for _, s in log[3:]} == {0.125}


def test_the_baselines_bursts_take_turns_over_three_processes_round_by_round():
    log = []
    workers = [Worker(f"p{i}", log) for i in range(3)]
    base = contender("pytorch", workers)
    _run_rounds([base], SETTINGS, "pytorch fp32")
    bursts = [name for name, settings in log if settings.warmup_seconds == 0.125]
    # round r, burst k -> process (2r + k) mod 3: {0, 1}, {2, 0}, {1, 2}
    rounds = [sorted(bursts[i : i + 2]) for i in range(0, 6, 2)]
    assert rounds == [["p0", "p1"], ["p0", "p2"], ["p1", "p2"]]
    assert base.entry.rounds == 3


def test_only_the_named_baseline_gets_extra_bursts():
    assert _is_baseline(contender("pytorch", []), "pytorch fp32")
    # alphabetically after the baseline, but not the baseline
    assert not _is_baseline(contender("tvm", []), "pytorch fp32")
    assert not _is_baseline(contender("pytorch", [], precision="bf16"), "pytorch fp32")


class InOrder:
    """random.Random whose shuffle keeps the order: the crashing contender bursts first."""

    def __init__(self, seed):
        pass

    def shuffle(self, items):
        pass


def test_a_crash_mid_round_does_not_cost_the_others_their_burst(caplog, monkeypatch):
    monkeypatch.setattr(compare.random, "Random", InOrder)
    log = []
    crashing = contender("crashing", [Worker("c", log, dies_on_call=2)])  # after its warm-up
    others = [contender(name, [Worker(name, log)]) for name in ("a", "b", "d", "e", "f")]
    with caplog.at_level(logging.INFO, logger="deploybench"):
        _run_rounds([crashing, *others], dataclasses.replace(SETTINGS, processes=1), "pytorch fp32")
    assert crashing.entry.status is Status.FAILED and not crashing.alive
    assert crashing.entry.reason == "c killed by SIGKILL during a burst"
    assert all(o.entry.rounds == 3 for o in others)
    assert "round 3/3 done" in caplog.text and "round 1/3 done" in caplog.text


def test_a_baseline_that_crashes_on_its_first_burst_skips_its_second_not_the_others(
    monkeypatch,
):
    monkeypatch.setattr(compare.random, "Random", InOrder)
    log = []
    # in a fixed order the baseline's two bursts come first: it dies on the first
    base = contender("pytorch", [Worker("base", log, dies_on_call=2)])
    others = [contender(name, [Worker(name, log)]) for name in ("a", "b")]
    _run_rounds([base, *others], dataclasses.replace(SETTINGS, processes=1), "pytorch fp32")
    assert base.entry.status is Status.FAILED
    assert all(o.entry.rounds == 3 for o in others)


def test_the_most_foreign_load_seen_is_kept_and_none_stays_unknown():
    log = []
    loaded = contender("loaded", [Worker("l", log, foreign=0.25)])
    unknown = contender("unknown", [Worker("u", log, foreign=None)])
    _run_rounds([loaded, unknown], dataclasses.replace(SETTINGS, processes=1), "pytorch fp32")
    assert loaded.entry.foreign_cpu_max == 0.25
    assert unknown.entry.foreign_cpu_max is None


def entry(backend, medians, status=Status.OK, precision="fp32"):
    config = ComparedConfig(backend=backend, precision=precision, shape="dynamic", status=status)
    config.round_medians_ms = list(medians)
    config.rounds = sum(m is not None for m in medians)
    return config


def test_the_baseline_is_found_by_name_wherever_it_stands():
    tvm, base = entry("tvm", [5.0, 5.0, 5.0]), entry("pytorch", [10.0, 10.0, 10.0])
    assert _add_speedups([tvm, base], "pytorch fp32") == ""
    assert tvm.speedup == pytest.approx(2.0) and base.speedup == pytest.approx(1.0)
    assert tvm.baseline == base.baseline == "pytorch fp32"


def test_a_failed_baseline_is_no_baseline_even_with_rounds():
    base = entry("pytorch", [10.0, 10.0], status=Status.FAILED)
    other = entry("onnxruntime", [5.0, 5.0])
    note = _add_speedups([base, other], "pytorch fp32")
    assert note == "no speedups: the baseline (pytorch fp32) was not measured"
    assert other.speedup is None and base.median_ms is None
    assert other.median_ms == 5.0


def test_failed_entries_get_no_median_and_no_speedup_and_unmeasured_ones_fail():
    base = entry("pytorch", [10.0, 12.0, 11.0])
    crashed = entry("openvino", [4.0, None, None], status=Status.FAILED)
    never = entry("tvm", [None, None, None])
    fine = entry("onnxruntime", [5.0, 6.0, None])
    assert _add_speedups([base, crashed, never, fine], "pytorch fp32") == ""
    assert crashed.median_ms is None and crashed.speedup is None
    assert crashed.status is Status.FAILED
    assert never.status is Status.FAILED and never.reason == "measured in no round"
    assert never.speedup is None
    assert fine.median_ms == 5.5 and fine.speedup == pytest.approx(np.median([2.0, 2.0]))


def test_only_the_baseline_measured_says_so():
    base = entry("pytorch", [10.0])
    failed = entry("onnxruntime", [5.0], status=Status.FAILED)
    skipped = entry("openvino", [None], status=Status.SKIPPED)
    assert _add_speedups([base, failed, skipped], "pytorch fp32") == (
        "nothing to compare: only the baseline ran"
    )


def test_a_configuration_whose_compile_failed_gets_no_speedup():
    base, fine = entry("pytorch", [10.0, 10.0]), entry("onnxruntime", [5.0, 5.0])
    skipped = entry("openvino", [None, None], status=Status.SKIPPED)
    assert _add_speedups([skipped, base, fine], "pytorch fp32") == ""
    assert skipped.speedup is None and skipped.baseline is None
    assert skipped.status is Status.SKIPPED and fine.speedup == pytest.approx(2.0)


class FakeWorkerFactory:
    """Stands in for isolation.Worker in _start_workers: each start answers, or raises."""

    def __init__(self, failures):
        self.failures = dict(failures)
        self.started = []

    def __call__(self, setup, limits, log_path):
        name = setup.args[0].name
        error = self.failures.get(name)
        if error is not None:
            raise error
        worker = Worker(name, [])
        self.started.append(worker)
        return worker


@pytest.mark.parametrize(
    "error", [ChildDied("killed by SIGSEGV during load"), CallFailed("RuntimeError: bad IR")]
)
def test_a_worker_that_cannot_start_fails_its_configuration_only(monkeypatch, error):
    factory = FakeWorkerFactory({"openvino": error})
    monkeypatch.setattr(compare, "Worker", factory)
    names = ("pytorch", "openvino", "onnxruntime")
    contenders = [contender(n, []) for n in names]
    skipped = contender("tvm", [], status=Status.SKIPPED)
    configs = [
        {
            "key": {"model": "m", "backend": n, "precision": "fp32", "shape": "dynamic"},
            "options": {},
        }
        for n in (*names, "tvm")
    ]
    caps = limits(timing_seconds=60, memory_mb=1000)
    _start_workers([*contenders, skipped], configs, ["a"] * 4, np.zeros(1), 1, caps, processes=2)
    by_name = {c.entry.backend: c for c in contenders}
    assert by_name["openvino"].entry.status is Status.FAILED
    assert by_name["openvino"].entry.reason == str(error)
    assert len(by_name["pytorch"].workers) == len(by_name["onnxruntime"].workers) == 2
    assert not skipped.workers  # a configuration whose compile failed gets no worker


def test_closing_a_contender_closes_every_worker_process():
    workers = [Worker(f"p{i}", []) for i in range(3)]
    entrant = contender("pytorch", workers)
    entrant.close()
    assert all(w.closed for w in workers) and not entrant.alive


@pytest.mark.parametrize(("device", "with_gpu"), [("cpu", False), ("cuda", True)])
def test_a_whole_comparison_closes_its_workers_and_records_each_process_median(
    monkeypatch, tmp_path, device, with_gpu
):
    started, asked = [], []
    real_where = compare.where

    def where(with_gpu):
        asked.append(with_gpu)
        return real_where(with_gpu=False)

    monkeypatch.setattr(compare, "where", where)

    def fake_start(contenders, configs, artifact_dirs, data, threads, limits, processes):
        for entrant, latency in zip(contenders, (10.0, 4.0), strict=True):
            entrant.workers = [Worker(f"w{i}", [], latency=latency + i) for i in range(2)]
            started.extend(entrant.workers)

    monkeypatch.setattr(compare, "_start_workers", fake_start)
    monkeypatch.setattr(compare, "compile_failure", lambda artifact_dir: "")
    monkeypatch.setattr(compare, "load_feeds", lambda path: {"input": np.zeros((2, 3, 4, 4))})
    out = tmp_path / "comparison.json"
    keys = [
        {"model": "m", "backend": b, "precision": "fp32", "shape": "dynamic"}
        for b in (("pytorch_cuda", "tensorrt") if with_gpu else ("pytorch", "onnxruntime"))
    ]
    compare.compare_configs(
        artifact_dirs=["a", "b"],
        inputs_npz="unused",
        model="m",
        configs=[{"key": k, "options": {}} for k in keys],
        device="".join(device),  # a string built at run time, as Snakemake's wildcards are
        batch=1,
        threads=1,
        comparison=dataclasses.replace(SETTINGS, processes=2),
        limits=limits(),
        out_json=str(out),
    )
    assert started and all(w.closed for w in started)
    record = ComparisonRecord.read(out)
    base, ort = record.configs
    # each worker answers with its own latency: one median per process
    assert base.process_medians_ms == [10.0, 11.0] and ort.process_medians_ms == [4.0, 5.0]
    # the baseline pools both processes each round (10.5); the other alternates 4, 5, 4
    assert ort.speedup == pytest.approx(10.5 / 4)
    assert ort.hardware_id and ort.hardware
    # a GPU comparison's placement names its GPU, and its baseline is the GPU one
    assert asked == [with_gpu]
    assert record.baseline == ("pytorch_cuda fp32" if with_gpu else "pytorch fp32")


def test_every_configuration_needs_its_artifact(monkeypatch):
    monkeypatch.setattr(compare, "load_feeds", lambda path: {"input": np.zeros((1, 3, 4, 4))})
    monkeypatch.setattr(compare, "compile_failure", lambda artifact_dir: "")
    with pytest.raises(ValueError):
        compare_pytorch_fp32(["a", "b"], SETTINGS, "unused.json")


def compare_pytorch_fp32(artifact_dirs, comparison, out_json):
    """compare_configs of the one configuration pytorch fp32 (the workers are the test's)."""
    key = {"model": "m", "backend": "pytorch", "precision": "fp32", "shape": "dynamic"}
    compare.compare_configs(
        artifact_dirs=artifact_dirs,
        inputs_npz="unused",
        model="m",
        configs=[{"key": key, "options": {}}],
        device="cpu",
        batch=1,
        threads=1,
        comparison=comparison,
        limits=limits(),
        out_json=out_json,
    )


# --- what docs/measuring.md ("Speedups and the recommendation") says of the rounds, pinned one
# statement at a time. Written from the survivors of the semantic mutants of compare.py
# (tools/mutants/compare.toml).

# every setting a value of its own, so a setting read for another shows in what is asked
DISTINCT = dataclasses.replace(
    SETTINGS,
    rounds=4,
    warmup_seconds=0.5,
    burst_warmup_iterations=5,
    burst_warmup_seconds=0.125,
    burst_min_iterations=7,
    burst_seconds=0.25,
    burst_max_seconds=4.0,
    baseline_bursts=2,
    processes=1,
    gap_seconds=0.375,
)


class Scripted(Worker):
    """Answers its calls in turn from ``answers``, each ``(latencies, foreign)``, the last one
    repeated; the first call is the worker's first warm-up."""

    def __init__(self, name, log, answers):
        super().__init__(name, log)
        self.answers = list(answers)

    def call(self, method, settings):
        super().call(method, settings)
        return self.answers[min(self.calls, len(self.answers)) - 1]


class Reversed:
    """random.Random whose shuffle reverses: the order differs from the one the rounds build."""

    def __init__(self, seed):
        pass

    def shuffle(self, items):
        items.reverse()


def burst_order(settings, names=("a", "b", "c", "d", "e", "f")):
    """The configurations in the order they ran their bursts, round by round."""
    log = []
    entrants = [contender(name, [Worker(name, log)]) for name in names]
    _run_rounds(entrants, settings, "pytorch fp32")
    bursts = [name for name, asked in log[len(names) :]]  # after each one's first warm-up
    return [tuple(bursts[i : i + len(names)]) for i in range(0, len(bursts), len(names))]


def test_each_round_runs_every_configuration_once_in_a_freshly_shuffled_order():
    orders = burst_order(DISTINCT)
    assert len(orders) == DISTINCT.rounds
    assert all(sorted(order) == list("abcdef") for order in orders)
    # one fixed order would favour whoever follows the same neighbour every round
    assert len(set(orders)) > 1


def test_the_burst_order_is_reproducible_from_the_seed():
    assert burst_order(DISTINCT) == burst_order(DISTINCT)


def test_an_idle_gap_of_gap_seconds_comes_before_every_burst(monkeypatch):
    log = []
    monkeypatch.setattr(compare.time, "sleep", lambda seconds: log.append(("sleep", seconds)))
    entrants = [contender(name, [Worker(name, log)]) for name in ("pytorch", "tvm", "openvino")]
    _run_rounds(entrants, DISTINCT, "pytorch fp32")
    calls = [i for i, (name, _) in enumerate(log) if name != "sleep"]
    bursts = [i for i in calls if log[i][1].warmup_seconds == DISTINCT.burst_warmup_seconds]
    assert len(bursts) == DISTINCT.rounds * (2 + 1 + 1)  # the baseline bursts twice
    # the previous configuration's threads stop spinning before each burst starts
    assert all(log[i - 1] == ("sleep", 0.375) for i in bursts)


@pytest.mark.parametrize(("cap", "asked_cap"), [(4.0, 4.0), (0.1, 0.25)])
def test_each_burst_asks_its_worker_for_the_bursts_own_settings(cap, asked_cap):
    log = []
    _run_rounds(
        [contender("tvm", [Worker("tvm", log)])],
        dataclasses.replace(DISTINCT, burst_max_seconds=cap),
        "-",
    )
    asked = [
        (s.warmup_iterations, s.warmup_seconds, s.min_iterations, s.min_seconds, s.max_seconds)
        for _, s in log[1:]
    ]
    # its own brief warm-up, then at least burst_min_iterations and burst_seconds, capped by
    # burst_max_seconds; a cap set below burst_seconds does not cut the burst short
    assert asked == [(5, 0.125, 7, 0.25, asked_cap)] * DISTINCT.rounds


def test_a_round_median_is_the_median_of_every_latency_of_that_round():
    log = []
    # the baseline's two bursts a round pool to 1, 2, 9: median 2, mean 4
    answers = [([5.0], None)] + [([1.0, 2.0], None), ([9.0], None)] * DISTINCT.rounds
    base = contender("pytorch", [Scripted("base", log, answers)])
    _run_rounds([base], DISTINCT, "pytorch fp32")
    assert base.entry.round_medians_ms == [2.0] * DISTINCT.rounds


def test_a_configurations_latency_is_the_median_of_its_round_medians():
    base, slow = entry("pytorch", [10.0, 10.0, 10.0]), entry("tvm", [4.0, 5.0, 30.0])
    assert _add_speedups([base, slow], "pytorch fp32") == ""
    # one slow round (a co-tenant's spell) does not move it: the mean would be 13
    assert slow.median_ms == 5.0


def test_the_worst_foreign_load_of_any_burst_is_kept():
    log = []
    # the first answer is the warm-up's; the worst burst is neither the first nor the last
    loads = [0.0, 0.25, 0.75, 0.125]
    loaded = contender("loaded", [Scripted("l", log, [([10.0], f) for f in loads])])
    _run_rounds([loaded], dataclasses.replace(DISTINCT, rounds=3), "pytorch fp32")
    assert loaded.entry.foreign_cpu_max == 0.75


def test_a_measured_foreign_load_of_zero_is_recorded_as_zero_not_unknown():
    log = []
    quiet = contender("quiet", [Worker("q", log, foreign=0.0)])
    _run_rounds([quiet], DISTINCT, "pytorch fp32")
    assert quiet.entry.foreign_cpu_max == 0.0 and quiet.entry.foreign_cpu_max is not None


def test_each_process_median_is_a_median_listed_by_process_index(monkeypatch, tmp_path):
    # reversed, the baseline's first round runs process 1 before process 0
    monkeypatch.setattr(compare.random, "Random", Reversed)
    workers = [
        Scripted(f"w{p}", [], [([10.0 * p + 1, 10.0 * p + 2, 10.0 * p + 9], None)])
        for p in range(3)
    ]

    def fake_start(contenders, configs, artifact_dirs, data, threads, limits, processes):
        (base,) = contenders
        base.workers = list(workers)

    monkeypatch.setattr(compare, "_start_workers", fake_start)
    monkeypatch.setattr(compare, "compile_failure", lambda artifact_dir: "")
    monkeypatch.setattr(compare, "load_feeds", lambda path: {"input": np.zeros((2, 3, 4, 4))})
    out = tmp_path / "comparison.json"
    compare_pytorch_fp32(["a"], dataclasses.replace(DISTINCT, rounds=3, processes=3), str(out))
    (base,) = ComparisonRecord.read(out).configs
    # process p answers 10p + 1, 10p + 2, 10p + 9 every burst: median 10p + 2, mean 10p + 4
    assert base.process_medians_ms == [2.0, 12.0, 22.0]
