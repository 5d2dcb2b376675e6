"""The stages on real records: a failing backend is recorded and shown, it never hides the
others; the vendor cross-check's arithmetic; feeding batches to a runner."""

import dataclasses
import json

import faults
import numpy as np
import pandas as pd
import pytest
from deploybench.backends import Runner, get_backend
from deploybench.feeds import cycled, save_feeds
from deploybench.records import ARTIFACT_RECORD, CompileRecord, SkipRecord, TimingRecord
from deploybench.specs import ConfigKey
from deploybench.stages.collect import collect_results
from deploybench.stages.compile import compile_model
from deploybench.stages.inference import run_all
from deploybench.stages.timing import time_inference, vendor_crosscheck
from helpers import comparison_settings, feeds, limits, timing_settings

pytest.importorskip("onnxruntime")

TIMING = timing_settings(
    warmup_iterations=1, warmup_seconds=0.0, min_iterations=3, min_seconds=0.0, retries_if_noisy=0
)


def key(precision, backend="onnxruntime"):
    return {"model": "tiny", "backend": backend, "precision": precision, "shape": "dynamic"}


def test_compile_failure_becomes_records_and_a_report_row(
    tiny_onnx, tiny_inputs, tmp_path, monkeypatch
):
    evaluation = tmp_path / "evaluation.npz"
    save_feeds(evaluation, feeds(tiny_inputs["evaluation"]))
    calibration = tmp_path / "calibration.npz"
    save_feeds(calibration, feeds(tiny_inputs["calibration"]))
    good, bad = tmp_path / "fp32", tmp_path / "int8"
    source = str(tiny_onnx["dynamic"])
    compile_model(
        source=source,
        calibration_npz=None,
        key=key("fp32"),
        options={},
        limits=limits(),
        out_dir=good,
    )

    # registered for this process and the supervised children it starts
    monkeypatch.setenv("DEPLOYBENCH_BACKENDS", faults.broken_backend_environment())
    compile_model(
        source=source,
        calibration_npz=str(calibration),
        key=key("int8", "broken"),
        options={},
        limits=limits(),
        out_dir=bad,
    )
    record = CompileRecord.read(bad / ARTIFACT_RECORD)
    assert record.status == "failed"
    assert record.reason == "RuntimeError: Unsupported op 'FancyConv' more detail"
    assert not [p for p in bad.iterdir() if p.name != ARTIFACT_RECORD]

    out = {}
    for name, folder, backend in (("fp32", good, "onnxruntime"), ("int8", bad, "broken")):
        out[name] = tmp_path / f"{name}.json"
        time_inference(
            artifact_dir=str(folder),
            inputs_npz=str(evaluation),
            key=key(name, backend),
            batch=1,
            threads=1,
            timing=TIMING,
            options={},
            crosscheck=None,
            limits=limits(),
            out_json=str(out[name]),
        )
    timed = TimingRecord.read(out["fp32"])
    assert timed.is_ok and timed.stats.n == len(timed.latencies_ms) >= 3
    assert timed.version == get_backend("onnxruntime").version()
    skipped = TimingRecord.read(out["int8"])
    assert skipped.status == "skipped" and "compile failed: RuntimeError" in skipped.reason

    absent = SkipRecord.skipped(
        ConfigKey("tiny", "openvino", "fp32", "dynamic"), "openvino not installed", batch=1
    )
    summary, latencies = tmp_path / "summary.csv", tmp_path / "latencies.csv"
    collect_results(
        timing_paths=[str(out["fp32"]), str(out["int8"])],
        parity_paths=[],
        comparison_paths=[],
        artifact_dirs=[str(good), str(bad)],
        skipped=[absent.to_json()],
        out_summary=str(summary),
        out_latencies=str(latencies),
        out_rounds=str(tmp_path / "rounds.csv"),
    )
    frame = pd.read_csv(summary).set_index(["backend", "precision"])
    assert frame.loc[("onnxruntime", "fp32"), "status"] == "ok"
    assert frame.loc[("onnxruntime", "fp32"), "compile_status"] == "ok"
    assert frame.loc[("broken", "int8"), "status"] == "skipped"
    assert frame.loc[("broken", "int8"), "compile_status"] == "failed"
    assert frame.loc[("openvino", "fp32"), "reason"] == "openvino not installed"
    assert len(pd.read_csv(latencies)) == frame.loc[("onnxruntime", "fp32"), "n"]


def test_vendor_crosscheck_brackets_the_tool_with_our_own_medians():
    from deploybench.records import VendorCheck

    check = vendor_crosscheck(
        lambda: VendorCheck(tool="tool", median_ms=10.0),
        before_ms=12.0,
        measure_again=lambda: 9.0,
        tool="tool",
    )
    assert check.ours_before_ms == 12.0 and check.ours_after_ms == 9.0
    assert check.drift == pytest.approx(0.75)
    assert check.ratio == pytest.approx(1.05)  # mean(12, 9) / 10


def test_a_failing_vendor_tool_is_recorded_not_raised():
    def broken():
        raise RuntimeError("benchmark_app exited 1: no device")

    check = vendor_crosscheck(broken, before_ms=1.0, measure_again=lambda: 1.0, tool="tool")
    assert check.tool == "tool" and "no device" in check.error and check.ratio is None


class Echo(Runner):
    """Sums each sample of both inputs; takes only full batches of 4, like a static graph."""

    def run(self, feeds):
        image, mask = feeds["image"], feeds["mask"]
        assert len(image) == len(mask) == 4
        return {"sum": image.reshape(len(image), -1).sum(axis=1, keepdims=True) + mask}


def test_run_all_pads_static_batches_and_keeps_order_of_every_input():
    data = {
        "image": np.arange(10 * 2, dtype=np.float32).reshape(10, 2),
        "mask": np.arange(10, dtype=np.float32).reshape(10, 1) * 100,
    }
    out = run_all(Echo(), data, 4)
    np.testing.assert_array_equal(out["sum"][:, 0], data["image"].sum(axis=1) + data["mask"][:, 0])


def test_a_batch_cycles_every_input_when_asking_for_more_than_the_samples():
    data = {"a": np.arange(3, dtype=np.float32).reshape(3, 1), "b": np.arange(3) * 10}
    batch = cycled(data, 5)
    np.testing.assert_array_equal(batch["a"][:, 0], [0, 1, 2, 0, 1])
    np.testing.assert_array_equal(batch["b"], [0, 10, 20, 0, 10])
    assert list(batch) == ["a", "b"]


def test_a_record_written_by_another_version_is_a_clear_error(tmp_path):
    from deploybench.errors import InputFileError

    path = tmp_path / "t.json"
    path.write_text(json.dumps({"kind": "timing", "model": "m", "surprise": 1}))
    with pytest.raises(InputFileError, match="delete it and rerun"):
        TimingRecord.read(path)


# the schema's settings but for these (2 processes per configuration, 2 baseline bursts)
COMPARISON = comparison_settings(
    rounds=4,
    warmup_seconds=0.05,
    burst_warmup_seconds=0.0,
    burst_min_iterations=2,
    burst_seconds=0.02,
    burst_max_seconds=5.0,
    gap_seconds=0.01,
)


class ScriptedWorker:
    """Stands in for a comparison worker: answers bursts with its next latency, or dies."""

    def __init__(self, latencies_ms, calls, dies_at=None):
        self.latencies_ms, self.calls, self.dies_at, self.pid = (
            list(latencies_ms),
            calls,
            dies_at,
            0,
        )

    def call(self, method, settings):
        from deploybench.isolation import ChildDied

        self.calls.append(self)
        if self.dies_at is not None and len([c for c in self.calls if c is self]) > self.dies_at:
            raise ChildDied("killed by SIGSEGV during a burst")
        return [self.latencies_ms.pop(0)], 0.0

    def close(self):
        pass


def test_rounds_give_the_baseline_extra_bursts_take_turns_among_processes_and_survive_a_crash():
    from deploybench.records import ComparedConfig, Status
    from deploybench.stages.compare import _add_speedups, _Contender, _run_rounds

    calls = []
    settings = dataclasses.replace(COMPARISON, rounds=3, gap_seconds=0.0)
    # each worker: one warm-up answer, then one per burst it is given
    base_a = ScriptedWorker([99.0, 10.0, 20.0, 12.0], calls)
    base_b = ScriptedWorker([99.0, 30.0, 20.0, 14.0], calls)
    fast_a = ScriptedWorker([99.0, 5.0, 6.0], calls)
    fast_b = ScriptedWorker([99.0, 10.0], calls)
    dying = ScriptedWorker([99.0, 1.0], calls, dies_at=2)
    workers = {"pytorch": [base_a, base_b], "fast": [fast_a, fast_b], "dying": [dying]}
    OK = Status.OK
    contenders = [
        _Contender(ComparedConfig(backend=b, precision="fp32", shape="dynamic", status=OK), w)
        for b, w in workers.items()
    ]
    _run_rounds(contenders, settings, "pytorch fp32")
    # the baseline: two bursts a round, one in each of its processes
    assert calls.count(base_a) == calls.count(base_b) == 1 + 3
    # the others: one burst a round, the processes taking turns
    assert calls.count(fast_a) == 1 + 2 and calls.count(fast_b) == 1 + 1
    baseline, quick, crashed = (c.entry for c in contenders)
    # the baseline's two bursts of a round are pooled: median of {10, 30}, {20, 20}, {12, 14}
    assert baseline.round_medians_ms == [20.0, 20.0, 13.0] and baseline.rounds == 3
    assert quick.round_medians_ms == [5.0, 10.0, 6.0]
    assert contenders[1].by_process == {0: [5.0, 6.0], 1: [10.0]}
    assert crashed.status is Status.FAILED and crashed.reason.startswith("killed by SIGSEGV")
    assert crashed.rounds == 1 and crashed.round_medians_ms == [1.0, None, None]
    assert not contenders[2].alive
    _add_speedups([baseline, quick], "pytorch fp32")
    assert quick.speedup == pytest.approx(13 / 6)  # median of 20/5, 20/10, 13/6
    assert quick.speedup_ci_low <= quick.speedup <= quick.speedup_ci_high


def test_a_comparison_survives_a_crashing_worker_and_a_failed_compile(
    tiny_onnx, tiny_inputs, tmp_path, monkeypatch
):
    from deploybench.records import ComparisonRecord
    from deploybench.stages.compare import compare_configs

    monkeypatch.setenv(
        "DEPLOYBENCH_BACKENDS", f"{faults.broken_backend_environment()},{faults.FAULTY_ENVIRONMENT}"
    )
    evaluation = tmp_path / "evaluation.npz"
    save_feeds(evaluation, feeds(tiny_inputs["evaluation"]))
    configs, folders = [], []
    for backend in ("onnxruntime", "broken", "faulty"):
        folder = tmp_path / backend
        compile_model(
            source=str(tiny_onnx["dynamic"]),
            calibration_npz=None,
            key=key("fp32", backend),
            options={},
            limits=limits(),
            out_dir=str(folder),
        )
        configs.append({"key": key("fp32", backend), "options": {}})
        folders.append(str(folder))
    out = tmp_path / "comparison.json"
    compare_configs(
        artifact_dirs=folders,
        inputs_npz=str(evaluation),
        model="tiny",
        configs=configs,
        device="cpu",
        batch=2,
        threads=1,
        comparison=COMPARISON,
        limits=limits(),
        out_json=str(out),
    )
    record = ComparisonRecord.read(out)
    by_backend = {c.backend: c for c in record.configs}
    ort = by_backend["onnxruntime"]
    assert ort.status == "ok" and ort.rounds == 4 and len(ort.latencies_ms) == 4
    assert all(len(burst) >= 2 for burst in ort.latencies_ms)
    # no eager model in this comparison: ONNX Runtime fp32 is the baseline, and nothing else
    # survived to be divided by it
    assert record.baseline.startswith("onnxruntime fp32")
    assert ort.median_ms > 0 and ort.speedup is None
    assert by_backend["broken"].status == "skipped"
    assert by_backend["broken"].reason.startswith("compile failed: RuntimeError")
    assert by_backend["faulty"].status == "failed"
    assert by_backend["faulty"].reason == "killed by SIGSEGV during a burst"
    assert record.note == "nothing to compare: only the baseline ran"
