"""Issue 19's GPU audit, items 1-9, checked without a GPU: versions and pins, QDQ symmetry and
bias on a real tiny ONNX model, provider options and their read-back, library load order,
result checks, profile chunking, the UUID query, and the stream/event wiring through fake
torch.cuda, tensorrt and onnxruntime objects that follow each library's documented contract
(a stream has a ``cuda_stream`` handle, ``set_input_shape`` returns False outside the profile,
``get_provider_options`` returns strings). What these fakes cannot show (that the real libraries
behave so on a GPU) is listed as not verified in docs/backends.md."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import sys
import time
import tomllib
import types
from pathlib import Path

import numpy as np
import onnx
import pytest
from deploybench.backends import cuda as cuda_module
from deploybench.backends import get_backend
from deploybench.backends import onnxruntime_cuda as ort_cuda
from deploybench.backends import tensorrt as trt_backend
from deploybench.errors import BackendUnavailable, ConfigError
from deploybench.gpu import gpu_facts
from deploybench.stages.inference import run_all
from helpers import feeds

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

REPO = Path(__file__).resolve().parents[1]
UUID = "5c4a5d8f-1b2c-4d3e-8f90-0123456789ab"
DEFAULT_STREAM = 0

# ---------------------------------------------------------------- fakes


class FakeStream:
    def __init__(self, handle: int) -> None:
        self.cuda_stream = handle


class FakeEvent:
    def __init__(self, log: list, enable_timing: bool = False) -> None:
        self._log = log
        self._at = 0.0

    def record(self, stream=None) -> None:
        self._at = time.perf_counter()
        self._log.append(("event", stream.cuda_stream if stream is not None else DEFAULT_STREAM))

    def synchronize(self) -> None:
        pass

    def elapsed_time(self, end: FakeEvent) -> float:
        return (end._at - self._at) * 1e3


class FakeCuda:
    """torch.cuda as far as the CUDA runners use it: streams are distinct handles, stream 0 is
    the legacy default stream, ``stream(s)`` makes ``s`` current."""

    def __init__(self, log: list) -> None:
        self.log = log
        self._handles = iter(range(0x7F10, 0x7FFF, 0x10))
        self._current = [FakeStream(DEFAULT_STREAM)]

    def is_available(self) -> bool:
        return True

    def current_device(self) -> int:
        return 0

    def current_stream(self, device=None) -> FakeStream:
        return self._current[-1]

    def Stream(self, device=None) -> FakeStream:  # noqa: N802 - torch's spelling
        return FakeStream(next(self._handles))

    def Event(self, enable_timing: bool = False) -> FakeEvent:  # noqa: N802
        return FakeEvent(self.log, enable_timing)

    @contextlib.contextmanager
    def stream(self, stream: FakeStream):
        self._current.append(stream)
        try:
            yield
        finally:
            self._current.pop()

    def get_device_properties(self, device):
        return types.SimpleNamespace(major=9, minor=0, uuid=UUID)

    def get_device_name(self, device) -> str:
        return "fake GPU"


class FakeTorch(types.ModuleType):
    """The real torch with a fake ``cuda``; "cuda" devices are the CPU (index 0), so tensors and
    modules really move, convert and compute."""

    def __init__(self, cuda: FakeCuda) -> None:
        super().__init__("torch")
        self.cuda = cuda

    def __getattr__(self, name: str):
        return getattr(torch, name)

    def device(self, *args):
        return torch.device("cpu", 0)


@pytest.fixture
def fake_cuda(monkeypatch):
    cuda = FakeCuda([])
    monkeypatch.setitem(sys.modules, "torch", FakeTorch(cuda))
    monkeypatch.setattr(cuda_module, "gpu_facts", lambda uuid=None: {})
    # pytorch_cuda sets TF32 and the thread count process-wide: restore them afterwards
    saved = (
        torch.backends.cudnn.allow_tf32,
        torch.backends.cuda.matmul.allow_tf32,
        torch.get_num_threads(),
    )
    yield cuda
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved[:2]
    torch.set_num_threads(saved[2])


# ---------------------------------------------------------------- 1: the [gpu] extra's TensorRT


def _gpu_extra() -> list[str]:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    return pyproject["project"]["optional-dependencies"]["gpu"]


def test_the_gpu_extra_pins_the_tensorrt_major_onnxruntime_gpus_provider_links():
    from packaging.requirements import Requirement

    requirements = {Requirement(r).name: Requirement(r) for r in _gpu_extra()}
    assert str(requirements["onnxruntime-gpu"].specifier) == "==1.31.1"
    (tensorrt,) = [r for name, r in requirements.items() if name.startswith("tensorrt")]
    # CUDA 13, as torch 2.14.1's wheels; 10.13 is the first TensorRT with a cu13 build
    assert tensorrt.name == "tensorrt-cu13"
    assert all(v in tensorrt.specifier for v in ("10.13.3.9", "10.16.1.11"))
    assert not any(v in tensorrt.specifier for v in ("11.4.0.106", "11.0.0.114", "10.12.0"))
    assert "[gpu]" in (REPO / "envs" / "gpu.yaml").read_text()


# ---------------------------------------------------------------- fake onnxruntime


class FakeSessionOptions:
    def __init__(self) -> None:
        self.intra_op_num_threads = 0
        self.graph_optimization_level = None
        self.config: dict[str, str] = {}

    def add_session_config_entry(self, key: str, value: str) -> None:
        self.config[key] = value


class FakeBinding:
    def __init__(self, log: list) -> None:
        self._log = log
        self._input = None

    def clear_binding_inputs(self) -> None:
        self._log.append(("clear_inputs",))

    def clear_binding_outputs(self) -> None:
        self._log.append(("clear_outputs",))

    def bind_input(self, name, device, device_id, dtype, shape, pointer) -> None:
        self._log.append(("bind_input", name, device_id, tuple(shape)))
        self._input = tuple(shape)

    def bind_output(self, name, device, device_id) -> None:
        self._log.append(("bind_output", name))

    def get_outputs(self):
        batch = self._input[0]
        return [types.SimpleNamespace(numpy=lambda: np.full((batch, 10), float(batch)))]


def fake_onnxruntime(log: list, drop: tuple[str, ...] = ()) -> types.ModuleType:
    """An onnxruntime-gpu whose session keeps the provider options it was given as strings
    (as ONNX Runtime's Python layer does), less the keys in ``drop`` (an ONNX Runtime that does
    not know them falls back to its default, which it then reports)."""
    module = types.ModuleType("onnxruntime")
    module.GraphOptimizationLevel = types.SimpleNamespace(
        ORT_DISABLE_ALL=0, ORT_ENABLE_BASIC=1, ORT_ENABLE_EXTENDED=2, ORT_ENABLE_ALL=99
    )
    module.SessionOptions = FakeSessionOptions
    module.preload_dlls = lambda *a, **k: log.append(("preload_dlls",))
    defaults = {"use_tf32": "1", "user_compute_stream": "0"}

    class InferenceSession:
        def __init__(self, path, session_options, providers):
            log.append(("InferenceSession", providers[0][0]))
            self.session_options = session_options
            self.provider, options = providers[0]
            held = {k: str(v) for k, v in options.items() if k not in drop}
            self._held = {**{k: defaults[k] for k in drop if k in defaults}, **held}

        def get_providers(self):
            return [self.provider, "CPUExecutionProvider"]

        def get_provider_options(self):
            return {self.provider: dict(self._held)}

        def get_session_options(self):
            return self.session_options

        def get_inputs(self):
            return [types.SimpleNamespace(name="input")]

        def get_outputs(self):
            return [types.SimpleNamespace(name="output")]

        def io_binding(self):
            return FakeBinding(log)

        def run_with_iobinding(self, binding) -> None:
            log.append(("run_with_iobinding",))

    module.InferenceSession = InferenceSession
    return module


FAKE_TENSORRT_SOURCE = """
import sys
sys.modules["gpu_audit_log"].append(("import tensorrt",))
__version__ = "{version}"
"""


@pytest.fixture
def ort_env(monkeypatch, tmp_path):
    """A fake onnxruntime-gpu and an importable fake ``tensorrt`` whose import is logged."""
    log: list = []
    monkeypatch.setitem(sys.modules, "gpu_audit_log", log)
    monkeypatch.setitem(sys.modules, "onnxruntime", fake_onnxruntime(log))
    # absent from sys.modules (the teardown removes what the test imported), importable from here
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    del sys.modules["tensorrt"]
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))

    def install_tensorrt(version: str = "10.13.3.9") -> None:
        (site / "tensorrt.py").write_text(FAKE_TENSORRT_SOURCE.format(version=version))

    return types.SimpleNamespace(
        log=log, install_tensorrt=install_tensorrt, monkeypatch=monkeypatch
    )


def _options(**raw):
    return get_backend("onnxruntime_cuda").make_options(raw)


# ---------------------------------------------------------------- 2: libraries before the session


def test_the_tensorrt_libraries_are_loaded_before_the_session_that_needs_them(
    ort_env, tiny_onnx, tmp_path
):
    ort_env.install_tensorrt()
    ort_cuda.make_session(tiny_onnx["dynamic"], "fp16", 1, _options(), tmp_path)
    assert ort_env.log == [
        ("import tensorrt",),
        ("preload_dlls",),
        ("InferenceSession", "TensorrtExecutionProvider"),
    ]
    ort_env.log.clear()
    ort_cuda.make_session(tiny_onnx["dynamic"], "fp32", 1, _options(), tmp_path)
    # the CUDA provider needs CUDA and cuDNN only
    assert ort_env.log == [("preload_dlls",), ("InferenceSession", "CUDAExecutionProvider")]


@pytest.mark.parametrize(
    ("version", "match"),
    [(None, "TensorRT does not import"), ("11.4.0.106", "TensorRT 11.4.0.106 is installed")],
)
def test_a_tensorrt_the_provider_cannot_load_is_a_one_line_error_naming_the_pin(
    ort_env, tiny_onnx, tmp_path, version, match
):
    if version:
        ort_env.install_tensorrt(version)
    else:  # not installed, whatever this host has
        ort_env.monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(BackendUnavailable, match=match) as error:
        ort_cuda.make_session(tiny_onnx["dynamic"], "int8", 1, _options(), tmp_path)
    assert "tensorrt-cu13>=10.13,<11" in str(error.value) and "\n" not in str(error.value)
    assert not any(entry[0] == "InferenceSession" for entry in ort_env.log)


# ---------------------------------------------------------------- 3: QDQ flavours


def _qdq_facts(path: Path) -> dict:
    model = onnx.load(str(path))
    initializers = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    zero_points = [
        initializers[node.input[2]]
        for node in model.graph.node
        if node.op_type in ("QuantizeLinear", "DequantizeLinear")
        and len(node.input) > 2
        and node.input[2] in initializers
    ]
    int32_dequantized = [
        node.input[0]
        for node in model.graph.node
        if node.op_type == "DequantizeLinear"
        and node.input[0] in initializers
        and initializers[node.input[0]].dtype == np.int32
    ]
    return {"zero_points": zero_points, "int32_bias": int32_dequantized}


def test_the_tensorrt_qdq_flavour_is_symmetric_with_float_biases(tiny_onnx, tiny_inputs, tmp_path):
    from deploybench.backends.onnxruntime import CPU_QDQ, TENSORRT_QDQ, quantize_qdq

    options = _options()
    gpu = quantize_qdq(
        tiny_onnx["dynamic"],
        tmp_path / "gpu.onnx",
        feeds(tiny_inputs["calibration"]),
        options,
        flavour=TENSORRT_QDQ,
    )
    facts = _qdq_facts(tmp_path / "gpu.onnx")
    assert facts["zero_points"] and all(
        z.dtype == np.int8 and not z.any() for z in facts["zero_points"]
    )
    assert facts["int32_bias"] == []
    assert gpu["qdq_flavour"] == TENSORRT_QDQ
    # the CPU flavour keeps the quantizer's defaults: non-zero zero points, int32 biases
    cpu = quantize_qdq(
        tiny_onnx["dynamic"], tmp_path / "cpu.onnx", feeds(tiny_inputs["calibration"]), options
    )
    facts = _qdq_facts(tmp_path / "cpu.onnx")
    assert cpu["qdq_flavour"] == CPU_QDQ
    assert any(z.any() for z in facts["zero_points"]) and facts["int32_bias"]


def test_both_gpu_backends_compile_int8_from_the_symmetric_flavour(
    monkeypatch, tiny_onnx, tiny_inputs, tmp_path
):
    monkeypatch.setattr(ort_cuda, "make_session", lambda *args, **kwargs: None)
    (tmp_path / "ort").mkdir()
    ort_backend = get_backend("onnxruntime_cuda")("int8", 1)
    details = ort_backend._compile(
        tiny_onnx["dynamic"], tmp_path / "ort", feeds(tiny_inputs["calibration"])
    )
    assert not any(z.any() for z in _qdq_facts(tmp_path / "ort" / "model.onnx")["zero_points"])
    assert details["qdq_flavour"] == "tensorrt_symmetric"

    monkeypatch.setitem(sys.modules, "tensorrt", types.SimpleNamespace(__version__="10.13.3.9"))
    monkeypatch.setattr(trt_backend, "build_engine", lambda *args: {})
    (tmp_path / "trt").mkdir()
    details = get_backend("tensorrt")("int8", 1)._compile(
        tiny_onnx["dynamic"], tmp_path / "trt", feeds(tiny_inputs["calibration"])
    )
    qdq = _qdq_facts(tmp_path / "trt" / "model.qdq.onnx")
    assert not any(z.any() for z in qdq["zero_points"]) and qdq["int32_bias"] == []
    assert details["qdq_flavour"] == "tensorrt_symmetric"


@pytest.mark.parametrize("name", ["tensorrt", "onnxruntime_cuda"])
def test_uint8_activations_are_refused_for_tensorrt(name):
    with pytest.raises(ConfigError, match="activation_type must be int8"):
        get_backend(name).make_options({"activation_type": "uint8"})


@pytest.mark.parametrize(
    ("precision", "refused"), [("fp16", True), ("int8", True), ("fp32", False)]
)
def test_the_tensorrt_provider_may_not_leave_nodes_to_the_cpu(
    ort_env, tiny_onnx, tmp_path, precision, refused
):
    ort_env.install_tensorrt()
    session = ort_cuda.make_session(tiny_onnx["dynamic"], precision, 1, _options(), tmp_path)
    config = session.session_options.config
    assert (config.get("session.disable_cpu_ep_fallback") == "1") is refused


# ---------------------------------------------------------------- 4: TF32 off, read back


def test_cuda_fp32_clears_tf32_and_a_provider_that_ignores_it_is_refused(
    ort_env, tiny_onnx, tmp_path
):
    session = ort_cuda.make_session(tiny_onnx["dynamic"], "fp32", 1, _options(), tmp_path)
    assert session.get_provider_options()["CUDAExecutionProvider"]["use_tf32"] == "0"
    ort_env.monkeypatch.setitem(
        sys.modules, "onnxruntime", fake_onnxruntime(ort_env.log, drop=("use_tf32",))
    )
    with pytest.raises(ort_cuda.ProviderOptionIgnored, match="use_tf32='1'") as error:
        ort_cuda.make_session(tiny_onnx["dynamic"], "fp32", 1, _options(), tmp_path)
    assert "\n" not in str(error.value)


# ---------------------------------------------------------------- 5, 6: streams and events


def _events_and_launches(log: list) -> list[tuple]:
    return [entry for entry in log if entry[0] in ("event", "execute", "forward")]


class FakeEngine:
    """A TensorRT engine built with one optimization profile over the batch (1..32)."""

    names = ("input", "output")

    def __init__(self, trt, log, refuse_address=()) -> None:
        self._trt, self._log, self._refuse = trt, log, refuse_address

    num_io_tensors = 2

    def get_tensor_name(self, index):
        return self.names[index]

    def get_tensor_mode(self, name):
        return self._trt.TensorIOMode.INPUT if name == "input" else self._trt.TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name):
        return types.SimpleNamespace(name="FLOAT")

    def get_tensor_shape(self, name):
        return (-1, 3, 16, 16) if name == "input" else (-1, 10)

    def get_tensor_profile_shape(self, name, profile):
        return [(1, 3, 16, 16), (8, 3, 16, 16), (32, 3, 16, 16)]

    def create_execution_context(self):
        return FakeContext(self)


class FakeContext:
    """IExecutionContext's contract: set_input_shape and set_tensor_address return False when
    refused; execute_async_v3 returns False without a valid shape."""

    def __init__(self, engine: FakeEngine) -> None:
        self._engine = engine
        self._batch: int | None = None

    def set_input_shape(self, name, shape) -> bool:
        low, _, high = self._engine.get_tensor_profile_shape(name, 0)
        ok = low[0] <= shape[0] <= high[0]
        self._batch = shape[0] if ok else None
        return ok

    def get_tensor_shape(self, name):
        return (self._batch or 0, 10)

    def set_tensor_address(self, name, address) -> bool:
        return name in self._engine.names and name not in self._engine._refuse

    def execute_async_v3(self, stream_handle) -> bool:
        self._engine._log.append(("execute", stream_handle))
        return self._batch is not None


def fake_tensorrt(log: list, refuse_address=()) -> types.SimpleNamespace:
    trt = types.SimpleNamespace(__version__="10.13.3.9")

    class Logger:
        WARNING = 2

        def __init__(self, severity) -> None:
            pass

    trt.Logger = Logger
    trt.TensorIOMode = types.SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT")
    trt.Runtime = lambda logger: types.SimpleNamespace(
        deserialize_cuda_engine=lambda data: FakeEngine(trt, log, refuse_address)
    )
    return trt


def _trt_runner(monkeypatch, tmp_path, log, refuse_address=()):
    """A TensorRT runner on a fake engine; ``monkeypatch`` undoes the fake module."""
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(log, refuse_address))
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"engine")
    return trt_backend.TensorRtRunner(engine, "fp32")


def test_tensorrt_copies_launches_and_times_on_a_stream_of_its_own(
    fake_cuda, monkeypatch, tmp_path
):
    runner = _trt_runner(monkeypatch, tmp_path, fake_cuda.log)
    batch = np.zeros((4, 3, 16, 16), np.float32)
    runner.run(feeds(batch))
    (stream,) = {handle for _, handle in _events_and_launches(fake_cuda.log)}
    assert stream != DEFAULT_STREAM
    assert _events_and_launches(fake_cuda.log) == [
        ("event", stream),
        ("execute", stream),
        ("event", stream),
    ]


class EchoModel(torch.nn.Module):
    """Records the stream its forward runs on and the dtypes it sees."""

    def __init__(self, log: list, cuda: FakeCuda) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3 * 16 * 16, 10)
        self._log, self._cuda = log, cuda
        self.seen: list = []

    def forward(self, x):
        self._log.append(("forward", self._cuda.current_stream().cuda_stream))
        self.seen.append((x, x.dtype, self.linear.weight.dtype))
        return self.linear(x.flatten(1))


def _pytorch_runner(cuda: FakeCuda, precision: str, **options):
    from deploybench.backends.pytorch_cuda import PyTorchCudaRunner

    model = EchoModel(cuda.log, cuda)
    backend = get_backend("pytorch_cuda")
    return PyTorchCudaRunner(model, precision, 1, backend.make_options(options)), model


def test_pytorch_cuda_runs_and_times_on_a_stream_of_its_own(fake_cuda):
    runner, _ = _pytorch_runner(fake_cuda, "fp32")
    runner.run(feeds(np.zeros((2, 3, 16, 16), np.float32)))
    (stream,) = {handle for _, handle in _events_and_launches(fake_cuda.log)}
    assert stream != DEFAULT_STREAM
    assert _events_and_launches(fake_cuda.log) == [
        ("event", stream),
        ("forward", stream),
        ("event", stream),
    ]


def _ort_runner(ort_env, tiny_onnx, tmp_path, precision: str, **options):
    artifact = tmp_path / "artifact"
    artifact.mkdir(exist_ok=True)
    shutil.copyfile(tiny_onnx["dynamic"], artifact / "model.onnx")
    return ort_cuda.OnnxRuntimeCudaRunner(artifact, precision, 1, _options(**options))


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_onnxruntime_gpu_computes_on_the_runners_stream_between_cuda_events(
    fake_cuda, ort_env, tiny_onnx, tmp_path, precision
):
    ort_env.install_tensorrt()
    fake_cuda.log = ort_env.log  # one log for the session, the binding and the events
    runner = _ort_runner(ort_env, tiny_onnx, tmp_path, precision)
    # the harness reads the same clock as for pytorch_cuda and tensorrt
    assert runner.device_clock() is not None
    batch = np.zeros((4, 3, 16, 16), np.float32)
    ort_env.log.clear()
    for _ in range(3):
        runner.run(feeds(batch))
    timed = [e for e in ort_env.log if e[0] in ("event", "run_with_iobinding")]
    stream = timed[0][1] if timed else None
    assert timed == [("event", stream), ("run_with_iobinding",), ("event", stream)] * 3
    assert stream != DEFAULT_STREAM
    held = runner._session.get_provider_options()[ort_cuda.PROVIDER_FOR[precision]]
    assert held["user_compute_stream"] == str(stream)
    # bound once, outside the timed calls
    assert [e[0] for e in ort_env.log].count("bind_input") == 1
    assert runner.last_device_ms() >= 0


# ---------------------------------------------------------------- 7: results and the profile


def test_tensorrt_names_the_profile_for_a_batch_outside_it(fake_cuda, monkeypatch, tmp_path):
    runner = _trt_runner(monkeypatch, tmp_path, fake_cuda.log)
    with pytest.raises(ConfigError, match=r"batch 40 is outside .*\(1\.\.32\)") as error:
        runner.run(feeds(np.zeros((40, 3, 16, 16), np.float32)))
    assert "\n" not in str(error.value)


def test_tensorrt_refusing_a_buffer_address_is_an_error(fake_cuda, monkeypatch, tmp_path):
    runner = _trt_runner(monkeypatch, tmp_path, fake_cuda.log, refuse_address=("output",))
    with pytest.raises(RuntimeError, match="refused the device buffer of 'output'"):
        runner.run(feeds(np.zeros((2, 3, 16, 16), np.float32)))
    assert not any(entry[0] == "execute" for entry in fake_cuda.log)


class FakeBuilderConfig:
    def __init__(self, accept_cache: bool) -> None:
        self._accept = accept_cache
        self.builder_optimization_level = None

    def set_memory_pool_limit(self, pool, size) -> None:
        pass

    def set_flag(self, flag) -> None:
        pass

    def clear_flag(self, flag) -> None:
        pass

    def create_timing_cache(self, seed: bytes):
        return types.SimpleNamespace(serialize=lambda: seed)

    def set_timing_cache(self, cache, ignore_mismatch: bool) -> bool:
        self._cache = cache
        return self._accept

    def get_timing_cache(self):
        return self._cache

    def add_optimization_profile(self, profile) -> int:
        return 0


def fake_builder_tensorrt(accept_cache: bool) -> types.SimpleNamespace:
    trt = fake_tensorrt([])
    inputs = [
        types.SimpleNamespace(name="input_ids", shape=(-1, 16)),
        types.SimpleNamespace(name="attention_mask", shape=(-1, 16)),
    ]
    network = types.SimpleNamespace(get_input=inputs.__getitem__, num_inputs=len(inputs))
    config = FakeBuilderConfig(accept_cache)
    trt.Builder = lambda logger: types.SimpleNamespace(
        create_network=lambda flags: network,
        create_builder_config=lambda: config,
        create_optimization_profile=lambda: types.SimpleNamespace(set_shape=lambda *a: None),
        build_serialized_network=lambda net, cfg: b"engine",
    )
    trt.OnnxParser = lambda net, logger: types.SimpleNamespace(parse_from_file=lambda p: True)
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=0)
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE=0)
    trt.BuilderFlag = types.SimpleNamespace(TF32="TF32")
    return trt


def test_a_timing_cache_tensorrt_refuses_fails_the_build(monkeypatch, tmp_path):
    seed = tmp_path / "seed.cache"
    seed.write_bytes(b"from another GPU")
    options = get_backend("tensorrt").make_options({"timing_cache": str(seed)})
    recipe = trt_backend.build_recipe("10.13.3.9", "fp32")
    monkeypatch.setitem(sys.modules, "tensorrt", fake_builder_tensorrt(accept_cache=True))
    # one profile over both inputs of a two-input graph (token ids and their mask)
    profile = trt_backend.build_engine(tmp_path / "g.onnx", recipe, options, tmp_path)["profile"]
    assert profile == {
        name: {"min": (1, 16), "opt": (8, 16), "max": (32, 16)}
        for name in ("input_ids", "attention_mask")
    }
    monkeypatch.setitem(sys.modules, "tensorrt", fake_builder_tensorrt(accept_cache=False))
    with pytest.raises(RuntimeError, match="refused the timing cache") as error:
        trt_backend.build_engine(tmp_path / "g.onnx", recipe, options, tmp_path)
    assert str(seed) in str(error.value) and "\n" not in str(error.value)


class ProfiledRunner(cuda_module.CudaRunner):
    """A CUDA runner for an engine whose profile takes 1..32 images; it computes in numpy."""

    def __init__(self) -> None:
        super().__init__()
        self.batch_range = (1, 32)
        self.batches: list[int] = []

    def run(self, feeds):
        batch = feeds["input"]
        self.batches.append(len(batch))
        return {"output": np.asarray(batch).reshape(len(batch), -1).sum(axis=1)}


def test_parity_feeds_an_engine_batches_inside_its_profile(fake_cuda):
    evaluation = np.random.default_rng(0).standard_normal((70, 3, 4, 4)).astype(np.float32)
    runner = ProfiledRunner()
    # a dynamic configuration: parity hands every evaluation image over in one batch
    outputs = run_all(runner, feeds(evaluation), None)
    assert runner.batches == [32, 32, 6]
    np.testing.assert_allclose(outputs["output"], evaluation.reshape(70, -1).sum(axis=1))


def test_onnxruntime_tensorrt_respects_its_profile_and_cuda_has_none(
    fake_cuda, ort_env, tiny_onnx, tmp_path
):
    ort_env.install_tensorrt()
    runner = _ort_runner(ort_env, tiny_onnx, tmp_path, "fp16", profile_max_batch=16)
    with pytest.raises(ConfigError, match=r"\(1\.\.16\)"):
        runner.run(feeds(np.zeros((17, 3, 16, 16), np.float32)))
    ort_env.log.clear()
    outputs = runner.infer(feeds(np.zeros((40, 3, 16, 16), np.float32)))
    binds = [e[3][0] for e in ort_env.log if e[0] == "bind_input"]
    assert binds == [16, 16, 8] and outputs["output"].shape == (40, 10)
    # the CUDA provider has no profile: one batch
    ort_env.log.clear()
    _ort_runner(ort_env, tiny_onnx, tmp_path, "fp32").infer(
        feeds(np.zeros((40, 3, 16, 16), np.float32))
    )
    assert [e[3][0] for e in ort_env.log if e[0] == "bind_input"] == [40]


# ---------------------------------------------------------------- 8: GPU facts by UUID


def test_gpu_facts_ask_nvidia_smi_for_the_device_by_uuid(monkeypatch, tmp_path):
    calls = tmp_path / "calls"
    script = tmp_path / "nvidia-smi"
    script.write_text(
        f'#!/bin/sh\necho "$@" >> {calls}\n'
        "echo 'NVIDIA H200, 580.95.05, 9.0, 143771, 1980, 1980, 700.00'\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}/usr/bin:/bin")
    # torch sees one device (index 0); nvidia-smi numbers all of the host's GPUs
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    cuda = FakeCuda([])
    monkeypatch.setitem(sys.modules, "torch", FakeTorch(cuda))
    facts = ProfiledRunner().execution_info["gpu"]
    assert facts["name"] == "NVIDIA H200"
    assert calls.read_text().split()[0] == f"--id=GPU-{UUID}"
    assert gpu_facts(f"GPU-{UUID}") is not None
    assert calls.read_text().splitlines()[-1].split()[0] == f"--id=GPU-{UUID}"


# ---------------------------------------------------------------- 9: fp16 as a converted model


@pytest.mark.parametrize(("precision", "dtype"), [("fp16", "float16"), ("bf16", "bfloat16")])
def test_reduced_precision_times_a_model_converted_once(fake_cuda, precision, dtype):
    runner, model = _pytorch_runner(fake_cuda, precision)
    batch = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
    for _ in range(3):
        runner.run(feeds(batch))
    wanted = getattr(torch, dtype)
    assert {(seen_dtype, weight) for _, seen_dtype, weight in model.seen} == {(wanted, wanted)}
    # the input was cast and copied once, then reused by every timed run
    assert len({id(x) for x, _, _ in model.seen}) == 1
    assert "converted once" in runner.execution_info["execution_precision"]


def test_autocast_stays_an_option_and_says_so(fake_cuda):
    runner, model = _pytorch_runner(fake_cuda, "fp16", autocast=True)
    assert model.linear.weight.dtype == torch.float32
    assert "autocast" in runner.execution_info["execution_precision"]


# ---------------------------------------------------------------- 9: graphs of several inputs


def test_a_graph_of_several_inputs_gets_one_profile_entry_per_input(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", 16])
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", 16])
    out = helper.make_tensor_value_info("sum", TensorProto.INT64, ["batch", 16])
    graph = helper.make_graph(
        [helper.make_node("Add", ["input_ids", "attention_mask"], ["sum"])], "g", [ids, mask], [out]
    )
    path = tmp_path / "two.onnx"
    onnx.save(helper.make_model(graph), str(path))
    inputs, dynamic = ort_cuda._graph_inputs(path)
    assert (inputs, dynamic) == ({"input_ids": [16], "attention_mask": [16]}, True)
    options = get_backend("onnxruntime_cuda").make_options(
        {"profile_opt_batch": 2, "profile_max_batch": 4}
    )
    ((_, trt),) = ort_cuda.provider_options("fp16", options, tmp_path, inputs, dynamic)
    assert trt["trt_profile_max_shapes"] == "input_ids:4x16,attention_mask:4x16"
    assert trt["trt_profile_min_shapes"] == "input_ids:1x16,attention_mask:1x16"


def test_a_free_axis_besides_the_batch_has_no_profile_and_says_so(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    free = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])
    graph = helper.make_graph(
        [helper.make_node("Identity", ["input_ids"], ["y"])],
        "g",
        [free],
        [helper.make_tensor_value_info("y", TensorProto.INT64, None)],
    )
    path = tmp_path / "free.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(ConfigError, match="input_ids has a free axis 1 besides the batch"):
        ort_cuda._graph_inputs(path)
    options = get_backend("tensorrt").make_options({})
    with pytest.raises(ConfigError, match=r"input_ids \[-1, -1\] has a free axis"):
        trt_backend.input_profiles(options, [("input_ids", (-1, -1))])
    # a static graph needs no profile at all
    assert trt_backend.input_profiles(options, [("input", (2, 3, 16, 16))]) == {}
