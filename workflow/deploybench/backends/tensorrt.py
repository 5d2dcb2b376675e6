"""TensorRT: the ONNX graph built into a serialized engine; fp32, fp16 and int8.

Two majors, chosen by the installed version and recorded with the engine:
- TensorRT 10 builds a weakly typed network: fp16 and int8 are builder flags (int8 from the
  QDQ graph's explicit scales, so no calibrator);
- TensorRT 11 builds strongly typed networks only (its FP16/INT8 flags and calibrators are
  gone): fp16 comes from an fp16 ONNX graph, int8 from the explicit Q/DQ graph.
int8 comes from ONNX Runtime's quantizer in its TensorRT flavour (symmetric, zero points 0,
float biases): TensorRT's ONNX parser refuses the non-zero zero points of the CPU flavour.
fp32 is real fp32: TF32, on by default in TensorRT, is cleared. The dynamic-batch graph gets an
optimization profile (min/opt/max batch from the options). The builder's timing cache is kept
in the artifact and can seed a later build (``timing_cache``). Device buffers are torch CUDA
tensors (pycuda has no binary wheel). ``trtexec``, where it is on PATH, cross-checks the engine.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, InputFileError
from ..feeds import in_order
from ..io import read_json
from ..records import ARTIFACT_RECORD, VendorCheck
from .base import Backend, Runner
from .cuda import CudaRunner
from .onnxruntime import TENSORRT_QDQ, QdqOptions, quantize_qdq

ENGINE_FILE = "model.engine"
TIMING_CACHE_FILE = "timing.cache"
SUPPORTED_MAJORS = (10, 11)
# TensorRT DataType names -> torch dtype names
TORCH_DTYPES = {
    "FLOAT": "float32",
    "HALF": "float16",
    "BF16": "bfloat16",
    "INT8": "int8",
    "INT32": "int32",
    "INT64": "int64",
    "BOOL": "bool",
}


@dataclass(frozen=True)
class BuildRecipe:
    """How one TensorRT major builds one precision."""

    major: int
    strongly_typed: bool
    builder_flags: tuple[str, ...]
    graph: str  # the ONNX graph the parser reads: "fp32", "fp16" or "qdq"


def build_recipe(version: str, precision: str) -> BuildRecipe:
    """Version dispatch, the one place that knows how each major spells each precision."""
    try:
        major = int(version.split(".")[0])
    except ValueError:
        raise ConfigError(f"cannot read TensorRT's version {version!r}") from None
    if major not in SUPPORTED_MAJORS:
        raise ConfigError(
            f"TensorRT {version} is not supported: install 10.x or 11.x "
            f"(deploybench knows majors {', '.join(map(str, SUPPORTED_MAJORS))})"
        )
    graph = {"fp32": "fp32", "fp16": "fp16", "int8": "qdq"}[precision]
    if major >= 11:
        return BuildRecipe(major, True, (), graph)
    flags = {"fp32": (), "fp16": ("FP16",), "int8": ("INT8",)}[precision]
    return BuildRecipe(major, False, flags, "fp32" if precision == "fp16" else graph)


@dataclass(frozen=True)
class TensorRtOptions(QdqOptions):
    workspace_mb: int = 4096
    builder_optimization_level: int = 3
    profile_min_batch: int = 1
    profile_opt_batch: int = 8
    profile_max_batch: int = 32
    # an earlier build's timing cache (same GPU and TensorRT version) to start from
    timing_cache: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.profile_min_batch <= self.profile_opt_batch <= self.profile_max_batch:
            raise ValueError("profile batches must satisfy 1 <= min <= opt <= max")
        if not 0 <= self.builder_optimization_level <= 5:
            raise ValueError("builder_optimization_level must be 0..5")
        if self.workspace_mb < 1:
            raise ValueError("workspace_mb must be >= 1")
        if self.activation_type != "int8":
            raise ValueError("activation_type must be int8: TensorRT takes signed int8 Q/DQ only")


def profile_shapes(options: TensorRtOptions, dims: list[int]) -> dict[str, tuple[int, ...]]:
    return {
        "min": (options.profile_min_batch, *dims),
        "opt": (options.profile_opt_batch, *dims),
        "max": (options.profile_max_batch, *dims),
    }


def input_profiles(
    options: TensorRtOptions, inputs: list[tuple[str, tuple[int, ...]]]
) -> dict[str, dict[str, tuple[int, ...]]]:
    """One profile entry per network input whose batch axis is free (every input of a
    dynamic graph: token ids and attention mask alike); any other free axis is refused, since
    the simplify stage fixes the experiment's axes (a sequence length) in every graph."""
    profiles = {}
    for name, shape in inputs:
        if not shape or shape[0] != -1:
            continue
        if any(d < 0 for d in shape[1:]):
            raise ConfigError(
                f"input {name} {list(shape)} has a free axis besides the batch: give its size "
                "in the model's axes"
            )
        profiles[name] = profile_shapes(options, list(shape[1:]))
    return profiles


def fp16_graph(source: Path, target: Path) -> None:
    """An fp16 copy of the graph with fp32 inputs and outputs (casts inside), for strong typing."""
    import onnx
    from onnxconverter_common import float16

    model = float16.convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
    onnx.save(model, str(target))


def parse_trtexec(output: str) -> tuple[float, int | None]:
    """trtexec's median GPU compute time (ms) and how many queries it timed."""
    match = re.search(r"GPU Compute Time:.*?median = ([0-9.eE+-]+) ms", output)
    if match is None:
        raise RuntimeError("trtexec printed no 'GPU Compute Time ... median' line")
    queries = re.search(r"Timing trace has (\d+) queries", output)
    return float(match.group(1)), int(queries.group(1)) if queries else None


def _logger(trt):
    return trt.Logger(trt.Logger.WARNING)


def build_engine(graph: Path, recipe: BuildRecipe, options: TensorRtOptions, out_dir: Path):
    import tensorrt as trt

    logger = _logger(trt)
    builder = trt.Builder(logger)
    flags = (
        1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if recipe.strongly_typed else 0
    )
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(graph)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise RuntimeError(f"TensorRT's ONNX parser refused {graph.name}: {errors[:1]}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mb << 20)
    config.builder_optimization_level = options.builder_optimization_level
    for flag in recipe.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    if hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)
    seed = b""
    if options.timing_cache:
        seed_path = Path(options.timing_cache)
        if not seed_path.is_file():
            raise InputFileError(
                f"backend_options.tensorrt.timing_cache: {seed_path} is missing: fix the path"
            )
        seed = seed_path.read_bytes()
    cache = config.create_timing_cache(seed)
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        raise RuntimeError(
            f"TensorRT refused the timing cache {options.timing_cache or '(new)'}: a seed must "
            "come from this GPU and TensorRT version; drop backend_options.tensorrt.timing_cache"
        )
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    profiles = input_profiles(options, [(i.name, tuple(i.shape)) for i in inputs])
    if profiles:
        profile = builder.create_optimization_profile()
        for name, shapes in profiles.items():
            profile.set_shape(name, shapes["min"], shapes["opt"], shapes["max"])
        if config.add_optimization_profile(profile) < 0:
            raise ConfigError(
                f"TensorRT refused the optimization profile {profiles}: fix profile_*_batch"
            )
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError("TensorRT built no engine: its reason is in the job's log above")
    (out_dir / ENGINE_FILE).write_bytes(bytes(serialized))
    (out_dir / TIMING_CACHE_FILE).write_bytes(bytes(config.get_timing_cache().serialize()))
    return {
        "tensorrt": trt.__version__,
        "strongly_typed": recipe.strongly_typed,
        "builder_flags": list(recipe.builder_flags),
        "graph": recipe.graph,
        "profile": profiles or None,
        "timing_cache_seeded_from": options.timing_cache,
    }


class TensorRtRunner(CudaRunner):
    def __init__(self, engine_path: Path, precision: str) -> None:
        super().__init__()
        import tensorrt as trt

        self._trt = trt
        self._runtime = trt.Runtime(_logger(trt))
        self._engine = self._runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if self._engine is None:
            raise InputFileError(
                f"{engine_path} is not an engine this TensorRT and GPU can load: recompile it"
            )
        self._context = self._engine.create_execution_context()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        self._inputs = [
            n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT
        ]
        self._outputs = [n for n in names if n not in self._inputs]
        self._buffers: dict[tuple[str, tuple[int, ...]], Any] = {}
        first = self._inputs[0]
        if self._engine.get_tensor_shape(first)[0] == -1:
            low, _, high = self._engine.get_tensor_profile_shape(first, 0)
            self.batch_range = (int(low[0]), int(high[0]))
        self.execution_info.update(
            {
                "tensorrt": trt.__version__,
                "execution_precision": precision,
                "io": {n: self._engine.get_tensor_dtype(n).name for n in names},
                "batch_range": self.batch_range,
            }
        )

    def _dtype(self, name: str):
        return getattr(self._torch, TORCH_DTYPES[self._engine.get_tensor_dtype(name).name])

    def _output(self, name: str):
        shape = tuple(self._context.get_tensor_shape(name))
        key = (name, shape)
        if key not in self._buffers:
            with self.on_stream():
                self._buffers[key] = self._torch.empty(
                    shape, dtype=self._dtype(name), device=self._device
                )
        return self._buffers[key]

    def _address(self, name: str, tensor) -> None:
        if not self._context.set_tensor_address(name, tensor.data_ptr()):
            raise RuntimeError(
                f"TensorRT refused the device buffer of {name!r} (unknown tensor or misaligned "
                "address): recompile the engine from this model's ONNX"
            )

    def run(self, feeds):
        arrays = in_order(feeds, self._inputs, "the TensorRT engine")
        self.check_batch(len(arrays[0]))
        inputs = self.device_inputs(feeds, self._dtype)  # the same feeds object: copied once
        for name in self._inputs:
            tensor = inputs[name]
            shape = tuple(tensor.shape)
            if not self._context.set_input_shape(name, shape):
                raise ConfigError(
                    f"TensorRT refused input shape {shape} for {name!r} (engine batch range "
                    f"{self.batch_range or 'fixed'}): feed the shape the engine was built for"
                )
            self._address(name, tensor)
        outputs = {n: self._output(n) for n in self._outputs}
        for n, tensor in outputs.items():
            self._address(n, tensor)
        with self._timer:
            if not self._context.execute_async_v3(self._stream.cuda_stream):
                raise RuntimeError("TensorRT's execute_async_v3 failed: see the job's log")
        return outputs

    def close(self) -> None:
        self._context = self._engine = self._runtime = None
        self._buffers = {}


class TensorRtBackend(Backend):
    name = "tensorrt"
    device = "cuda"
    precisions = ("fp32", "fp16", "int8")
    native_precisions = ("fp16", "int8")
    packages = ("tensorrt", "torch")
    # int8 from ONNX Runtime's QDQ graph; fp16 on TensorRT 11 from an fp16 copy of the graph
    precision_packages = {"int8": ("onnxruntime",), "fp16": ("onnxconverter_common",)}
    host_threads = False
    # the [gpu] extra's TensorRT: the one ONNX Runtime's TensorRT provider links (10.x, cu13)
    distributions = ("tensorrt-cu13", "torch")
    extra = "gpu"
    needs_calibration = ("int8",)
    vendor_tool = "trtexec"
    Options = TensorRtOptions

    def _compile(self, source: Path, out_dir: Path, calibration) -> dict:
        import tensorrt as trt

        recipe = build_recipe(trt.__version__, self.precision)
        details: dict[str, Any] = {}
        graph = source
        if recipe.graph == "qdq":
            graph = out_dir / "model.qdq.onnx"
            details.update(
                quantize_qdq(source, graph, calibration, self.options, flavour=TENSORRT_QDQ)
            )
        elif recipe.graph == "fp16":
            graph = out_dir / "model.fp16.onnx"
            fp16_graph(source, graph)
        details.update(build_engine(graph, recipe, self.options, out_dir))
        return details

    def _load(self, artifact_dir: Path) -> Runner:
        engine = artifact_dir / ENGINE_FILE
        if not engine.is_file():
            raise InputFileError(f"{engine} is missing: rerun compile_model for it")
        return TensorRtRunner(engine, self.precision)  # no host thread pool to size

    @staticmethod
    def _trtexec_shapes(artifact_dir: Path, batch: int) -> list[str]:
        """``--shapes=name:BxDxD,...`` for every input of the engine's profile at ``batch``
        (nothing for a static engine, whose shapes are its own)."""
        details = read_json(Path(artifact_dir) / ARTIFACT_RECORD).get("details", {})
        profile = details.get("profile") or {}
        shapes = ",".join(
            f"{name}:{'x'.join(map(str, (batch, *entry['opt'][1:])))}"
            for name, entry in profile.items()
        )
        return [f"--shapes={shapes}"] if shapes else []

    def vendor_benchmark(
        self, artifact_dir: Path, batch_shape: tuple[int, ...], seconds: float
    ) -> VendorCheck | None:
        """trtexec on the same engine and shape, device time without transfers (as ours)."""
        if shutil.which("trtexec") is None:
            return None
        command = [
            "trtexec",
            f"--loadEngine={Path(artifact_dir) / ENGINE_FILE}",
            *self._trtexec_shapes(artifact_dir, batch_shape[0]),
            f"--duration={max(1, round(seconds))}",
            "--noDataTransfers",
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        output = result.stdout + result.stderr
        if result.returncode != 0:
            raise RuntimeError(f"trtexec exited {result.returncode}: {output.strip()[-300:]}")
        median, queries = parse_trtexec(output)
        return VendorCheck(
            tool="trtexec", command=" ".join(command), median_ms=median, iterations=queries
        )
