import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("seaborn")

from deploybench.backends import get_backend  # noqa: E402
from deploybench.records import summary_columns  # noqa: E402
from deploybench.stages.decide import comparison_notes, recommend  # noqa: E402
from deploybench.stages.report import RESULT_COLUMNS, render_report  # noqa: E402
from deploybench.stats import paired_ratio  # noqa: E402

TIMING = {"max_cv": 0.15, "warmup_iterations": 10}


ROUNDS = 12
# The machine's speed in each round: drift of +-50%, the same for every configuration.
DRIFT = 1 + 0.5 * np.sin(np.arange(ROUNDS))


def comparison(configs, batch=1):
    """Summary rows and per-round medians for configurations timed side by side.

    ``configs``: (backend, precision, shape, per-round latency factor, parity, artifact bytes).
    """
    rows, rounds = [], []
    base, baseline = None, "pytorch fp32"
    for backend, precision, shape, factor, parity, size in configs:
        medians = 10.0 * DRIFT * np.asarray(factor, dtype=float)
        if precision == "fp32" and get_backend(backend).baseline:
            base, baseline = medians, f"{backend} fp32"
        rounds += [
            {"model": "m", "backend": backend, "precision": precision, "shape": shape,
             "batch": batch, "round": r, "median_ms": m}
            for r, m in enumerate(medians)
        ]  # fmt: skip
        rows.append(
            {
                "model": "m",
                "backend": backend,
                "precision": precision,
                "shape": shape,
                "batch": batch,
                "status": "ok",
                "n": 30,
                "cv": 0.05,
                "median_ms": float(np.median(medians)),
                "median_ci_low_ms": float(np.median(medians)) * 0.9,
                "median_ci_high_ms": float(np.median(medians)) * 1.1,
                "noisy": False,
                "parity_status": "ok",
                "parity_verdict": parity,
                "parity_reason": "<b>why</b>",
                "compile_artifact_bytes": size,
                "cmp_status": "ok",
                "cmp_rounds": ROUNDS,
                "cmp_median_ms": float(np.median(medians)),
                "_medians": medians,
            }
        )
    for row in rows:
        estimate = paired_ratio(base, row.pop("_medians"))
        row.update(
            cmp_speedup=estimate.ratio,
            cmp_speedup_ci_low=estimate.ci_low,
            cmp_speedup_ci_high=estimate.ci_high,
            cmp_baseline=baseline,
        )
    frame = pd.DataFrame(rows).reindex(columns=summary_columns())
    return frame, pd.DataFrame(rounds)


def noisy(level, seed):
    return 1 + np.random.default_rng(seed).normal(0, level, ROUNDS)


def summary_rows():
    frame, rounds = comparison(
        [
            ("pytorch", "fp32", "dynamic", 1.0, "pass", 100),
            ("onnxruntime", "fp32", "dynamic", 0.5, "pass", 100),
            ("onnxruntime", "int8", "dynamic", 0.2, "fail", 50),
        ]
    )
    extra = pd.DataFrame(
        [
            {"model": "m", "backend": "openvino", "precision": "fp32", "shape": "dynamic",
             "batch": 1, "status": "skipped", "reason": "openvino not installed"},
            {"model": "m", "backend": "openvino", "precision": "int8", "shape": "dynamic",
             "batch": 1, "status": "failed", "reason": "RuntimeError: boom"},
        ]
    )  # fmt: skip
    return pd.concat([frame, extra.reindex(columns=summary_columns())]), rounds


def test_recommendation_is_the_fastest_that_passes_parity():
    frame, rounds = summary_rows()
    (pick,) = recommend(frame, rounds, pretrained=True)
    assert pick["row"]["backend"] == "onnxruntime" and pick["row"]["precision"] == "fp32"
    # drift of +-50% cancels in the paired ratio: exactly 2x every round
    assert pick["row"]["cmp_speedup"] == pytest.approx(2.0)
    assert pick["row"]["cmp_speedup_ci_low"] == pytest.approx(2.0)
    assert not pick["tie"]


def test_configurations_the_paired_ci_cannot_separate_are_a_tie_settled_by_parity_then_size():
    frame, rounds = comparison(
        [
            ("pytorch", "fp32", "dynamic", 1.0, "pass", 100),
            # 1% faster on the median, but +-10% round to round: the CI spans 1
            ("onnxruntime", "fp32", "dynamic", 0.50 * noisy(0.10, 1), "pass", 900),
            ("openvino", "fp32", "dynamic", 0.505 * noisy(0.10, 2), "pass", 300),
            ("openvino", "int8", "dynamic", 0.50 * noisy(0.10, 3), "inconclusive", 50),
        ]
    )
    (pick,) = recommend(frame, rounds, pretrained=True)
    assert "equally fast here" in pick["tie"] and "spans 1" in pick["tie"]
    # among the tied ones (all pass parity) the smaller artifact wins
    assert (pick["row"]["backend"], pick["row"]["precision"]) == ("openvino", "fp32")
    assert "picked openvino fp32 (dynamic), the smallest artifact" in pick["tie"]


@pytest.mark.parametrize("pretrained", [True, False])
def test_random_weights_fall_back_to_inconclusive_parity_and_pretrained_never_do(pretrained):
    frame, rounds = comparison(
        [
            ("pytorch", "fp32", "dynamic", 1.0, "inconclusive", 100),
            ("onnxruntime", "fp32", "dynamic", 0.5, "inconclusive", 100),
            ("openvino", "int8", "dynamic", 0.25, "fail", 100),
        ]
    )
    (pick,) = recommend(frame, rounds, pretrained=pretrained)
    if pretrained:  # a real model must pass parity: nothing does
        assert pick["row"] is None and pick["note"] == "no configuration passed parity"
    else:  # random weights cannot judge agreement: the fastest within tolerance, said so
        assert pick["row"]["backend"] == "onnxruntime"  # never the failing, faster int8
        assert "random weights" in pick["note"]


def test_a_steady_small_lead_is_not_a_tie_even_under_drift():
    frame, rounds = comparison(
        [
            ("pytorch", "fp32", "dynamic", 1.0, "pass", 100),
            ("onnxruntime", "fp32", "dynamic", 0.50 * noisy(0.005, 1), "pass", 900),
            ("openvino", "fp32", "dynamic", 0.53 * noisy(0.005, 2), "pass", 300),
        ]
    )
    (pick,) = recommend(frame, rounds, pretrained=True)
    assert not pick["tie"]
    assert pick["row"]["backend"] == "onnxruntime"  # faster, though its artifact is larger


def test_report_is_self_contained_and_escapes_config_strings(tmp_path):
    summary, rounds = tmp_path / "summary.csv", tmp_path / "rounds.csv"
    frame, round_frame = summary_rows()
    # the load average and clock before and after the timings: the report shows their range
    frame["load_average_before"], frame["load_average_after"] = 0.25, 1.5
    frame["cpu_mhz_before"], frame["cpu_mhz_after"] = 2000.0, 2900.0
    frame.to_csv(summary, index=False)
    round_frame.to_csv(rounds, index=False)
    latencies = tmp_path / "latencies.csv"
    rng = np.random.default_rng(0)
    pd.DataFrame(
        [
            {
                "model": "m",
                "backend": "pytorch",
                "precision": "fp32",
                "shape": "dynamic",
                "batch": 1,
                "iteration": i,
                "latency_ms": 10 + rng.random(),
            }
            for i in range(30)
        ]
    ).to_csv(latencies, index=False)
    facts = tmp_path / "model.json"
    hostile = "<script>alert(1)</script>"
    facts.write_text(
        json.dumps(
            {
                "spec": {
                    "name": "m",
                    "source": "checkpoint",
                    "architecture": hostile,
                    "input_size": 224,
                },
                "pretrained": True,
                "parameters": 10,
                "flops": 1e9,
            }
        )
    )
    out = tmp_path / "report.html"
    render_report(str(summary), str(latencies), str(rounds), [], [str(facts)], TIMING, 2, str(out))
    html = out.read_text()
    assert hostile not in html and "&lt;script&gt;" in html
    assert "&lt;b&gt;why&lt;/b&gt;" in html
    assert "openvino not installed" in html
    assert "ship <b>onnxruntime fp32 (dynamic)</b>" in html
    assert "data:image/png;base64," in html
    assert "<script" not in html.lower()
    # the baseline and the backends' versions come from the backend classes
    assert "<b>2.00×</b> pytorch fp32" in html
    for backend in ("pytorch", "onnxruntime", "openvino"):
        for distribution in get_backend(backend).distributions:
            assert f"<th>{distribution}</th>" in html
    assert "<td>openvino</td><td>cpu</td>" in html and "<td>benchmark_app</td>" in html
    assert "baseline and parity reference" in html
    assert "<td>0.25 – 1.5;" in html  # from before to after, not one of them twice
    assert "<td>2000 – 2900 MHz" in html
    # a row that failed spans every result column with its reason
    assert f'<td colspan="{len(RESULT_COLUMNS)}">RuntimeError: boom</td>' in html


def test_crosscheck_note_tells_drift_from_a_real_difference():
    from deploybench.stages.decide import crosscheck_note

    assert crosscheck_note(1.05, 1.30) == ""  # within 15%: nothing to explain
    assert "drifted" in crosscheck_note(1.30, 1.25)
    assert "not explained by drift" in crosscheck_note(1.30, 1.02)
    assert crosscheck_note(float("nan"), None) == ""
    # the boundaries: 15% apart in either direction, and drift of 10%
    assert crosscheck_note(1.14, None) == "" and crosscheck_note(0.86, None) == ""
    assert crosscheck_note(1.16, None) and crosscheck_note(0.84, None)
    assert "drifted" in crosscheck_note(0.80, 0.88) and "drifted" in crosscheck_note(1.2, 1.11)
    assert "not explained" in crosscheck_note(1.2, 1.09)
    assert "not explained" in crosscheck_note(1.2, 0.91)
    assert "not explained" in crosscheck_note(1.2, float("nan"))


def test_numbers_are_formatted_without_needless_exponents():
    from deploybench.stages.report import _fmt

    assert _fmt(2600.4) == "2600"
    assert _fmt(266.3) == "266"
    assert _fmt(0.00709) == "0.00709"
    assert _fmt(3.6e-9) == "3.60e-09"
    assert _fmt(float("nan")) == "" and _fmt(None) == ""


def test_only_configurations_that_ran_are_recommended_and_missing_comparisons_are_explained():
    from deploybench.stages.decide import comparison_notes

    frame, rounds = comparison(
        [
            ("pytorch", "fp32", "dynamic", 1.0, "pass", 100),
            ("onnxruntime", "fp32", "dynamic", 0.5, "pass", 100),
            ("openvino", "fp32", "dynamic", 0.2, "pass", 100),
        ]
    )
    frame.loc[frame.backend == "openvino", "status"] = "failed"  # fastest, but its timing failed
    (pick,) = recommend(frame, rounds, pretrained=True)
    assert pick["row"]["backend"] == "onnxruntime"
    assert comparison_notes(frame) == []
    only_baseline = frame[frame.backend == "pytorch"]
    assert comparison_notes(only_baseline) == [
        "batch 1: nothing to compare side by side: only the baseline ran"
    ]
    unpaired = frame.assign(cmp_speedup=float("nan"))
    assert comparison_notes(unpaired) == [
        "batch 1: no speedups: the baseline was not measured side by side"
    ]


def test_the_drift_note_says_how_far_our_median_moved():
    from deploybench.stages.decide import crosscheck_note

    assert "moved +25%" in crosscheck_note(1.3, 1.25)
    assert "moved -20%" in crosscheck_note(1.3, 0.8)


def test_rounds_of_takes_only_its_own_configuration_among_neighbours_on_every_key():
    from deploybench.stages.decide import rounds_of

    keys = ("model", "backend", "precision", "shape", "batch")
    mine = {"model": "m", "backend": "onnxruntime", "precision": "fp32", "shape": "static_b1",
            "batch": 4}  # fmt: skip
    # for each key, a neighbour just below and just above it in sort order
    below = {"model": "a", "backend": "hailo", "precision": "bf16", "shape": "dynamic", "batch": 1}
    above = {"model": "z", "backend": "tvm", "precision": "int8", "shape": "static_b9", "batch": 8}
    rows = [{**mine, "round": r, "median_ms": 10.0 + r} for r in range(3)]
    for key in keys:
        for other in (below, above):
            rows += [{**mine, key: other[key], "round": r, "median_ms": 99.0} for r in range(3)]
    series = rounds_of(pd.DataFrame(rows), mine)
    assert series.tolist() == [10.0, 11.0, 12.0]
    assert rounds_of(pd.DataFrame(columns=[*keys, "round", "median_ms"]), mine).size == 0


def test_only_compared_rows_that_ran_count_and_notes_see_a_lone_baseline():
    from deploybench.stages.decide import comparison_notes

    frame, rounds = comparison(
        [
            ("pytorch", "fp32", "dynamic", 1.0, "pass", 100),
            ("onnxruntime", "fp32", "dynamic", 0.5, "pass", 100),
            ("openvino", "fp32", "dynamic", 0.2, "pass", 100),
            ("openvino", "int8", "dynamic", 0.1, "pass", 100),
            ("tvm", "fp32", "static_b1", 0.15, "pass", 100),
        ]
    )
    # statuses on either side of "ok" in sort order must not pass for it
    frame.loc[frame.backend == "openvino", "cmp_status"] = ["failed", "skipped"]
    frame.loc[frame.backend == "tvm", "status"] = "skipped"
    (pick,) = recommend(frame, rounds, pretrained=True)
    assert pick["row"]["backend"] == "onnxruntime"
    lone = frame[frame.backend != "onnxruntime"]
    assert comparison_notes(lone) == [
        "batch 1: nothing to compare side by side: only the baseline ran"
    ]
    nothing = frame.assign(cmp_status="failed")
    assert comparison_notes(nothing) == [
        "batch 1: nothing to compare side by side: only the baseline ran"
    ]


def test_a_batch_with_no_passing_configuration_does_not_end_the_recommendations():
    first, first_rounds = comparison(
        [
            ("pytorch", "fp32", "dynamic", 1.0, "fail", 100),
            ("onnxruntime", "fp32", "dynamic", 0.5, "fail", 100),
        ],
        batch=1,
    )
    second, second_rounds = comparison(
        [
            ("pytorch", "fp32", "dynamic", 1.0, "pass", 100),
            ("onnxruntime", "fp32", "dynamic", 0.5, "pass", 100),
        ],
        batch=8,
    )
    picks = recommend(
        pd.concat([first, second]), pd.concat([first_rounds, second_rounds]), pretrained=True
    )
    assert [p["batch"] for p in picks] == [1, 8]
    assert picks[0]["row"] is None and picks[1]["row"]["backend"] == "onnxruntime"


def test_tuning_rows_show_what_tuning_cost_and_bought_and_why_a_tuning_failed(tmp_path):
    from deploybench.stages.report import _tuning_figure, tuning_rows

    tuned = tmp_path / "resnet18" / "tvm"
    failed = tmp_path / "mobilenet" / "tvm"
    tuned.mkdir(parents=True)
    failed.mkdir(parents=True)
    (tuned / "tuning.json").write_text(
        json.dumps(
            {
                "status": "ok",
                "settings": {"trials_per_task": 8, "seed_database": "/db"},
                "target": {"kind": "llvm", "mcpu": "znver4", "num-cores": 2},
                "tasks": [
                    {
                        "name": "conv",
                        "weight": 2,
                        "seed_records": 0,
                        "trials": 8,
                        "best_ms": 1.0,
                        "failed_trials": 3,
                    },
                    {"name": "dense", "weight": 1, "seed_records": 3, "trials": 0, "best_ms": None},
                    {"name": "pool", "weight": 1, "seed_records": 0, "trials": 0, "best_ms": None},
                ],
                "trials": 8,
                "tuning_seconds": 61.0,
                "hit_wall_clock_cap": True,
                "seed_records_imported": 3,
                "tasks_from_seed": 1,
                "measured": {
                    "g.onnx": {
                        "untuned": {"median_ms": 90.0, "batch": 1, "iterations": 5},
                        "tuned": {"median_ms": 30.0, "batch": 1, "iterations": 5},
                    }
                },
                "budget_curve": [
                    {"trials_per_task": 1, "estimate_ms": 50.0},
                    {"trials_per_task": 2, "estimate_ms": 40.0},
                ],
            }
        )
    )
    (failed / "tuning.json").write_text(
        json.dumps({"status": "failed", "reason": "killed by SIGKILL during tune"})
    )
    rows, curve = tuning_rows([str(tuned), str(failed)])
    by_model = {row["model"]: row for row in rows}
    ok = by_model["resnet18"]
    assert ok["target"] == "llvm -mcpu=znver4 -num-cores=2"
    assert ok["tasks_tuned"] == "2/3"  # the seed's task counts as tuned, the pool does not
    assert ok["gain"] == 3.0 and ok["untuned_ms"] == 90.0 and ok["tuned_ms"] == 30.0
    assert "wall-clock cap reached" in ok["note"]
    assert "1 task(s) without any trial" in ok["note"]
    assert "3 candidate(s) failed to build or run" in ok["note"]
    assert ok["seed"] == "3 records, 1 tasks not re-tuned (/db)"
    assert by_model["mobilenet"]["status"] == "failed"
    assert by_model["mobilenet"]["note"] == "killed by SIGKILL during tune"
    assert [(p["model"], p["trials_per_task"]) for p in curve] == [("resnet18", 1), ("resnet18", 2)]
    assert _tuning_figure(curve).startswith("data:image/png;base64,")


def test_each_device_gets_its_own_pick_against_its_own_baseline():
    cpu, cpu_rounds = comparison(
        [
            ("pytorch", "fp32", "dynamic", 1.0, "pass", 100),
            ("onnxruntime", "fp32", "dynamic", 0.5, "pass", 100),
        ]
    )
    gpu, gpu_rounds = comparison(
        [
            ("pytorch_cuda", "fp32", "dynamic", 0.1, "pass", 100),
            ("tensorrt", "fp16", "dynamic", 0.02, "pass", 100),
        ]
    )
    frame = pd.concat([cpu, gpu])
    rounds = pd.concat([cpu_rounds, gpu_rounds])
    picks = {p["device"]: p for p in recommend(frame, rounds, pretrained=True)}
    assert set(picks) == {"cpu", "cuda"}
    assert picks["cpu"]["row"]["backend"] == "onnxruntime"
    assert picks["cuda"]["row"]["backend"] == "tensorrt"
    assert picks["cuda"]["row"]["cmp_baseline"] == "pytorch_cuda fp32"
    # a device where only the baseline ran says so, under its own name
    notes = comparison_notes(pd.concat([cpu, gpu[gpu.backend == "pytorch_cuda"]]))
    assert notes == ["batch 1 on cuda: nothing to compare side by side: only the baseline ran"]
