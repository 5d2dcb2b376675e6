"""ONNX Runtime on a CUDA GPU: fp32 through the CUDA execution provider, fp16 and int8 through
the TensorRT execution provider (int8 from ONNX Runtime's quantizer in its TensorRT flavour:
symmetric, zero points 0, float biases; the CPU flavour's graph is one TensorRT refuses).

Libraries: onnxruntime-gpu 1.31's TensorRT provider links ``libnvinfer.so.10``, which pip's
TensorRT wheels do not put on the loader path ("libnvinfer.so.10: cannot open shared object
file", microsoft/onnxruntime#18597). Importing ``tensorrt`` first loads every library its
wheel ships into the process, and ``onnxruntime.preload_dlls()`` does the same for CUDA and
cuDNN from the nvidia-* wheels; both happen before ``InferenceSession``.

Fallbacks: ONNX Runtime falls back to the CPU, with a warning only, when a GPU provider fails to
load: that would report CPU numbers as GPU numbers, so the session's providers are checked and
the job fails with the reason instead. On the TensorRT paths ``session.disable_cpu_ep_fallback``
also makes a graph that TensorRT takes only in part an error, not a mixed GPU/CPU timing; the
CUDA path keeps it off, as the CUDA provider puts small shape computations on the CPU by design.

fp32 is real fp32: the CUDA provider's ``use_tf32`` (on by default) is cleared and read back.
Timing: the session computes on the runner's own stream (``user_compute_stream``), with input
and outputs bound outside the timed call, and CUDA events on that stream bracket
``run_with_iobinding``: the quantity pytorch_cuda and tensorrt report. The TensorRT provider's
engine is built at compile time, into the artifact (``trt_cache/``); a load works on a copy of
that cache, so timing never writes into the artifact.
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailable, ConfigError, first_line
from ..feeds import in_order
from .base import Backend, Runner, installed_version
from .cuda import CudaRunner
from .onnxruntime import GRAPH_LEVELS, TENSORRT_QDQ, QdqOptions, quantize_qdq

CUDA_PROVIDER = "CUDAExecutionProvider"
TENSORRT_PROVIDER = "TensorrtExecutionProvider"
PROVIDER_FOR = {"fp32": CUDA_PROVIDER, "fp16": TENSORRT_PROVIDER, "int8": TENSORRT_PROVIDER}
ENGINE_CACHE = "trt_cache"
# the libnvinfer.so.<major> that onnxruntime-gpu 1.31's TensorRT provider links (readelf)
ORT_TENSORRT_MAJOR = 10
TENSORRT_PIN = "tensorrt-cu13>=10.13,<11"
NO_CPU_FALLBACK = "session.disable_cpu_ep_fallback"


class ProviderFallback(RuntimeError):
    """ONNX Runtime would run the model somewhere other than the provider asked for."""


class ProviderOptionIgnored(RuntimeError):
    """The provider does not hold an option the measurement depends on."""


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
        if self.activation_type != "int8":
            raise ValueError("activation_type must be int8: TensorRT takes signed int8 Q/DQ only")


def _shapes(batch: int, inputs: dict[str, list[int]]) -> str:
    """The TensorRT provider's profile string: ``name:BxDxD`` per input, comma-separated."""
    return ",".join(
        f"{name}:{'x'.join(str(d) for d in (batch, *dims))}" for name, dims in inputs.items()
    )


def provider_options(
    precision: str,
    options: OnnxRuntimeCudaOptions,
    engine_cache: Path,
    sample_dims: dict[str, list[int]],
    dynamic: bool,
    device_id: int = 0,
    stream: int | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """The providers list for ``InferenceSession``: the GPU provider that precision needs, with
    nothing to fall back to (a CPU fallback is refused afterwards anyway). ``stream``: the
    address of the CUDA stream the session computes on (not 0: ONNX Runtime ignores it)."""
    if precision not in PROVIDER_FOR:
        raise ConfigError(f"onnxruntime_cuda does not offer {precision}")
    on_stream = {"user_compute_stream": str(stream)} if stream else {}
    if PROVIDER_FOR[precision] == CUDA_PROVIDER:
        return [(CUDA_PROVIDER, {"device_id": device_id, "use_tf32": 0, **on_stream})]
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
        **on_stream,
    }
    if dynamic:
        trt["trt_profile_min_shapes"] = _shapes(options.profile_min_batch, sample_dims)
        trt["trt_profile_opt_shapes"] = _shapes(options.profile_opt_batch, sample_dims)
        trt["trt_profile_max_shapes"] = _shapes(options.profile_max_batch, sample_dims)
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


def check_applied(provider: str, requested: dict[str, Any], applied: dict[str, str]) -> None:
    """Refuse a session whose provider does not hold the TF32 and stream settings asked for:
    TF32 would time another precision, another stream would leave the events empty. The CUDA
    provider reports both (``CUDAExecutionProviderInfo::ToProviderOptions``); a stream the
    provider does not report is not held against it."""
    for key in ("use_tf32", "user_compute_stream"):
        if key not in requested or (key == "user_compute_stream" and key not in applied):
            continue
        if applied.get(key) != str(requested[key]):
            raise ProviderOptionIgnored(
                f"{provider} holds {key}={applied.get(key)!r}, not {requested[key]!r}: "
                "install onnxruntime-gpu 1.31.1 (pip install 'deploybench[gpu]')"
            )


def load_provider_libraries(ort, provider: str) -> str | None:
    """Load the pip wheels' CUDA, cuDNN and (for the TensorRT provider) TensorRT libraries into
    the process before a session needs them; the TensorRT version loaded, if any."""
    version = None
    if provider == TENSORRT_PROVIDER:
        try:
            trt = importlib.import_module("tensorrt")
        except ImportError as exc:
            raise BackendUnavailable(
                f"TensorRT does not import ({first_line(exc)}): ONNX Runtime's TensorRT provider "
                f"needs it; pip install '{TENSORRT_PIN}' (deploybench[gpu])"
            ) from exc
        version = str(trt.__version__)
        if version.split(".")[0] != str(ORT_TENSORRT_MAJOR):
            raise BackendUnavailable(
                f"TensorRT {version} is installed, but onnxruntime-gpu's TensorRT provider links "
                f"libnvinfer.so.{ORT_TENSORRT_MAJOR}: pip install '{TENSORRT_PIN}' "
                "(deploybench[gpu]); TensorRT 11 serves only the tensorrt backend"
            )
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:  # onnxruntime-gpu >= 1.21
        preload()
    return version


def _graph_inputs(model_path: Path) -> tuple[dict[str, list[int]], bool]:
    """Every graph input's sample dims (after the batch), and whether the batch is free. A
    free axis besides the batch is refused: the simplify stage fixes the experiment's axes."""
    import onnx

    inputs, dynamic = {}, False
    for value in onnx.load(str(model_path), load_external_data=False).graph.input:
        dims = value.type.tensor_type.shape.dim
        dynamic = dynamic or not dims[0].HasField("dim_value")
        free = [i for i, d in enumerate(dims) if i and not d.HasField("dim_value")]
        if free:
            raise ConfigError(
                f"input {value.name} has a free axis {free[0]} besides the batch: give its size "
                "in the model's axes"
            )
        inputs[value.name] = [d.dim_value for d in dims[1:]]
    return inputs, dynamic


def make_session(
    model_path: Path,
    precision: str,
    threads: int,
    options,
    engine_cache: Path,
    device_id: int = 0,
    stream: int | None = None,
):
    import onnxruntime as ort

    session_options = ort.SessionOptions()
    session_options.intra_op_num_threads = threads
    session_options.graph_optimization_level = getattr(
        ort.GraphOptimizationLevel, GRAPH_LEVELS[options.graph_optimization]
    )
    sample_dims, dynamic = _graph_inputs(model_path)
    providers = provider_options(
        precision, options, engine_cache, sample_dims, dynamic, device_id, stream
    )
    provider, requested = providers[0]
    if provider == TENSORRT_PROVIDER:
        session_options.add_session_config_entry(NO_CPU_FALLBACK, "1")
    load_provider_libraries(ort, provider)
    session = ort.InferenceSession(str(model_path), session_options, providers=providers)
    check_providers(provider, session.get_providers())
    check_applied(provider, requested, session.get_provider_options().get(provider, {}))
    return session


class OnnxRuntimeCudaRunner(CudaRunner):
    def __init__(
        self, artifact_dir: Path, precision: str, threads: int, options: OnnxRuntimeCudaOptions
    ) -> None:
        super().__init__()
        self._scratch = tempfile.TemporaryDirectory(prefix="deploybench-trt-")
        cache = Path(self._scratch.name) / ENGINE_CACHE
        if (artifact_dir / ENGINE_CACHE).is_dir():
            shutil.copytree(artifact_dir / ENGINE_CACHE, cache)
        model = artifact_dir / "model.onnx"
        self._session = make_session(
            model,
            precision,
            threads,
            options,
            cache,
            device_id=self._device.index,
            stream=self.stream.cuda_stream,
        )
        provider = PROVIDER_FOR[precision]
        if provider == TENSORRT_PROVIDER and _graph_inputs(model)[1]:
            self.batch_range = (options.profile_min_batch, options.profile_max_batch)
        self._inputs = [i.name for i in self._session.get_inputs()]
        self._outputs = [o.name for o in self._session.get_outputs()]
        self._binding = self._session.io_binding()
        self._bound: tuple | None = None
        applied = self._session.get_session_options()
        self.execution_info.update(
            {
                "providers": self._session.get_providers(),
                "provider_options": {
                    key: value
                    for key, value in self._session.get_provider_options()[provider].items()
                    if key in ("use_tf32", "user_compute_stream", "trt_fp16_enable")
                    or key.startswith("trt_int8")
                },
                "cpu_fallback": "refused" if provider == TENSORRT_PROVIDER else "allowed",
                "threads": applied.intra_op_num_threads,
                "execution_precision": {
                    "fp32": "fp32 (CUDA EP, TF32 off)",
                    "fp16": "fp16 (TensorRT EP)",
                    "int8": "QDQ int8 (TensorRT EP, symmetric Q/DQ)",
                }[precision],
                "batch_range": self.batch_range,
                "timing_clock": "CUDA events on the runner's own stream, which ONNX Runtime "
                "computes on (user_compute_stream); device-resident I/O",
            }
        )

    def _bind(self, inputs) -> None:
        """Bind inputs and outputs once per set of input buffers: not inside the timed call."""
        key = tuple(
            (name, tensor.data_ptr(), tuple(tensor.shape), str(tensor.dtype).removeprefix("torch."))
            for name, tensor in inputs.items()
        )
        if key == self._bound:
            return
        binding = self._binding
        binding.clear_binding_inputs()
        binding.clear_binding_outputs()
        for name, address, shape, dtype in key:
            binding.bind_input(name, "cuda", self._device.index, dtype, list(shape), address)
        for name in self._outputs:
            binding.bind_output(name, "cuda", self._device.index)
        self._bound = key

    def run(self, feeds):
        arrays = in_order(feeds, self._inputs, "the ONNX graph")
        self.check_batch(len(arrays[0]))
        inputs = self.device_inputs(feeds)  # the same feeds object: copied once, bound once
        self._bind(inputs)
        with self._timer:
            self._session.run_with_iobinding(self._binding)
        return dict(zip(self._outputs, self._binding.get_outputs(), strict=True))

    def to_host(self, outputs):
        return {name: value.numpy() for name, value in outputs.items()}

    def close(self) -> None:
        self._session = None
        self._binding = None
        self._scratch.cleanup()


class OnnxRuntimeCudaBackend(Backend):
    name = "onnxruntime_cuda"
    device = "cuda"
    onnx_reference = True
    precisions = ("fp32", "fp16", "int8")
    native_precisions = ("fp16", "int8")
    packages = ("onnxruntime", "torch")
    # the TensorRT provider's libraries come from the tensorrt wheels (10.x: TENSORRT_PIN)
    precision_packages = {"fp16": ("tensorrt",), "int8": ("tensorrt",)}
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
            details.update(
                quantize_qdq(source, target, calibration, self.options, flavour=TENSORRT_QDQ)
            )
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
