"""What is particular to OpenVINO: the precision it really executes, fp16 IR weights,
converter errors recorded, and benchmark_app as its vendor tool."""

import importlib.util

import onnx
import onnx.helper as helper
import pytest
from deploybench.backends import get_backend
from deploybench.backends.openvino import parse_benchmark_app
from deploybench.records import ARTIFACT_RECORD, CompileRecord
from deploybench.stages.compile import compile_model
from helpers import limits

needs_openvino = pytest.mark.skipif(
    importlib.util.find_spec("openvino") is None, reason="openvino not installed"
)

SAMPLE = """
[ INFO ] First inference took 5.94 ms
[ INFO ] Count:            2948 iterations
[ INFO ] Latency:
[ INFO ]    Median:        592.13 us
[ INFO ]    Average:       652.27 us
"""


def test_parse_benchmark_app_converts_units():
    parsed = parse_benchmark_app(SAMPLE)
    assert parsed == {"median_ms": pytest.approx(0.59213), "first_ms": 5.94, "iterations": 2948}
    assert parse_benchmark_app(SAMPLE.replace("592.13 us", "1.5 ms"))["median_ms"] == 1.5


def test_parse_benchmark_app_without_median_is_an_error():
    with pytest.raises(RuntimeError, match="no median.*bad input"):
        parse_benchmark_app("[ ERROR ] bad input\n")


@needs_openvino
@pytest.mark.parametrize("shape", ["static", "dynamic"])
def test_benchmark_app_times_our_ir_with_our_settings(tiny_onnx, tmp_path, shape):
    backend = get_backend("openvino")("fp32", 1)
    backend.compile(tiny_onnx[shape], tmp_path)
    result = backend.vendor_benchmark(tmp_path, (2, 3, 16, 16), 1)
    assert result.tool == backend.vendor_tool == "benchmark_app"
    assert result.median_ms > 0 and result.iterations > 0
    assert "-load_config" in result.command and "-data_shape [2,3,16,16]" in result.command


@needs_openvino
def test_fp32_does_not_silently_run_in_bf16(tiny_onnx, tmp_path):
    backend = get_backend("openvino")("fp32", 1)
    backend.compile(tiny_onnx["dynamic"], tmp_path)
    with backend.load(tmp_path) as runner:
        info = runner.execution_info
    assert info["execution_precision"] == "f32"
    assert "float32" in info["inference_precision_hint"]
    assert info["streams"] >= 1


@needs_openvino
def test_fp16_ir_has_fp16_weights_and_fp32_ir_does_not(tiny_onnx, tmp_path):
    sizes = {}
    for precision in ("fp32", "fp16"):
        facts = get_backend("openvino")(precision, 1).compile(
            tiny_onnx["dynamic"], tmp_path / precision
        )
        sizes[precision] = facts.artifact_bytes
        xml = (tmp_path / precision / "model.xml").read_text()
        assert ('element_type="f16"' in xml) == (precision == "fp16")
    assert sizes["fp16"] < sizes["fp32"]


@needs_openvino
def test_unconvertible_op_is_recorded_with_the_converters_message(tmp_path):
    node = helper.make_node("FancyConv", ["x"], ["y"], domain="custom.ops")
    info = helper.make_tensor_value_info
    graph = helper.make_graph(
        [node],
        "g",
        [info("x", onnx.TensorProto.FLOAT, [1, 3, 4, 4])],
        [info("y", onnx.TensorProto.FLOAT, [1, 3, 4, 4])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("custom.ops", 1)]
    )
    source = tmp_path / "model.onnx"
    onnx.save(model, source)
    key = {"model": "m", "backend": "openvino", "precision": "fp32", "shape": "static_b1"}
    out = tmp_path / "artifact"
    compile_model(
        source=str(source),
        calibration_npz=None,
        key=key,
        options={},
        limits=limits(),
        out_dir=str(out),
    )
    record = CompileRecord.read(out / ARTIFACT_RECORD)
    assert record.status == "failed"
    assert "No conversion rule found for operations: custom.ops.FancyConv" in record.reason
    assert "\n" not in record.reason
    assert record.version == get_backend("openvino").version()
