"""OpenVINO on the CPU: fp32, bf16, fp16 IR and NNCF int8.

On CPUs with native bf16 (e.g. Zen4, Sapphire Rapids) OpenVINO runs an "fp32" model in bf16
unless told otherwise, so every precision sets INFERENCE_PRECISION_HINT explicitly, and the
runner reads back what the compiled model really executes.
"""

from __future__ import annotations

import collections
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..feeds import feed_count, require_names
from ..onnx_tools import input_batch
from ..records import VendorCheck
from .base import Backend, Runner, calibration_batches

IR_FILE = "model.xml"
# The hint each precision loads with; int8 keeps its non-quantized layers in fp32.
PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16", "int8": "f32"}
COMPUTE_LAYERS = ("Convolution", "GroupConvolution", "FullyConnected", "MatMul", "Deconvolution")


@dataclass(frozen=True)
class OpenVinoOptions:
    performance_hint: str = "LATENCY"
    int8_preset: str = "performance"
    int8_subset_size: int = 300
    int8_fast_bias_correction: bool = True

    def __post_init__(self) -> None:
        if self.performance_hint not in ("LATENCY", "THROUGHPUT"):
            raise ValueError("performance_hint must be LATENCY or THROUGHPUT")
        if self.int8_preset not in ("performance", "mixed"):
            raise ValueError("int8_preset must be performance or mixed")
        if self.int8_subset_size < 1:
            raise ValueError("int8_subset_size must be >= 1")


def executed_precisions(compiled_model) -> dict[str, int]:
    """How many compute layers of the compiled model run in each precision."""
    counts: collections.Counter[str] = collections.Counter()
    for op in compiled_model.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        if "runtimePrecision" in info and info["layerType"].astype(str) in COMPUTE_LAYERS:
            counts[info["runtimePrecision"].astype(str)] += 1
    return dict(counts)


def compile_config(precision: str, threads: int, options: OpenVinoOptions) -> dict[str, Any]:
    return {
        "PERFORMANCE_HINT": options.performance_hint,
        "INFERENCE_NUM_THREADS": threads,
        "INFERENCE_PRECISION_HINT": PRECISION_HINTS[precision],
    }


_MEDIAN = re.compile(r"Median:\s+([\d.]+)\s*(ms|us|s)\b")
_FIRST = re.compile(r"First inference took\s+([\d.]+)\s*ms")
_COUNT = re.compile(r"Count:\s+(\d+)\s+iterations")
_TO_MS = {"ms": 1.0, "us": 1e-3, "s": 1e3}


def benchmark_app_command() -> list[str]:
    """The benchmark_app that ships with the openvino wheel beside this interpreter."""
    beside = Path(sys.executable).parent / "benchmark_app"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("benchmark_app")
    if found:
        return [found]
    return [sys.executable, "-c", "from openvino.tools.benchmark.main import main; main()"]


def parse_benchmark_app(output: str) -> dict[str, Any]:
    median = _MEDIAN.search(output)
    if median is None:
        lines = [ln for ln in output.splitlines() if "ERROR" in ln] or output.splitlines()[-1:]
        raise RuntimeError(f"benchmark_app printed no median: {' '.join(lines)[:300]}")
    first = _FIRST.search(output)
    count = _COUNT.search(output)
    return {
        "median_ms": float(median.group(1)) * _TO_MS[median.group(2)],
        "first_ms": float(first.group(1)) if first else None,
        "iterations": int(count.group(1)) if count else None,
    }


class OpenVinoRunner(Runner):
    def __init__(self, ir_path: Path, precision: str, threads: int, options: OpenVinoOptions):
        super().__init__()
        import openvino as ov

        core = ov.Core()
        self._compiled = core.compile_model(
            str(ir_path), "CPU", compile_config(precision, threads, options)
        )
        # One infer request reused for every batch, as benchmark_app does.
        self._request = self._compiled.create_infer_request()
        self._input_names = [graph_input.get_any_name() for graph_input in self._compiled.inputs]
        self._output_names = [output.get_any_name() for output in self._compiled.outputs]
        layers = executed_precisions(self._compiled)
        self.execution_info = {
            "inference_precision_hint": str(
                self._compiled.get_property("INFERENCE_PRECISION_HINT")
            ),
            "compute_layer_precisions": layers,
            "execution_precision": max(layers, key=layers.get) if layers else "unknown",
            "streams": int(self._compiled.get_property("NUM_STREAMS")),
            "threads": int(self._compiled.get_property("INFERENCE_NUM_THREADS")),
            "performance_hint": str(self._compiled.get_property("PERFORMANCE_HINT")),
        }

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        require_names(feeds, self._input_names, "the OpenVINO model")
        # Shared outputs are the request's own buffers, overwritten by the next call: copy once.
        results = self._request.infer(feeds, share_inputs=True, share_outputs=True)
        return {
            name: np.array(output, copy=True)
            for name, output in zip(self._output_names, results.to_tuple(), strict=True)
        }

    def close(self) -> None:
        self._request = None
        self._compiled = None


class OpenVinoBackend(Backend):
    name = "openvino"
    precisions = ("fp32", "bf16", "fp16", "int8")
    packages = ("openvino",)
    precision_packages = {"int8": ("nncf",)}
    distributions = ("openvino", "nncf")
    extra = "openvino"
    needs_calibration = ("int8",)
    # Without native fp16 the CPU plugin runs an f16 hint in bf16 (seen on Zen4): not fp16 work.
    native_precisions = ("bf16", "fp16")
    vendor_tool = "benchmark_app"
    Options = OpenVinoOptions

    def _compile(self, source: Path, out_dir: Path, calibration) -> dict:
        import openvino as ov

        precision, options = self.precision, self.options

        model = ov.convert_model(str(source))
        details: dict[str, Any] = {"weights": "fp16" if precision == "fp16" else "fp32"}
        if precision == "int8":
            import nncf

            batches = calibration_batches(calibration, input_batch(source))
            preset = getattr(nncf.QuantizationPreset, options.int8_preset.upper())
            model = nncf.quantize(
                model,
                nncf.Dataset(batches),
                preset=preset,
                subset_size=min(options.int8_subset_size, len(batches)),
                fast_bias_correction=options.int8_fast_bias_correction,
            )
            details.update(
                quantization="NNCF post-training",
                preset=options.int8_preset,
                calibration_images=sum(feed_count(b) for b in batches),
            )
        # save_model compresses weights to fp16 by default; only the fp16 IR should be.
        ov.save_model(model, str(out_dir / IR_FILE), compress_to_fp16=precision == "fp16")
        return details

    def vendor_benchmark(
        self, artifact_dir: Path, batch_shape: tuple[int, ...], seconds: float
    ) -> VendorCheck:
        """benchmark_app on the same IR with exactly our compile config (via -load_config)."""
        ir = Path(artifact_dir) / IR_FILE
        shape = "[" + ",".join(str(d) for d in batch_shape) + "]"
        with tempfile.TemporaryDirectory() as folder:
            config_path = Path(folder) / "config.json"
            config = {
                k: str(v)
                for k, v in compile_config(self.precision, self.threads, self.options).items()
            }
            config_path.write_text(json.dumps({"CPU": config}))
            tool = benchmark_app_command()
            command = [
                *tool,
                "-m",
                str(ir),
                "-d",
                "CPU",
                "-load_config",
                str(config_path),
                "-api",
                "sync",
                "-t",
                str(max(1, round(seconds))),
                # a dynamic IR stays dynamic (as in our runner); only the data gets a shape
                "-data_shape",
                shape,
                "-inference_only",
                "true",
            ]
            result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        output = result.stdout + result.stderr
        if result.returncode != 0:
            errors = [ln.strip() for ln in output.splitlines() if "error" in ln.lower()]
            raise RuntimeError(
                f"benchmark_app exited {result.returncode}: {(errors or [output[-300:]])[-1]}"
            )
        parsed = parse_benchmark_app(output)
        command_shown = [self.vendor_tool, *command[len(tool) :]]
        return VendorCheck(tool=self.vendor_tool, command=" ".join(command_shown), **parsed)

    def _load(self, artifact_dir: Path) -> Runner:
        return OpenVinoRunner(artifact_dir / IR_FILE, self.precision, self.threads, self.options)
