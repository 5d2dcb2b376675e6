import importlib.util
import json

import onnx
import onnx.helper as helper
import pytest
from deploybench import pipeline

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("openvino") is None, reason="openvino not installed"
)


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
    keys = {"model": "m", "backend": "openvino", "precision": "fp32", "shape": "static_b1"}
    out = tmp_path / "artifact"
    pipeline.compile_artifact("openvino", "fp32", str(source), None, {}, str(out), keys)
    record = json.loads((out / "artifact.json").read_text())
    assert record["status"] == "failed"
    assert "No conversion rule found for operations: custom.ops.FancyConv" in record["reason"]
    assert "\n" not in record["reason"]
