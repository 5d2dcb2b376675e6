"""A failing backend is recorded and shown; it never hides the others."""

import json

import numpy as np
import pytest
from deploybench import pipeline
from deploybench.backends import get_backend
from deploybench.collect import collect_results
from deploybench.io import save_npz

pytest.importorskip("onnxruntime")


def test_compile_failure_becomes_records_and_a_report_row(
    tiny_onnx, tiny_inputs, tmp_path, monkeypatch
):
    backend_cls = get_backend("onnxruntime")
    evaluation = tmp_path / "evaluation.npz"
    save_npz(evaluation, evaluation=tiny_inputs["evaluation"])
    calibration = tmp_path / "calibration.npz"
    save_npz(calibration, calibration=tiny_inputs["calibration"])
    timing = {
        "warmup_iterations": 1,
        "warmup_seconds": 0.0,
        "min_iterations": 3,
        "min_seconds": 0.0,
        "retries_if_noisy": 0,
    }

    def keys(precision):
        return {
            "model": "tiny",
            "backend": "onnxruntime",
            "precision": precision,
            "shape": "dynamic",
        }

    good, bad = tmp_path / "fp32", tmp_path / "int8"
    pipeline.compile_artifact(
        "onnxruntime", "fp32", str(tiny_onnx["dynamic"]), None, {}, str(good), keys("fp32")
    )

    def broken(*args, **kwargs):
        raise RuntimeError("Unsupported op 'FancyConv'\nmore detail")

    monkeypatch.setattr(backend_cls, "_compile", broken)
    pipeline.compile_artifact(
        "onnxruntime",
        "int8",
        str(tiny_onnx["dynamic"]),
        str(calibration),
        {},
        str(bad),
        keys("int8"),
    )
    record = json.loads((bad / "artifact.json").read_text())
    assert record["status"] == "failed"
    assert record["reason"] == "RuntimeError: Unsupported op 'FancyConv' more detail"
    monkeypatch.undo()

    out = {}
    for name, folder in (("fp32", good), ("int8", bad)):
        out[name] = tmp_path / f"{name}.json"
        pipeline.time_inference(
            str(folder), str(evaluation), 1, 1, timing, {}, str(out[name]), keys(name)
        )
    assert json.loads(out["fp32"].read_text())["status"] == "ok"
    skipped = json.loads(out["int8"].read_text())
    assert skipped["status"] == "skipped" and "compile failed: RuntimeError" in skipped["reason"]

    summary, latencies = tmp_path / "summary.csv", tmp_path / "latencies.csv"
    collect_results(
        [str(out["fp32"]), str(out["int8"])],
        [],
        [str(good), str(bad)],
        [
            {
                "model": "tiny",
                "backend": "openvino",
                "precision": "fp32",
                "shape": "dynamic",
                "batch": 1,
                "reason": "openvino not installed",
            }
        ],
        str(summary),
        str(latencies),
    )
    import pandas as pd

    frame = pd.read_csv(summary).set_index(["backend", "precision"])
    assert frame.loc[("onnxruntime", "fp32"), "status"] == "ok"
    assert frame.loc[("onnxruntime", "int8"), "status"] == "skipped"
    assert frame.loc[("openvino", "fp32"), "reason"] == "openvino not installed"
    assert len(pd.read_csv(latencies)) == frame.loc[("onnxruntime", "fp32"), "n"]


def test_run_all_pads_static_batches_and_keeps_order():
    class Echo:
        def run(self, batch):
            assert len(batch) == 4
            return [batch.reshape(len(batch), -1).sum(axis=1, keepdims=True)]

    data = np.arange(10 * 2, dtype=np.float32).reshape(10, 2)
    (out,) = pipeline.run_all(Echo(), data, 4)
    np.testing.assert_array_equal(out[:, 0], data.sum(axis=1))


def test_make_batch_cycles_when_asking_for_more_than_the_images():
    data = np.arange(3, dtype=np.float32).reshape(3, 1)
    np.testing.assert_array_equal(pipeline.make_batch(data, 5)[:, 0], [0, 1, 2, 0, 1])
