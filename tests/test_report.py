import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("seaborn")

from deploybench.backends import get_backend  # noqa: E402
from deploybench.records import summary_columns  # noqa: E402
from deploybench.stages.collect import add_speedups  # noqa: E402
from deploybench.stages.report import RESULT_COLUMNS, recommend, render_report  # noqa: E402

TIMING = {"max_cv": 0.15, "warmup_iterations": 10}


def summary_rows():
    base = {
        "model": "m",
        "shape": "dynamic",
        "status": "ok",
        "n": 30,
        "cv": 0.05,
        "p90_ms": 0,
        "p99_ms": 0,
        "cold_ms": 1.0,
        "noisy": False,
        "noise": "",
        "throughput_per_s": 1.0,
    }
    rows = []
    for backend, precision, median, parity in [
        ("pytorch", "fp32", 10.0, "pass"),
        ("onnxruntime", "fp32", 5.0, "pass"),
        ("onnxruntime", "int8", 2.0, "fail"),
    ]:
        rows.append(
            {
                **base,
                "backend": backend,
                "precision": precision,
                "batch": 1,
                "median_ms": median,
                "median_ci_low_ms": median * 0.9,
                "median_ci_high_ms": median * 1.1,
                "parity_status": "ok",
                "parity_verdict": parity,
                "parity_reason": "<b>why</b>",
            }
        )
    rows.append(
        {
            "model": "m",
            "backend": "openvino",
            "precision": "fp32",
            "shape": "dynamic",
            "batch": 1,
            "status": "skipped",
            "reason": "openvino not installed",
        }
    )
    rows.append(
        {
            "model": "m",
            "backend": "openvino",
            "precision": "int8",
            "shape": "dynamic",
            "batch": 1,
            "status": "failed",
            "reason": "RuntimeError: boom",
        }
    )
    return add_speedups(pd.DataFrame(rows).reindex(columns=summary_columns()))


def test_recommendation_is_the_fastest_that_passes_parity():
    frame = summary_rows()
    (pick,) = recommend(frame[frame.model == "m"], pretrained=True)
    assert pick["row"]["backend"] == "onnxruntime" and pick["row"]["precision"] == "fp32"
    assert pick["row"]["speedup"] == pytest.approx(2.0)
    # conservative interval: 9/5.5 .. 11/4.5
    assert pick["row"]["speedup_ci_low"] == pytest.approx(9 / 5.5)
    assert pick["row"]["speedup_ci_high"] == pytest.approx(11 / 4.5)


def test_report_is_self_contained_and_escapes_config_strings(tmp_path):
    summary = tmp_path / "summary.csv"
    summary_rows().to_csv(summary, index=False)
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
    render_report(str(summary), str(latencies), [], [str(facts)], TIMING, 2, str(out))
    html = out.read_text()
    assert hostile not in html and "&lt;script&gt;" in html
    assert "&lt;b&gt;why&lt;/b&gt;" in html
    assert "openvino not installed" in html
    assert "ship <b>onnxruntime fp32 (dynamic)</b>" in html
    assert "data:image/png;base64," in html
    assert "<script" not in html.lower()
    # the baseline and the backends' versions come from the backend classes
    assert "2.00× pytorch fp32" in html
    for backend in ("pytorch", "onnxruntime", "openvino"):
        for distribution in get_backend(backend).distributions:
            assert f"<th>{distribution}</th>" in html
    # a row that failed spans every result column with its reason
    assert f'<td colspan="{len(RESULT_COLUMNS)}">RuntimeError: boom</td>' in html


def test_crosscheck_note_tells_drift_from_a_real_difference():
    from deploybench.stages.report import crosscheck_note

    assert crosscheck_note(1.05, 1.30) == ""  # within 15%: nothing to explain
    assert "drifted" in crosscheck_note(1.30, 1.25)
    assert "not explained by drift" in crosscheck_note(1.30, 1.02)
    assert crosscheck_note(float("nan"), None) == ""


def test_numbers_are_formatted_without_needless_exponents():
    from deploybench.stages.report import _fmt

    assert _fmt(2600.4) == "2600"
    assert _fmt(266.3) == "266"
    assert _fmt(0.00709) == "0.00709"
    assert _fmt(3.6e-9) == "3.60e-09"
    assert _fmt(float("nan")) == "" and _fmt(None) == ""
