"""ONNX Runtime on the CPU execution provider: fp32, and static int8 (QDQ, per-channel)."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..feeds import feed_count, require_names
from ..onnx_tools import input_batch
from .base import Backend, Runner, calibration_batches

GRAPH_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}
CALIBRATION_METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}
# The two QDQ graphs ONNX Runtime's quantizer makes here, by who runs them (the compile record's
# ``qdq_flavour``). The CPU keeps the quantizer's defaults (asymmetric activations, int32 bias
# DequantizeLinear): its int8 kernels take them. TensorRT's ONNX parser refuses non-zero zero
# points (NVIDIA/TensorRT#2774), and quantized biases would leave nodes for the CPU.
CPU_QDQ = "cpu"
TENSORRT_QDQ = "tensorrt_symmetric"
QDQ_EXTRA_OPTIONS = {
    CPU_QDQ: {},
    TENSORRT_QDQ: {"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False},
}


@dataclass(frozen=True)
class QdqOptions:
    """How the int8 QDQ graph is made (shared by every backend that runs it)."""

    calibration_method: str = "minmax"
    # Per-tensor weights wrecked EfficientNet-Lite0 top-1 in earlier trials here (0.26 vs 0.63).
    per_channel: bool = True
    activation_type: str = "int8"

    def __post_init__(self) -> None:
        if self.calibration_method not in CALIBRATION_METHODS:
            raise ValueError(f"calibration_method must be one of {', '.join(CALIBRATION_METHODS)}")
        if self.activation_type not in ("int8", "uint8"):
            raise ValueError("activation_type must be int8 or uint8")


@dataclass(frozen=True)
class OnnxRuntimeOptions(QdqOptions):
    graph_optimization: str = "all"
    # Spinning threads burn the other cores while idle; on a shared host that hurts everyone.
    allow_spinning: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.graph_optimization not in GRAPH_LEVELS:
            raise ValueError(f"graph_optimization must be one of {', '.join(GRAPH_LEVELS)}")


class OnnxRuntimeRunner(Runner):
    def __init__(
        self, model_path: Path, precision: str, threads: int, options: OnnxRuntimeOptions
    ) -> None:
        super().__init__()
        import onnxruntime as ort

        session_options = ort.SessionOptions()
        session_options.intra_op_num_threads = threads
        session_options.inter_op_num_threads = 1
        session_options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        session_options.graph_optimization_level = getattr(
            ort.GraphOptimizationLevel, GRAPH_LEVELS[options.graph_optimization]
        )
        session_options.add_session_config_entry(
            "session.intra_op.allow_spinning", "1" if options.allow_spinning else "0"
        )
        self._session = ort.InferenceSession(
            str(model_path), session_options, providers=["CPUExecutionProvider"]
        )
        self._inputs = [graph_input.name for graph_input in self._session.get_inputs()]
        self._outputs = [output.name for output in self._session.get_outputs()]
        applied = self._session.get_session_options()  # what the session holds, not our request
        self.execution_info = {
            "providers": self._session.get_providers(),
            "threads": applied.intra_op_num_threads,
            "inter_op_threads": applied.inter_op_num_threads,
            "graph_optimization": options.graph_optimization,
            # ORT offers no read-back of kernel precisions: this says what the graph holds.
            "execution_precision": "fp32" if precision == "fp32" else "QDQ int8 graph",
        }

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        require_names(feeds, self._inputs, "the ONNX graph")
        results = self._session.run(None, feeds)  # ONNX Runtime takes inputs by name
        return dict(zip(self._outputs, results, strict=True))

    def close(self) -> None:
        self._session = None


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    onnx_reference = True
    precisions = ("fp32", "int8")
    packages = ("onnxruntime",)
    distributions = ("onnxruntime",)
    extra = "onnxruntime"
    needs_calibration = ("int8",)
    Options = OnnxRuntimeOptions

    def _compile(self, source: Path, out_dir: Path, calibration) -> dict:
        options = self.options
        target = out_dir / "model.onnx"
        if self.precision == "fp32":
            shutil.copyfile(source, target)
            return {"quantization": None}
        return quantize_qdq(source, target, calibration, options)

    def _load(self, artifact_dir: Path) -> Runner:
        return OnnxRuntimeRunner(
            artifact_dir / "model.onnx", self.precision, self.threads, self.options
        )


def quantize_qdq(
    source: Path, target: Path, calibration, options: QdqOptions, flavour: str = CPU_QDQ
) -> dict:
    """Static int8 QDQ graph from ``source`` (ONNX Runtime's quantizer), written to ``target``,
    in the ``flavour`` its runner takes (:data:`QDQ_EXTRA_OPTIONS`): ONNX Runtime int8 on the
    CPU, or the explicit Q/DQ graph TensorRT (alone or as ONNX Runtime's provider) builds from."""
    if flavour not in QDQ_EXTRA_OPTIONS:
        raise ValueError(f"unknown QDQ flavour {flavour!r}: one of {', '.join(QDQ_EXTRA_OPTIONS)}")
    if flavour == TENSORRT_QDQ and options.activation_type != "int8":
        raise ConfigError("TensorRT's Q/DQ graph needs activation_type int8 (signed)")
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = Path(target).with_name("prepared.onnx")
    quant_pre_process(str(source), str(prepared))
    batches = calibration_batches(calibration, input_batch(source))

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._batches, None)
            return batch

    activation = QuantType.QInt8 if options.activation_type == "int8" else QuantType.QUInt8
    quantize_static(
        str(prepared),
        str(target),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=options.per_channel,
        activation_type=activation,
        weight_type=QuantType.QInt8,
        calibrate_method=getattr(
            CalibrationMethod, CALIBRATION_METHODS[options.calibration_method]
        ),
        extra_options=dict(QDQ_EXTRA_OPTIONS[flavour]),
    )
    prepared.unlink()
    import onnx

    ops = [n.op_type for n in onnx.load(str(target)).graph.node]
    return {
        "quantization": "static QDQ",
        "qdq_flavour": flavour,
        "qdq_extra_options": QDQ_EXTRA_OPTIONS[flavour],
        "activation_type": options.activation_type,
        "per_channel": options.per_channel,
        "calibration_method": options.calibration_method,
        "calibration_images": sum(feed_count(b) for b in batches),
        "quantize_nodes": ops.count("QuantizeLinear"),
    }
