"""Compile, load, run and parity of each ONNX backend on a tiny generated CNN."""

import importlib.util

import numpy as np
import pytest
from deploybench.backends import get_backend
from deploybench.backends.base import calibration_batches
from deploybench.errors import ConfigError
from deploybench.parity import Tolerance, check
from deploybench.pipeline import run_all

FP32 = Tolerance(max_rel=1e-4, min_cosine=0.99999, min_top1=1.0)
LOOSE = Tolerance(min_cosine=0.9)

CASES = [
    ("onnxruntime", "fp32", FP32),
    ("onnxruntime", "int8", LOOSE),
    ("openvino", "fp32", FP32),
    ("openvino", "fp16", Tolerance(max_rel=5e-2, min_cosine=0.999)),
    ("openvino", "int8", LOOSE),
]


def needs(package):
    return pytest.mark.skipif(
        importlib.util.find_spec(package) is None, reason=f"{package} not installed"
    )


@pytest.mark.parametrize(("name", "precision", "tolerance"), CASES)
@pytest.mark.parametrize("shape", ["static", "dynamic"])
def test_compile_load_run_matches_pytorch(
    name, precision, tolerance, shape, tiny_onnx, tiny_inputs, tiny_reference, tmp_path
):
    backend_cls = get_backend(name)
    ok, why = backend_cls.availability()
    if not ok:
        pytest.skip(why)
    backend = backend_cls()
    calibration = tiny_inputs["calibration"] if precision == "int8" else None
    facts = backend.compile(
        tiny_onnx[shape], tmp_path, precision, calibration, backend_cls.Options()
    )
    assert facts["artifact_bytes"] > 0 and facts["files"]
    with backend.load(tmp_path, precision, threads=1, options=backend_cls.Options()) as runner:
        outputs = run_all(runner, tiny_inputs["evaluation"], 2 if shape == "static" else None)
        info = runner.execution_info
    assert outputs[0].shape == tiny_reference.shape
    result = check([tiny_reference], outputs, tolerance)
    assert result.verdict == "pass", result.reason
    assert info.get("threads") == 1


@needs("onnxruntime")
def test_onnxruntime_int8_graph_is_really_quantized(tiny_onnx, tiny_inputs, tmp_path):
    backend_cls = get_backend("onnxruntime")
    facts = backend_cls().compile(
        tiny_onnx["dynamic"], tmp_path, "int8", tiny_inputs["calibration"], backend_cls.Options()
    )
    assert facts["details"]["quantize_nodes"] > 0
    assert facts["details"]["per_channel"] is True
    import onnx

    weights = onnx.load(str(tmp_path / "model.onnx")).graph.initializer
    int8_weights = [w for w in weights if w.data_type == onnx.TensorProto.INT8 and len(w.dims) == 4]
    assert int8_weights, "conv weights were not stored as int8"
    # per-channel: one scale per output channel of the first conv (8 channels)
    scales = [w for w in weights if w.name.endswith("_scale") and list(w.dims) == [8]]
    assert scales


@needs("onnxruntime")
def test_onnxruntime_runs_on_the_cpu_provider_with_our_threads(tiny_onnx, tmp_path):
    backend_cls = get_backend("onnxruntime")
    backend_cls().compile(tiny_onnx["dynamic"], tmp_path, "fp32", None, backend_cls.Options())
    with backend_cls().load(tmp_path, "fp32", threads=2, options=backend_cls.Options()) as runner:
        assert runner.execution_info["providers"] == ["CPUExecutionProvider"]
        assert runner.execution_info["threads"] == 2


@needs("openvino")
def test_openvino_reports_the_precision_it_really_executes(tiny_onnx, tmp_path):
    backend_cls = get_backend("openvino")
    backend_cls().compile(tiny_onnx["dynamic"], tmp_path, "fp32", None, backend_cls.Options())
    with backend_cls().load(tmp_path, "fp32", threads=1, options=backend_cls.Options()) as runner:
        info = runner.execution_info
    # fp32 must not silently run as bf16 on CPUs that have it
    assert info["execution_precision"] == "f32"
    assert "float32" in info["inference_precision_hint"]
    assert info["streams"] >= 1


@needs("openvino")
def test_openvino_fp16_ir_has_fp16_weights_and_fp32_ir_does_not(tiny_onnx, tmp_path):
    backend_cls = get_backend("openvino")
    sizes = {}
    for precision in ("fp32", "fp16"):
        facts = backend_cls().compile(
            tiny_onnx["dynamic"], tmp_path / precision, precision, None, backend_cls.Options()
        )
        sizes[precision] = facts["artifact_bytes"]
        xml = (tmp_path / precision / "model.xml").read_text()
        assert ('element_type="f16"' in xml) == (precision == "fp16")
    assert sizes["fp16"] < sizes["fp32"]


def test_bf16_support_follows_cpu_flags():
    for name in ("pytorch", "openvino"):
        backend = get_backend(name)
        assert backend.precision_support("bf16", frozenset({"avx512_bf16"}))[0]
        ok, reason = backend.precision_support("bf16", frozenset({"avx2"}))
        assert not ok and "bf16" in reason


def test_calibration_batches_fit_static_graphs():
    data = np.zeros((7, 3, 4, 4), np.float32)
    assert [len(b) for b in calibration_batches(data, 2)] == [2, 2, 2]
    assert [len(b) for b in calibration_batches(data, None)] == [1] * 7
    with pytest.raises(ConfigError, match="calibration_size"):
        calibration_batches(data, 8)
