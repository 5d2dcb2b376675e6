"""ONNX Runtime on a CUDA GPU: fp32 through the CUDA execution provider, fp16 and int8 through
the TensorRT execution provider (int8 from the same QDQ graph as ONNX Runtime int8 on the CPU).

ONNX Runtime falls back to the CPU, with a warning only, when a GPU provider fails to load (a
missing CUDA or TensorRT library): that would report CPU numbers as GPU numbers, so the session's
providers are checked and the job fails with the reason instead. The TensorRT provider's engine
is built at compile time, into the artifact (``trt_cache/``); a load works on a copy of that
cache, so timing never writes into the artifact.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..specs import INPUT_NAME
from .base import Backend, Runner, installed_version
from .cuda import CudaRunner
from .onnxruntime import GRAPH_LEVELS, QdqOptions, quantize_qdq

CUDA_PROVIDER = "CUDAExecutionProvider"
TENSORRT_PROVIDER = "TensorrtExecutionProvider"
PROVIDER_FOR = {"fp32": CUDA_PROVIDER, "fp16": TENSORRT_PROVIDER, "int8": TENSORRT_PROVIDER}
ENGINE_CACHE = "trt_cache"


class ProviderFallback(RuntimeError):
    """ONNX Runtime would run the model somewhere other than the provider asked for."""


@dataclass(frozen=True)
class OnnxRuntimeCudaOptions(QdqOptions):
    graph_optimization: str = "all"
    trt_workspace_mb: int = 4096
    # the TensorRT provider's optimization profile for the dynamic-batch graph
    profile_min_batch: int = 1
    profile_opt_batch: int = 8
    profile_max_batch: int = 32

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.graph_optimization not in GRAPH_LEVELS:
            raise ValueError(f"graph_optimization must be one of {', '.join(GRAPH_LEVELS)}")
        if not 1 <= self.profile_min_batch <= self.profile_opt_batch <= self.profile_max_batch:
            raise ValueError("profile batches must satisfy 1 <= min <= opt <= max")
        if self.trt_workspace_mb < 1:
            raise ValueError("trt_workspace_mb must be >= 1")


def _shape(batch: int, dims: list[int]) -> str:
    return f"{INPUT_NAME}:{'x'.join(str(d) for d in (batch, *dims))}"


def provider_options(
    precision: str,
    options: OnnxRuntimeCudaOptions,
    engine_cache: Path,
    sample_dims: list[int],
    dynamic: bool,
    device_id: int = 0,
) -> list[tuple[str, dict[str, Any]]]:
    """The providers list for ``InferenceSession``: the GPU provider that precision needs, with
    nothing to fall back to (a CPU fallback is refused afterwards anyway)."""
    if precision not in PROVIDER_FOR:
        raise ConfigError(f"onnxruntime_cuda does not offer {precision}")
    if PROVIDER_FOR[precision] == CUDA_PROVIDER:
        return [(CUDA_PROVIDER, {"device_id": device_id})]
    trt: dict[str, Any] = {
        "device_id": device_id,
        "trt_max_workspace_size": options.trt_workspace_mb << 20,
        "trt_fp16_enable": precision == "fp16",
        # int8 from the graph's explicit Q/DQ scales: no calibration table
        "trt_int8_enable": precision == "int8",
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(engine_cache),
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": str(engine_cache),
    }
    if dynamic:
        trt["trt_profile_min_shapes"] = _shape(options.profile_min_batch, sample_dims)
        trt["trt_profile_opt_shapes"] = _shape(options.profile_opt_batch, sample_dims)
        trt["trt_profile_max_shapes"] = _shape(options.profile_max_batch, sample_dims)
    return [(TENSORRT_PROVIDER, trt)]


def check_providers(requested: str, session_providers: list[str]) -> None:
    """Refuse a session whose first provider is not the one asked for: ONNX Runtime's silent
    fallback would run (and time) the model on the CPU."""
    if not session_providers or session_providers[0] != requested:
        raise ProviderFallback(
            f"ONNX Runtime did not load {requested} (session providers: "
            f"{', '.join(session_providers) or 'none'}): it would run on the CPU; check the "
            "CUDA/cuDNN/TensorRT libraries of onnxruntime-gpu (the job's log has ONNX Runtime's "
            "reason)"
        )


def _graph_input(model_path: Path) -> tuple[list[int], bool]:
    import onnx

    graph_input = onnx.load(str(model_path), load_external_data=False).graph.input[0]
    dims = graph_input.type.tensor_type.shape.dim
    dynamic = not dims[0].HasField("dim_value")
    return [d.dim_value for d in dims[1:]], dynamic


def make_session(model_path: Path, precision: str, threads: int, options, engine_cache: Path):
    import onnxruntime as ort

    session_options = ort.SessionOptions()
    session_options.intra_op_num_threads = threads
    session_options.graph_optimization_level = getattr(
        ort.GraphOptimizationLevel, GRAPH_LEVELS[options.graph_optimization]
    )
    sample_dims, dynamic = _graph_input(model_path)
    providers = provider_options(precision, options, engine_cache, sample_dims, dynamic)
    session = ort.InferenceSession(str(model_path), session_options, providers=providers)
    check_providers(providers[0][0], session.get_providers())
    return session


class OnnxRuntimeCudaRunner(CudaRunner):
    # ORT launches on a stream of its own: events on ours would not bracket its work
    device_timer = False

    def __init__(
        self, artifact_dir: Path, precision: str, threads: int, options: OnnxRuntimeCudaOptions
    ) -> None:
        super().__init__()
        self._scratch = tempfile.TemporaryDirectory(prefix="deploybench-trt-")
        cache = Path(self._scratch.name) / ENGINE_CACHE
        if (artifact_dir / ENGINE_CACHE).is_dir():
            shutil.copytree(artifact_dir / ENGINE_CACHE, cache)
        self._session = make_session(
            artifact_dir / "model.onnx", precision, threads, options, cache
        )
        self._input = self._session.get_inputs()[0].name
        self._outputs = [o.name for o in self._session.get_outputs()]
        self._binding = self._session.io_binding()
        applied = self._session.get_session_options()
        self.execution_info.update(
            {
                "providers": self._session.get_providers(),
                "threads": applied.intra_op_num_threads,
                "execution_precision": {
                    "fp32": "fp32 (CUDA EP)",
                    "fp16": "fp16 (TensorRT EP)",
                    "int8": "QDQ int8 (TensorRT EP)",
                }[precision],
                # ORT launches on its own stream and synchronises before run returns
                "timing_clock": "host clock around run_with_iobinding (device-resident I/O)",
            }
        )

    def run(self, batch):
        torch = self._torch
        inputs = self.device_input(batch, torch.float32)
        binding = self._binding
        binding.clear_binding_inputs()
        binding.clear_binding_outputs()
        binding.bind_input(
            self._input,
            "cuda",
            self._device.index,
            "float32",
            list(inputs.shape),
            inputs.data_ptr(),
        )
        for name in self._outputs:
            binding.bind_output(name, "cuda", self._device.index)
        self._session.run_with_iobinding(binding)
        return dict(zip(self._outputs, binding.get_outputs(), strict=True))

    def to_host(self, outputs):
        return {name: value.numpy() for name, value in outputs.items()}

    def close(self) -> None:
        self._session = None
        self._binding = None
        self._scratch.cleanup()


class OnnxRuntimeCudaBackend(Backend):
    name = "onnxruntime_cuda"
    device = "cuda"
    precisions = ("fp32", "fp16", "int8")
    native_precisions = ("fp16", "int8")
    packages = ("onnxruntime", "torch")
    distributions = ("onnxruntime-gpu",)
    extra = "gpu"
    needs_calibration = ("int8",)
    Options = OnnxRuntimeCudaOptions

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        available, reason = super().availability()
        # the CPU build installs the same `onnxruntime` package, without the GPU providers
        if available and installed_version("onnxruntime-gpu") is None:
            return False, (
                "onnxruntime-gpu not installed (the CPU build of onnxruntime has no CUDA or "
                f"TensorRT provider; {cls.install_hint()} in an environment of its own)"
            )
        return available, reason

    def _compile(self, source: Path, out_dir: Path, calibration) -> dict:
        target = out_dir / "model.onnx"
        details: dict[str, Any] = {"provider": PROVIDER_FOR[self.precision]}
        if self.precision == "int8":
            details.update(quantize_qdq(source, target, calibration, self.options))
        else:
            shutil.copyfile(source, target)
        if PROVIDER_FOR[self.precision] == TENSORRT_PROVIDER:
            # building the session builds the engine into the cache: compile time, not load
            cache = out_dir / ENGINE_CACHE
            cache.mkdir()
            make_session(target, self.precision, self.threads, self.options, cache)
            details["engine_cache"] = sorted(p.name for p in cache.iterdir())
        return details

    def _load(self, artifact_dir: Path) -> Runner:
        return OnnxRuntimeCudaRunner(artifact_dir, self.precision, self.threads, self.options)
