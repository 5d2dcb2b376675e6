"""Which outputs to force so that failed configurations, and only they, are retried."""

import json

from deploybench.retry import failed_outputs


def record(path, status, **fields):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"status": status, **fields}))


def test_each_failed_configuration_is_retried_from_its_first_failed_job(tmp_path):
    results = tmp_path / "results"
    record(results / "onnx/broken/export.json", "failed", reason="exporter")
    record(results / "compiled/broken/onnxruntime/fp32/dynamic/artifact.json", "failed")
    record(results / "onnx/m/export.json", "ok")
    record(results / "compiled/m/openvino/int8/dynamic/artifact.json", "failed")
    # skipped downstream of the failed compile: the compile is what reruns
    record(results / "timings/m/openvino/int8/dynamic/b1.json", "skipped")
    record(results / "parity/m/openvino/int8/dynamic.json", "skipped")
    record(results / "compiled/m/onnxruntime/fp32/dynamic/artifact.json", "ok")
    record(results / "timings/m/onnxruntime/fp32/dynamic/b1.json", "failed", reason="SIGSEGV")
    record(results / "timings/m/onnxruntime/fp32/dynamic/b8.json", "ok")
    record(results / "parity/m/onnxruntime/fp32/dynamic.json", "ok")
    record(results / "compiled/m/tvm/fp32/static_b1/artifact.json", "ok")
    record(results / "parity/m/tvm/fp32/static_b1.json", "failed")
    record(results / "comparisons/m/cpu/b1.json", "ok", configs=[{"status": "ok"}])
    record(results / "comparisons/m/cpu/b8.json", "ok", configs=[{"status": "failed"}])
    assert failed_outputs(results) == [
        f"{results}/onnx/broken/exported.onnx",
        f"{results}/compiled/m/openvino/int8/dynamic",
        f"{results}/timings/m/onnxruntime/fp32/dynamic/b1.json",
        f"{results}/parity/m/tvm/fp32/static_b1.json",
        f"{results}/comparisons/m/cpu/b8.json",
    ]


def test_a_record_that_cannot_be_read_is_retried_and_a_clean_run_lists_nothing(tmp_path):
    results = tmp_path / "results"
    record(results / "compiled/m/onnxruntime/fp32/dynamic/artifact.json", "ok")
    assert failed_outputs(results) == []
    (results / "compiled/m/onnxruntime/fp32/dynamic/artifact.json").write_text("{trunc")
    assert failed_outputs(results) == [f"{results}/compiled/m/onnxruntime/fp32/dynamic"]
