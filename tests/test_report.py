import json
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("seaborn")

from deploybench.backends import baseline_backend, get_backend  # noqa: E402
from deploybench.records import summary_columns  # noqa: E402
from deploybench.stages.decide import comparison_notes, recommend, rounds_of  # noqa: E402
from deploybench.stages.report import RESULT_COLUMNS, render_report  # noqa: E402
from deploybench.stats import paired_ratio  # noqa: E402
from helpers import model_spec  # noqa: E402

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
    # drift of +-50% cancels in the paired ratio of the rounds the decision reads: exactly 2x
    # every round
    baseline = frame[frame.backend == "pytorch"].iloc[0]
    speedup = paired_ratio(rounds_of(rounds, baseline), rounds_of(rounds, pick["row"]))
    assert speedup.ratio == pytest.approx(2.0)
    assert speedup.ci_low == pytest.approx(2.0)
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


def sample_report(tmp_path, threads: int = 2) -> str:
    """The report of a small summary with hostile config strings, timed with ``threads``."""
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
                "spec": model_spec(
                    "m", source="checkpoint", architecture=hostile, checkpoint="w.pt"
                ).as_dict(),
                "pretrained": True,
                "parameters": 10,
                "flops": 1e9,
            }
        )
    )
    out = tmp_path / "report.html"
    render_report(
        str(summary), str(latencies), str(rounds), [], [str(facts)], TIMING, threads, str(out)
    )
    return out.read_text()


def test_report_is_self_contained_and_escapes_config_strings(tmp_path):
    hostile = "<script>alert(1)</script>"
    html = sample_report(tmp_path)
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


@pytest.mark.parametrize("cores", [2, 32])
def test_a_run_with_fewer_threads_than_the_host_has_cores_says_so_at_the_top(
    tmp_path, monkeypatch, cores
):
    from deploybench import hardware

    monkeypatch.setattr(hardware, "available_cores", lambda: cores)
    html = sample_report(tmp_path, threads=2)
    top = html[: html.index("</p>")]
    assert "every backend timed with <b>2 thread(s)</b>" in top
    assert ("on a host with 32 cores: run with more" in top) is (cores == 32)
    # a row that failed spans every result column with its reason
    assert f'<td colspan="{len(RESULT_COLUMNS)}">RuntimeError: boom</td>' in html
    # throughput in the task's unit, and the task's input spec in the model's facts
    assert "<th>images/s</th>" in html and "<th>per s</th>" not in html
    assert (
        "task <code>classification</code>, input <code>input batch×3×224×224 float32</code>" in html
    )


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
    assert baseline_backend(picks["cuda"]["device"]) == "pytorch_cuda"
    # a device where only the baseline ran says so, under its own name
    notes = comparison_notes(pd.concat([cpu, gpu[gpu.backend == "pytorch_cuda"]]))
    assert notes == ["batch 1 on cuda: nothing to compare side by side: only the baseline ran"]


def config_rows(*rows):
    """Summary rows that ran, one per dict (model "m", status "ok" unless said otherwise)."""
    full = [{"model": "m", "shape": "dynamic", "batch": 1, "status": "ok", **row} for row in rows]
    return pd.DataFrame(full).reindex(columns=summary_columns())


def test_only_configurations_that_fail_parity_are_marked_in_the_figures():
    from deploybench.stages.report import figure_rows

    rows = config_rows(
        {"backend": "pytorch", "precision": "fp32", "parity_verdict": "pass"},
        {"backend": "onnxruntime", "precision": "fp32", "parity_verdict": "inconclusive"},
        {"backend": "onnxruntime", "precision": "int8", "parity_verdict": "fail"},
        {
            "backend": "openvino",
            "precision": "fp32",
            "shape": "static_b1",
            "parity_verdict": "pass",
        },
        {"backend": "openvino", "precision": "int8", "parity_verdict": "fail", "status": "failed"},
        {"backend": "tvm", "precision": "fp32", "status": "skipped"},
    )
    assert figure_rows(rows)["config"].tolist() == [
        "pytorch fp32 dynamic",
        "onnxruntime fp32 dynamic",
        "onnxruntime int8 dynamic  ✗ fails parity",
        "openvino fp32 static_b1",
    ]


def speedup_row(backend, precision, batch, speedup, ci_low, ci_high, parity="pass"):
    return {"backend": backend, "precision": precision, "batch": batch, "cmp_speedup": speedup,
            "cmp_speedup_ci_low": ci_low, "cmp_speedup_ci_high": ci_high,
            "parity_verdict": parity}  # fmt: skip


# Every bar's CI differs from every other's, on both sides, so that a whisker taken from another
# column or another row shows. onnxruntime fp32 is best at batch 8 (3.0) and ranks by that, above
# openvino fp32 (2.7), though its mean over batches (2.5) is below.
SPEEDUPS = config_rows(
    speedup_row("pytorch", "fp32", 1, 1.0, 0.95, 1.10),
    speedup_row("onnxruntime", "fp32", 1, 2.0, 1.5, 2.8),
    speedup_row("onnxruntime", "fp32", 8, 3.0, 2.9, 3.05),
    speedup_row("openvino", "fp32", 8, 2.7, 2.6, 2.75),
    speedup_row("openvino", "int8", 1, 4.0, 3.0, 4.5, parity="fail"),
    {"backend": "tvm", "precision": "fp32", "batch": 8},  # not compared: no bar
)
SPEEDUP_LABELS = [
    "openvino int8 dynamic  ✗ fails parity",
    "onnxruntime fp32 dynamic",
    "openvino fp32 dynamic",
    "pytorch fp32 dynamic",
]
# (label, batch) -> (speedup, CI low, CI high), as SPEEDUPS gives them
SPEEDUP_BARS = {
    ("pytorch fp32 dynamic", 1): (1.0, 0.95, 1.10),
    ("onnxruntime fp32 dynamic", 1): (2.0, 1.5, 2.8),
    ("onnxruntime fp32 dynamic", 8): (3.0, 2.9, 3.05),
    ("openvino fp32 dynamic", 8): (2.7, 2.6, 2.75),
    ("openvino int8 dynamic  ✗ fails parity", 1): (4.0, 3.0, 4.5),
}


def test_speedup_bars_sit_in_their_own_rows_with_whiskers_at_their_own_ci():
    from deploybench.stages.report import figure_rows, speedup_bars

    labels, bars = speedup_bars(figure_rows(SPEEDUPS))
    assert labels == SPEEDUP_LABELS  # the largest speedup on top
    drawn = {
        (bar["config"], bar["batch"]): (
            bar["speedup"],
            bar["speedup"] - bar["error_below"],
            bar["speedup"] + bar["error_above"],
        )
        for bar in bars
    }
    assert len(bars) == len(drawn)
    assert drawn == {key: pytest.approx(value) for key, value in SPEEDUP_BARS.items()}
    for bar in bars:
        row = labels.index(bar["config"])  # each bar inside its own label's band
        assert abs(bar["y"] - row) + bar["height"] / 2 <= 0.4 + 1e-9
    # two batches share a band without overlapping
    onnxruntime = sorted(b["y"] for b in bars if b["config"] == "onnxruntime fp32 dynamic")
    assert onnxruntime[1] - onnxruntime[0] >= bars[0]["height"]


def test_the_speedup_figure_draws_each_bar_and_whisker_of_its_data():
    from deploybench.stages.report import _pyplot, _speedup_figure, figure_rows, speedup_bars

    plt, sns = _pyplot()
    labels, bars = speedup_bars(figure_rows(SPEEDUPS))
    figure = _speedup_figure(plt, sns, "m", labels, bars)
    try:
        (ax,) = figure.axes
        assert [tick.get_text() for tick in ax.get_yticklabels()] == SPEEDUP_LABELS
        assert ax.yaxis_inverted()  # the first label on top
        drawn_bars = sorted(
            (round(p.get_y() + p.get_height() / 2, 6), p.get_width()) for p in ax.patches
        )
        whiskers = sorted(
            (round(y0, 6), x0, x1)
            for container in ax.containers
            if hasattr(container, "has_xerr")
            for (x0, y0), (x1, _) in container.lines[2][0].get_segments()
        )
    finally:
        plt.close(figure)
    y_of = {(bar["config"], bar["batch"]): round(bar["y"], 6) for bar in bars}
    expected = {y_of[key]: value for key, value in SPEEDUP_BARS.items()}
    assert drawn_bars == sorted((y, speedup) for y, (speedup, _, _) in expected.items())
    assert whiskers == [
        (y, pytest.approx(low), pytest.approx(high))
        for y, (_, low, high) in sorted(expected.items())
    ]


def latency_rows(model, backend, latencies, batch=1):
    return [
        {"model": model, "backend": backend, "precision": "fp32", "shape": "dynamic",
         "batch": batch, "iteration": i, "latency_ms": value}
        for i, value in enumerate(latencies)
    ]  # fmt: skip


def test_latency_rows_are_this_models_own_iterations_ordered_by_median():
    from deploybench.stages.report import latency_boxes

    # onnxruntime: lowest median, but a slow tail makes its mean the highest
    latencies = pd.DataFrame(
        latency_rows("m", "pytorch", [2.0, 2.0, 2.0, 2.0, 2.0])
        + latency_rows("m", "onnxruntime", [1.0, 1.0, 1.0, 1.0, 100.0])
        + latency_rows("m", "onnxruntime", [1.5, 1.5, 1.5], batch=8)
        + latency_rows("other", "openvino", [0.5, 0.5, 0.5])
    )
    order, boxes = latency_boxes("m", latencies)
    assert order == ["onnxruntime fp32 dynamic", "pytorch fp32 dynamic"]
    assert sorted(map(tuple, boxes[["config", "batch", "latency_ms"]].to_numpy().tolist())) == [
        *[("onnxruntime fp32 dynamic", 1, 1.0)] * 4,
        ("onnxruntime fp32 dynamic", 1, 100.0),
        *[("onnxruntime fp32 dynamic", 8, 1.5)] * 3,
        *[("pytorch fp32 dynamic", 1, 2.0)] * 5,
    ]
    assert latency_boxes("absent", latencies)[0] == []


def test_throughput_lines_are_one_per_backend_and_precision_over_the_batch_sizes():
    from deploybench.stages.report import figure_rows, throughput_lines

    def point(precision, shape, batch, throughput):
        return {"backend": "onnxruntime", "precision": precision, "shape": shape, "batch": batch,
                "throughput_per_s": throughput, "parity_verdict": "pass"}  # fmt: skip

    rows = figure_rows(
        config_rows(
            point("fp32", "dynamic", 1, 100.0),
            point("fp32", "dynamic", 8, 400.0),
            point("int8", "static_b1", 1, 200.0),
            point("int8", "static_b8", 8, 900.0),
        )
    )
    lines = throughput_lines(rows)
    assert sorted(map(tuple, lines.to_numpy().tolist())) == [
        ("onnxruntime fp32", "dynamic", 1, 100.0),
        ("onnxruntime fp32", "dynamic", 8, 400.0),
        ("onnxruntime int8", "static_b1", 1, 200.0),
        ("onnxruntime int8", "static_b8", 8, 900.0),
    ]
    assert throughput_lines(rows[rows.batch == 1]).empty  # one batch size: no curve to draw


def test_table_rows_show_sizes_in_megabytes_and_note_only_the_noisy_rows(tmp_path):
    from deploybench.stages.report import table_rows

    rows = config_rows(
        {"backend": "pytorch", "precision": "fp32", "noisy": False, "noise": "",
         "compile_artifact_bytes": 46_800_000},
        {"backend": "onnxruntime", "precision": "fp32", "noisy": True,
         "noise": "cv 0.31 > 0.15", "compile_artifact_bytes": 2_500_000},
        {"backend": "onnxruntime", "precision": "int8", "noisy": False, "noise": "",
         "compile_artifact_bytes": 12_000_000},
        {"backend": "openvino", "precision": "fp32", "noisy": True, "noise": "foreign cpu 1.2",
         "vendor_tool": "benchmark_app", "vendor_median_ms": 9.5, "median_ms": 12.0},
        {"backend": "openvino", "precision": "int8", "vendor_tool": "benchmark_app",
         "vendor_median_ms": 4.25, "median_ms": 5.0},
    )  # fmt: skip
    # as the report reads them: from the CSV, where an unset flag is an empty cell
    rows.to_csv(tmp_path / "summary.csv", index=False)
    table = table_rows(pd.read_csv(tmp_path / "summary.csv"))
    assert [row["note"] for row in table] == [
        "",
        "noisy: cv 0.31 > 0.15",
        "",
        "noisy: foreign cpu 1.2; benchmark_app: 9.5 ms",
        "benchmark_app: 4.25 ms",
    ]
    assert [row["artifact_mb"] for row in table[:3]] == pytest.approx([46.8, 2.5, 12.0])


def test_crosscheck_rows_explain_the_ratio_with_the_drift_and_show_ours_after_the_tool():
    from deploybench.stages.report import crosscheck_rows

    summary = config_rows(
        # 30% apart while our own median moved only 2%: not drift
        {"backend": "openvino", "precision": "fp32", "vendor_tool": "benchmark_app",
         "vendor_ratio": 1.30, "vendor_drift": 1.02, "vendor_ours_before_ms": 10.0,
         "vendor_ours_after_ms": 10.2},
        # 5% apart while ours moved 30%: within tolerance, nothing to explain
        {"backend": "openvino", "precision": "int8", "vendor_tool": "benchmark_app",
         "vendor_ratio": 1.05, "vendor_drift": 1.30, "vendor_ours_before_ms": 4.0,
         "vendor_ours_after_ms": 5.2},
        {"backend": "onnxruntime", "precision": "fp32"},  # no vendor tool: no cross-check
    )  # fmt: skip
    rows = crosscheck_rows(summary)
    assert [(r["precision"], r["ours_after_ms"]) for r in rows] == [("fp32", 10.2), ("int8", 5.2)]
    assert "not explained by drift" in rows[0]["explanation"]
    assert rows[1]["explanation"] == ""


def test_timing_conditions_count_and_range_over_the_timings_that_ran_only():
    from deploybench.stages.report import timing_conditions

    def timed(backend, noisy, foreign, mhz, load, status="ok"):
        return {"backend": backend, "precision": "fp32", "status": status, "noisy": noisy,
                "foreign_cpu": foreign, "cmp_foreign_cpu_max": 9.0,
                "cpu_mhz_before": mhz[0], "cpu_mhz_after": mhz[1],
                "load_average_before": load[0], "load_average_after": load[1]}  # fmt: skip

    summary = config_rows(
        timed("pytorch", True, 0.30, (2100.0, 2500.0), (0.40, 0.90)),
        timed("onnxruntime", False, 0.10, (1900.0, 2400.0), (0.60, 0.70)),
        timed("openvino", float("nan"), 0.20, (2000.0, 2800.0), (0.20, 1.10)),
        # a failed timing's flags and readings are not among the timings that ran
        timed("tvm", True, 1.90, (800.0, 3600.0), (0.01, 7.0), status="failed"),
        {"backend": "tensorrt", "precision": "fp32", "status": "skipped"},
    )
    conditions = timing_conditions(summary)
    assert conditions == {
        "noisy_count": 1,
        "timed_count": 3,
        "max_foreign_cpu": 0.30,
        "mhz_range": (1900.0, 2800.0),
        "load_range": (0.20, 1.10),
    }


def test_parity_is_listed_once_per_graph_whatever_the_batch_sizes():
    from deploybench.stages.report import parity_table_rows

    def checked(shape, batch, max_rel):
        return {"backend": "onnxruntime", "precision": "int8", "shape": shape, "batch": batch,
                "parity_status": "ok", "parity_max_rel": max_rel}  # fmt: skip

    summary = config_rows(
        checked("dynamic", 1, 0.01),
        checked("dynamic", 8, 0.01),
        checked("static_b1", 1, 0.02),
        checked("static_b8", 8, 0.03),
        {"backend": "openvino", "precision": "int8", "status": "skipped"},  # never checked
    )
    rows = parity_table_rows(summary)
    assert [(r["shape"], r["parity_max_rel"]) for r in rows] == [
        ("dynamic", 0.01),
        ("static_b1", 0.02),
        ("static_b8", 0.03),
    ]


def test_failures_and_skips_are_listed_once_with_the_shapes_they_concern():
    from deploybench.stages.report import problem_rows

    def problem(status, shape, batch, reason):
        return {"backend": "openvino", "precision": "int8", "status": status, "shape": shape,
                "batch": batch, "reason": reason}  # fmt: skip

    summary = config_rows(
        {"backend": "pytorch", "precision": "fp32"},
        problem("skipped", "static_b1", 1, "nncf not installed"),
        problem("skipped", "dynamic", 1, "nncf not installed"),
        problem("skipped", "dynamic", 8, "nncf not installed"),
        problem("failed", "static_b8", 8, "RuntimeError: boom"),
    )
    assert [(r["status"], r["shape"], r["reason"]) for r in problem_rows(summary)] == [
        ("failed", "static_b8", "RuntimeError: boom"),
        ("skipped", "static_b1, dynamic", "nncf not installed"),
    ]


def test_only_the_baseline_backend_is_called_the_baseline_and_parity_reference():
    from deploybench.stages.report import backend_facts

    roles = {f["name"]: f["role"] for f in backend_facts(["onnxruntime", "pytorch", "openvino"])}
    assert roles == {
        "onnxruntime": "",
        "pytorch": "baseline and parity reference",
        "openvino": "",
    }


class _Tables(HTMLParser):
    """Every table of a page as lists of rows of cell texts."""

    def __init__(self):
        super().__init__()
        self.tables, self._cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_the_per_model_table_shows_each_column_from_its_own_fields(tmp_path, monkeypatch):
    from deploybench.stages import report

    monkeypatch.setattr(report, "_plots", lambda model, rows, latencies: {})  # data only
    summary = config_rows(
        {"backend": "pytorch", "precision": "fp32", "median_ms": 10.0, "median_ci_low_ms": 9.0,
         "median_ci_high_ms": 11.5, "cmp_median_ms": 10.4, "cmp_speedup": 1.0,
         "cmp_speedup_ci_low": 0.97, "cmp_speedup_ci_high": 1.04, "cmp_status": "ok",
         "cmp_baseline": "pytorch fp32", "compile_artifact_bytes": 46_800_000,
         "parity_verdict": "pass", "noisy": False},
        {"backend": "onnxruntime", "precision": "int8", "median_ms": 4.0, "median_ci_low_ms": 3.5,
         "median_ci_high_ms": 4.75, "cmp_median_ms": 4.2, "cmp_speedup": 2.5,
         "cmp_speedup_ci_low": 2.25, "cmp_speedup_ci_high": 2.75, "cmp_status": "ok",
         "cmp_baseline": "pytorch fp32", "compile_artifact_bytes": 12_000_000,
         "parity_verdict": "fail", "noisy": False},
        {"backend": "openvino", "precision": "fp32", "status": "skipped", "reason": "no nncf"},
        {"backend": "openvino", "precision": "int8", "status": "failed", "reason": "boom"},
    )  # fmt: skip
    summary.to_csv(tmp_path / "summary.csv", index=False)
    keys = ["model", "backend", "precision", "shape", "batch"]
    pd.DataFrame(columns=[*keys, "round", "median_ms"]).to_csv(tmp_path / "rounds.csv")
    pd.DataFrame(columns=[*keys, "iteration", "latency_ms"]).to_csv(tmp_path / "latencies.csv")
    out = tmp_path / "report.html"
    report.render_report(
        *(str(tmp_path / f"{name}.csv") for name in ("summary", "latencies", "rounds")),
        [], [], TIMING, 2, str(out),
    )  # fmt: skip
    parser = _Tables()
    parser.feed(out.read_text())
    header, *rows = parser.tables[0]
    # strict=False: a failed row spans the result columns with one cell
    table = {(row[0], row[1]): dict(zip(header, row, strict=False)) for row in rows}
    # a skip is listed under "Failures and skips", not in the per-model table
    assert set(table) == {("pytorch", "fp32"), ("onnxruntime", "int8"), ("openvino", "int8")}
    shown = ("own job: median ms", "95% CI", "side-by-side ms", "speedup", "speedup CI",
             "parity", "artifact MB")  # fmt: skip
    assert [table["pytorch", "fp32"][c] for c in shown] == [
        "10", "9–11.5", "10.4", "1", "0.97–1.04", "pass", "46.8",
    ]  # fmt: skip
    assert [table["onnxruntime", "int8"][c] for c in shown] == [
        "4", "3.5–4.75", "4.2", "2.5", "2.25–2.75", "fail", "12",
    ]  # fmt: skip
    assert table["openvino", "int8"]["own job: median ms"] == "boom"  # spans the result columns


def test_a_failed_tuning_is_a_row_with_its_reason_and_the_report_still_renders(tmp_path):
    from deploybench.stages import report

    summary = config_rows({"backend": "tvm", "precision": "fp32", "status": "failed",
                           "reason": "compile failed: tuning failed"})  # fmt: skip
    summary.to_csv(tmp_path / "summary.csv", index=False)
    keys = ["model", "backend", "precision", "shape", "batch"]
    pd.DataFrame(columns=[*keys, "round", "median_ms"]).to_csv(tmp_path / "rounds.csv")
    pd.DataFrame(columns=[*keys, "iteration", "latency_ms"]).to_csv(tmp_path / "latencies.csv")
    failed = tmp_path / "encoder" / "tvm"
    failed.mkdir(parents=True)
    reason = "InternalError: Reshape expects the input tensor to have known shape"
    (failed / "tuning.json").write_text(json.dumps({"status": "failed", "reason": reason}))
    out = tmp_path / "report.html"
    report.render_report(
        *(str(tmp_path / f"{name}.csv") for name in ("summary", "latencies", "rounds")),
        [], [], TIMING, 2, str(out), [str(failed)],
    )  # fmt: skip
    html = out.read_text()
    assert f'<td class="failed">failed</td><td colspan="11">{reason}</td>' in html
