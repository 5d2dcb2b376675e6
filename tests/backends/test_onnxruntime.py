"""What is particular to ONNX Runtime: int8 really quantized per channel, the CPU provider."""

import numpy as np
import onnx
import pytest
from deploybench.backends import get_backend
from deploybench.backends.base import calibration_batches
from deploybench.errors import ConfigError
from helpers import feeds

pytest.importorskip("onnxruntime")


def test_int8_graph_is_really_quantized_per_channel(tiny_onnx, tiny_inputs, tmp_path):
    facts = get_backend("onnxruntime")("int8", 1).compile(
        tiny_onnx["dynamic"], tmp_path, feeds(tiny_inputs["calibration"])
    )
    assert facts.details["quantize_nodes"] > 0
    assert facts.details["per_channel"] is True
    weights = onnx.load(str(tmp_path / "model.onnx")).graph.initializer
    int8_weights = [w for w in weights if w.data_type == onnx.TensorProto.INT8 and len(w.dims) == 4]
    assert int8_weights, "conv weights were not stored as int8"
    # per-channel: one scale per output channel of the first conv (8 channels)
    scales = [w for w in weights if w.name.endswith("_scale") and list(w.dims) == [8]]
    assert scales


def test_runs_on_the_cpu_provider_without_spinning_threads(tiny_onnx, tmp_path):
    backend = get_backend("onnxruntime")("fp32", 2)
    backend.compile(tiny_onnx["dynamic"], tmp_path)
    with backend.load(tmp_path) as runner:
        assert runner.execution_info["providers"] == ["CPUExecutionProvider"]
        assert runner.execution_info["inter_op_threads"] == 1


def test_calibration_batches_fit_static_graphs():
    data = {"input": np.arange(7)[:, None] * np.ones((7, 3)), "mask": np.arange(7)[:, None]}
    pairs = calibration_batches(data, 2)
    assert [len(b["input"]) for b in pairs] == [2, 2, 2]
    # every input of a batch holds the same samples, in order
    assert [b["mask"].ravel().tolist() for b in pairs] == [[0, 1], [2, 3], [4, 5]]
    assert all((b["input"][:, 0] == b["mask"].ravel()).all() for b in pairs)
    assert [len(b["input"]) for b in calibration_batches(data, None)] == [1] * 7
    with pytest.raises(ConfigError, match="calibration_size"):
        calibration_batches(data, 8)
