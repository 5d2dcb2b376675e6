"""The TVM backend: tuning into a database the compile uses, the wall-clock cap, seed databases
(reused, or refused when corrupt or foreign), the thread count, and why int8 is not offered."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from deploybench.backends import get_backend
from deploybench.errors import InputFileError
from deploybench.records import TUNING_RECORD
from deploybench.specs import LimitSettings, TuningSettings
from helpers import feeds

pytest.importorskip("tvm")
pytest.importorskip("xgboost")
from deploybench.backends import tvm as tvm_backend  # noqa: E402

pytestmark = pytest.mark.slow


def settings(**changes) -> TuningSettings:
    base = dict(
        trials_per_task=2,
        max_minutes=None,
        seed_database=None,
        trials_per_round=2,
        population_size=16,
        genetic_iterations=1,
    )
    return TuningSettings(**{**base, **changes})


@pytest.fixture(scope="module")
def tuned(tiny_onnx, tmp_path_factory):
    """The tiny CNN (static batch 2) tuned with two trials per task."""
    folder = tmp_path_factory.mktemp("tuned")
    facts = tvm_backend.tune([Path(tiny_onnx["static"])], folder, settings(), threads=1)
    return folder, facts


def test_every_task_gets_its_trials_and_the_curve_falls_to_the_best(tuned):
    folder, facts = tuned
    assert facts["tasks"], "no task extracted"
    # a task whose design space holds a single schedule (a reshape) has nothing more to try
    assert all(1 <= task["trials"] <= 2 for task in facts["tasks"]), facts["tasks"]
    assert max(task["trials"] for task in facts["tasks"]) == 2
    assert facts["trials"] == sum(task["trials"] for task in facts["tasks"])
    estimates = [p["estimate_ms"] for p in facts["curve"] if p["estimate_ms"] is not None]
    assert estimates, "the curve never covered every task"
    assert estimates == sorted(estimates, reverse=True), "best-so-far latency cannot rise"
    best_sum = sum(t["weight"] * t["best_ms"] for t in facts["tasks"])
    assert estimates[-1] == pytest.approx(best_sum, rel=1e-9)
    # what each budget per task would have given: one point per budget, never rising
    budgets = facts["budget_curve"]
    budget_points = [p["trials_per_task"] for p in budgets]
    if any(task["failed_trials"] for task in facts["tasks"]):
        # a candidate that failed to build or run has no time: a budget whose first k trials
        # left some task without a time buys no estimate (seen once in a full test run)
        assert budget_points in ([1, 2], [2]), budget_points
    else:
        assert budget_points == [1, 2]
    estimates = [p["estimate_ms"] for p in budgets]
    assert estimates == sorted(estimates, reverse=True)
    assert budgets[-1]["estimate_ms"] == pytest.approx(best_sum, rel=1e-9)
    records = (folder / tvm_backend.RECORD_FILE).read_text().splitlines()
    assert len(records) == facts["trials"]


def test_the_compile_applies_the_database_and_matches_the_reference(
    tuned, tiny_onnx, tiny_inputs, tiny_reference, tmp_path
):
    folder, facts = tuned
    backend = get_backend("tvm")("fp32", 1, None)
    compiled = backend.compile(Path(tiny_onnx["static"]), tmp_path, tuning=folder)
    assert compiled.details["tasks_tuned"] == f"{len(facts['tasks'])}/{len(facts['tasks'])}"
    assert compiled.details["target"]["mcpu"] == facts["target"]["mcpu"]
    with backend.load(tmp_path) as runner:
        out = runner.infer(feeds(tiny_inputs["evaluation"][:2]))
    np.testing.assert_allclose(out["logits"], tiny_reference[:2], rtol=1e-4, atol=1e-4)
    # what MetaSchedule tuned is what gets built: every tuned task's function is replaced by
    # its scheduled version (none is without the database)
    prepared = tvm_backend.load_prepared(Path(tiny_onnx["static"]), facts["target"])
    applied = tvm_backend.apply_database(prepared, folder, facts["target"])
    assert tvm_backend.scheduled_functions(prepared) == 0
    assert tvm_backend.scheduled_functions(applied) == len(facts["tasks"])


def test_tuned_weights_are_packed_once_at_compile_time_not_in_every_run(tuned, tiny_onnx):
    """The tuned convolutions read their weights in the tiled layout they were scheduled for;
    that re-layout is split out and folded into the constants, so main never calls it."""
    folder, facts = tuned
    prepared = tvm_backend.load_prepared(Path(tiny_onnx["static"]), facts["target"])
    packed = tvm_backend.pack_weights(tvm_backend.apply_database(prepared, folder, facts["target"]))
    names = {gv.name_hint for gv in packed.get_global_vars()}
    packers = sorted(
        n.removesuffix("_weight_prepack") for n in names if n.endswith("_weight_prepack")
    )
    assert packers, f"no tuned operator reads its weights in a packed layout: {sorted(names)}"
    main = packed["main"].script()
    assert "_weight_prepack" not in main, "the weight re-layout would run on every call"
    for operator in packers:
        assert f"{operator}_prepacked" in main


def test_the_builder_keeps_its_worker_processes_from_round_to_round():
    """The stock builder starts fresh workers (each importing TVM and torch, ~6 s here) for
    every round; ours builds the next round in the same processes."""
    import tvm
    from tvm.s_tir.meta_schedule.builder import BuilderInput

    a = tvm.te.placeholder((8,), name="a")
    kernel = tvm.te.create_prim_func([a, tvm.te.compute((8,), lambda i: a[i] + 1)])
    job = BuilderInput(tvm.IRModule({"main": kernel}), tvm.target.Target({"kind": "llvm"}))
    builder = tvm_backend._pooled_builder(1)
    try:
        rounds = []
        for _ in range(2):
            (result,) = builder.build([job])
            assert result.error_msg is None, result.error_msg
            rounds.append({w._proc.pid for w in builder.pool._worker_map.values()})
        assert len(rounds[0]) == 1 and rounds[0] == rounds[1], rounds
    finally:
        builder.shutdown()


def test_compiling_without_the_tuning_folder_names_the_stage(tiny_onnx, tmp_path):
    backend = get_backend("tvm")("fp32", 1, None)
    with pytest.raises(InputFileError, match="rerun the tuning stage"):
        backend.compile(Path(tiny_onnx["static"]), tmp_path / "out", tuning=tmp_path / "absent")


def test_a_seed_database_is_reused_and_its_tasks_are_not_tuned_again(tuned, tiny_onnx, tmp_path):
    seed, facts = tuned
    again = tvm_backend.tune(
        [Path(tiny_onnx["static"])], tmp_path, settings(seed_database=str(seed)), threads=1
    )
    full = [t["name"] for t in facts["tasks"] if t["trials"] >= 2]
    assert full, "no task reached its budget in the seed"
    assert again["tasks_from_seed"] == len(full)
    assert again["seed_records_imported"] == facts["trials"]
    rerun = {t["name"]: t for t in again["tasks"]}
    assert all(rerun[name]["trials"] == 0 and rerun[name]["seed_records"] == 2 for name in full)
    # only tasks the seed holds fewer than the budget for are tuned again
    assert again["trials"] <= 2 * (len(facts["tasks"]) - len(full))


def test_a_corrupt_seed_database_is_an_error_naming_the_file(tuned, tiny_onnx, tmp_path):
    seed = tmp_path / "seed"
    shutil.copytree(tuned[0], seed)
    (seed / tvm_backend.RECORD_FILE).write_text("{not json\n")
    with pytest.raises(InputFileError, match=str(seed / tvm_backend.RECORD_FILE)):
        tvm_backend.tune(
            [Path(tiny_onnx["static"])], tmp_path / "t", settings(seed_database=str(seed)), 1
        )


def test_a_database_tuned_for_another_cpu_is_refused(tuned, tiny_onnx, tmp_path):
    seed = tmp_path / "seed"
    shutil.copytree(tuned[0], seed)
    records = seed / tvm_backend.RECORD_FILE
    mcpu = tuned[1]["target"]["mcpu"]
    other = "skylake" if mcpu != "skylake" else "znver3"
    records.write_text(records.read_text().replace(f'"mcpu":"{mcpu}"', f'"mcpu":"{other}"'))
    assert other in records.read_text(), "the record format changed: this test edits the target"
    with pytest.raises(InputFileError, match="another target"):
        tvm_backend.tune(
            [Path(tiny_onnx["static"])], tmp_path / "t", settings(seed_database=str(seed)), 1
        )


def test_the_wall_clock_cap_stops_tuning_and_says_so(tiny_onnx, tmp_path):
    facts = tvm_backend.tune(
        [Path(tiny_onnx["static"])],
        tmp_path,
        settings(trials_per_task=50, max_minutes=1e-4),
        threads=1,
    )
    assert facts["hit_wall_clock_cap"]
    assert facts["trials"] < 50 * len(facts["tasks"])


def test_the_untuned_budget_tunes_nothing_and_still_compiles(tiny_onnx, tmp_path):
    facts = tvm_backend.tune([Path(tiny_onnx["static"])], tmp_path, settings(trials_per_task=0), 1)
    assert facts["trials"] == 0 and all(t["trials"] == 0 for t in facts["tasks"])
    backend = get_backend("tvm")("fp32", 1, None)
    compiled = backend.compile(Path(tiny_onnx["static"]), tmp_path / "artifact", tuning=tmp_path)
    assert compiled.details["tasks_tuned"].startswith("0/")


def test_int8_is_not_offered_because_the_frontend_convolves_in_fp32(
    tiny_onnx, tiny_inputs, tmp_path
):
    """Re-checks INT8_REASON: if a TVM release imports Q/DQ convolutions as int8 arithmetic,
    this fails and int8 can be offered."""
    from deploybench.backends.onnxruntime import OnnxRuntimeBackend

    quantized = tmp_path / "int8"
    OnnxRuntimeBackend("int8", 1, None).compile(
        Path(tiny_onnx["static"]), quantized, feeds(tiny_inputs["calibration"])
    )
    qdq = next(quantized.glob("*.onnx"))
    mod = tvm_backend.import_onnx(qdq)
    convolutions = [line for line in mod.script().splitlines() if "R.nn.conv2d(" in line]
    assert convolutions, "no convolution found in the imported QDQ model"
    # each convolution takes dequantized fp32 tensors and computes in fp32
    assert all('dtype="float32") = R.nn.conv2d(' in line for line in convolutions), convolutions
    assert not get_backend("tvm").precision_support("int8", None)[0]


LIMITS = LimitSettings(compile_seconds=600, timing_seconds=600, parity_seconds=600, memory_mb=None)


def test_the_tuning_stage_writes_its_facts_and_a_failed_tuning_fails_the_compile_with_why(
    tiny_onnx, tiny_inputs, tmp_path
):
    from deploybench.feeds import save_feeds
    from deploybench.records import ARTIFACT_RECORD, CompileRecord
    from deploybench.stages.compile import compile_model
    from deploybench.stages.tune import tune_model

    evaluation = tmp_path / "evaluation.npz"
    save_feeds(evaluation, feeds(tiny_inputs["evaluation"]))
    folder = tmp_path / "tuning"
    untuned = settings(trials_per_task=0)
    tune_model([str(tiny_onnx["static"])], str(evaluation), untuned, 1, LIMITS, str(folder))
    facts = json.loads((folder / TUNING_RECORD).read_text())
    assert facts["status"] == "ok" and facts["settings"] == untuned.params()
    (measured,) = facts["measured"].values()
    assert measured["untuned"]["batch"] == 2 and measured["untuned"]["median_ms"] > 0

    key = {"model": "tiny", "backend": "tvm", "precision": "fp32", "shape": "static_b2"}
    artifact = tmp_path / "artifact"
    compile_model(str(tiny_onnx["static"]), None, key, {}, LIMITS, str(artifact), str(folder))
    assert CompileRecord.read(artifact / ARTIFACT_RECORD).is_ok

    (folder / TUNING_RECORD).write_text(
        json.dumps({"status": "failed", "reason": "killed by SIGKILL during tune"})
    )
    compile_model(str(tiny_onnx["static"]), None, key, {}, LIMITS, str(artifact), str(folder))
    record = CompileRecord.read(artifact / ARTIFACT_RECORD)
    assert not record.is_ok
    assert "tuning failed: killed by SIGKILL during tune" in record.reason


def test_a_corrupt_seed_database_stops_the_tuning_job_in_one_line(tuned, tiny_onnx, tmp_path):
    from deploybench.stages.tune import tune_model

    seed = tmp_path / "seed"
    shutil.copytree(tuned[0], seed)
    (seed / tvm_backend.WORKLOAD_FILE).write_text("garbage")
    broken = settings(seed_database=str(seed))
    with pytest.raises(InputFileError, match="seed_database"):
        tune_model([str(tiny_onnx["static"])], "unused.npz", broken, 1, LIMITS, str(tmp_path / "t"))
    assert not (tmp_path / "t").exists()  # nothing half-written


def test_tuning_limits_follow_the_wall_clock_cap():
    from deploybench.stages.tune import tuning_limits

    assert tuning_limits(LIMITS, settings(max_minutes=2)).seconds == 120 + 600
    assert tuning_limits(LIMITS, settings(max_minutes=None)).seconds is None


def test_loading_a_runner_leaves_the_process_free_to_use_every_core(tuned, tiny_onnx, tmp_path):
    """TVM pins the thread that creates its pool unless told not to; a pinned process would
    hand a one-core mask to everything it starts (seen: every later timing ran on one core)."""
    import os
    import subprocess
    import sys

    folder, _ = tuned
    backend = get_backend("tvm")("fp32", 1, None)
    backend.compile(Path(tiny_onnx["static"]), tmp_path / "artifact", tuning=folder)
    probe = (
        "import os; from pathlib import Path; from deploybench.backends import get_backend; "
        f"r = get_backend('tvm')('fp32', 1, None).load(Path({str(tmp_path / 'artifact')!r})); "
        "r.run({'input': __import__('numpy').zeros((2, 3, 16, 16), 'float32')}); "
        "print('CPUS', len(os.sched_getaffinity(0)))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert f"CPUS {len(os.sched_getaffinity(0))}" in result.stdout, result.stderr[-2000:]
