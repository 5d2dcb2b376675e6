"""The GPU backends as far as they can be checked without a GPU: version dispatch, provider
options, the CPU-fallback refusal, precision policy, skip reasons, option checks and the
vendor tool's parsing; then, marked ``gpu``, the real thing where a GPU is present."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from deploybench.backends import get_backend
from deploybench.backends import onnxruntime_cuda as ort_cuda
from deploybench.backends import tensorrt as trt_backend
from deploybench.backends.cuda import NO_CUDA_IN_JOB
from deploybench.errors import BackendUnavailable, ConfigError
from deploybench.gpu import gpu_present
from deploybench.hardware import HostFacts
from deploybench.plan import NO_GPU_REASON, plan
from helpers import feeds, fetch, model_spec, settings

GPU_BACKENDS = ("pytorch_cuda", "onnxruntime_cuda", "tensorrt")

# ---------------------------------------------------------------- TensorRT version dispatch


@pytest.mark.parametrize(
    ("version", "precision", "strongly_typed", "flags", "graph"),
    [
        ("10.13.3.9", "fp32", False, (), "fp32"),
        ("10.13.3.9", "fp16", False, ("FP16",), "fp32"),
        ("10.13.3.9", "int8", False, ("INT8",), "qdq"),
        ("11.4.0.106", "fp32", True, (), "fp32"),
        ("11.4.0.106", "fp16", True, (), "fp16"),
        ("11.4.0.106", "int8", True, (), "qdq"),
    ],
)
def test_each_tensorrt_major_spells_each_precision_its_own_way(
    version, precision, strongly_typed, flags, graph
):
    recipe = trt_backend.build_recipe(version, precision)
    assert recipe.major == int(version.split(".")[0])
    assert (recipe.strongly_typed, recipe.builder_flags, recipe.graph) == (
        strongly_typed,
        flags,
        graph,
    )


@pytest.mark.parametrize("version", ["8.6.1", "12.0.0", "banana"])
def test_an_unsupported_tensorrt_is_a_one_line_error_naming_what_works(version):
    with pytest.raises(ConfigError, match=r"TensorRT|version") as error:
        trt_backend.build_recipe(version, "fp32")
    assert "\n" not in str(error.value)
    if version[0].isdigit():
        assert "install 10.x or 11.x" in str(error.value)


def test_the_dynamic_graph_gets_the_profile_from_the_options():
    options = get_backend("tensorrt").make_options(
        {"profile_min_batch": 2, "profile_opt_batch": 4, "profile_max_batch": 16}
    )
    assert trt_backend.profile_shapes(options, [3, 224, 224]) == {
        "min": (2, 3, 224, 224),
        "opt": (4, 3, 224, 224),
        "max": (16, 3, 224, 224),
    }


@pytest.mark.parametrize("name", ["tensorrt", "onnxruntime_cuda"])
def test_a_profile_that_is_not_ordered_is_refused(name):
    with pytest.raises(ConfigError, match="min <= opt <= max"):
        get_backend(name).make_options({"profile_min_batch": 8, "profile_opt_batch": 4})


TRTEXEC_OUTPUT = """\
[11/30/2026-05:00:00] [I] Timing trace has 2048 queries over 3.00241 s
[11/30/2026-05:00:00] [I] Throughput: 682.1 qps
[11/30/2026-05:00:00] [I] Latency: min = 1.40 ms, max = 1.62 ms, mean = 1.45 ms, median = 1.44 ms
[11/30/2026-05:00:00] [I] GPU Compute Time: min = 1.30 ms, max = 1.51 ms, mean = 1.36 ms, \
median = 1.3456 ms, percentile(90%) = 1.40 ms
"""


def test_trtexec_gives_its_median_gpu_compute_time_not_its_latency():
    assert trt_backend.parse_trtexec(TRTEXEC_OUTPUT) == (1.3456, 2048)
    with pytest.raises(RuntimeError, match="GPU Compute Time"):
        trt_backend.parse_trtexec("[I] Latency: median = 1.44 ms\n")


def test_without_trtexec_on_path_there_is_no_vendor_check(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    backend = get_backend("tensorrt")("fp32", 1, None)
    assert backend.vendor_benchmark(tmp_path, (1, 3, 8, 8), 1.0) is None


# ---------------------------------------------------------------- ONNX Runtime GPU providers


def test_fp32_asks_for_the_cuda_provider_alone_with_tf32_off(tmp_path):
    options = get_backend("onnxruntime_cuda").make_options({})
    providers = ort_cuda.provider_options(
        "fp32", options, tmp_path, {"input": [3, 8, 8]}, dynamic=True
    )
    # the CUDA provider's use_tf32 defaults to on: "fp32" would be TF32
    assert providers == [("CUDAExecutionProvider", {"device_id": 0, "use_tf32": 0})]


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_reduced_precisions_go_through_tensorrt_with_its_cache_in_the_given_folder(
    precision, tmp_path
):
    options = get_backend("onnxruntime_cuda").make_options({"profile_max_batch": 16})
    ((provider, trt),) = ort_cuda.provider_options(
        precision, options, tmp_path, {"input": [3, 8, 8]}, dynamic=True
    )
    assert provider == "TensorrtExecutionProvider"
    assert trt["trt_fp16_enable"] is (precision == "fp16")
    assert trt["trt_int8_enable"] is (precision == "int8")
    assert trt["trt_engine_cache_path"] == str(tmp_path)
    assert trt["trt_profile_max_shapes"] == "input:16x3x8x8"
    assert trt["trt_profile_min_shapes"] == "input:1x3x8x8"
    static = ort_cuda.provider_options(
        precision, options, tmp_path, {"input": [3, 8, 8]}, dynamic=False
    )
    assert not any(key.startswith("trt_profile") for key in static[0][1])


def test_a_session_that_fell_back_to_the_cpu_is_refused():
    with pytest.raises(ort_cuda.ProviderFallback, match="would run on the CPU") as error:
        ort_cuda.check_providers("CUDAExecutionProvider", ["CPUExecutionProvider"])
    assert "CPUExecutionProvider" in str(error.value)
    with pytest.raises(ort_cuda.ProviderFallback):
        # TensorRT failed to load, CUDA took over: still not what was asked for
        ort_cuda.check_providers(
            "TensorrtExecutionProvider", ["CUDAExecutionProvider", "CPUExecutionProvider"]
        )
    ort_cuda.check_providers(
        "TensorrtExecutionProvider", ["TensorrtExecutionProvider", "CPUExecutionProvider"]
    )


def test_the_cpu_build_of_onnxruntime_does_not_make_the_gpu_backend_available(monkeypatch):
    backend = get_backend("onnxruntime_cuda")
    monkeypatch.setattr(ort_cuda, "installed_version", lambda name: None)
    ok, reason = backend.availability()
    if importlib.util.find_spec("onnxruntime") is not None:
        assert not ok and reason.startswith("onnxruntime-gpu not installed")
    monkeypatch.setattr(ort_cuda, "installed_version", lambda name: "1.31.1")
    ok, _ = backend.availability()
    assert ok is all(importlib.util.find_spec(p) for p in backend.packages)


# ---------------------------------------------------------------- plan and skip reasons


def _settings(precisions=("fp32", "fp16", "bf16", "int8")):
    return settings(
        backends=GPU_BACKENDS,
        precisions=precisions,
        shapes=("dynamic",),
        batch_sizes=(1,),
    )


def test_without_a_gpu_every_gpu_combination_is_skipped_for_that_reason():
    rows = plan(_settings(), HostFacts(cpu_flags=frozenset(), has_gpu=False))
    assert rows and {(r.planned, r.reason) for r in rows} == {(False, NO_GPU_REASON)}


def test_with_a_gpu_each_combination_says_precisely_why_it_is_skipped(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda n, *a: None if n == "tensorrt" else real_find_spec(n, *a),
    )
    monkeypatch.setattr(ort_cuda, "installed_version", lambda name: None)
    turing = HostFacts(cpu_flags=frozenset(), has_gpu=True, gpu_compute_capability=(7, 5))
    reasons = {(r.backend, r.precision): r.reason for r in plan(_settings(), turing)}
    assert reasons[("pytorch_cuda", "fp32")] == ""
    assert reasons[("pytorch_cuda", "fp16")] == ""
    assert "too old for native bf16 (needs 8.0" in reasons[("pytorch_cuda", "bf16")]
    assert reasons[("pytorch_cuda", "int8")] == "pytorch_cuda does not offer int8"
    assert all(
        reasons[("onnxruntime_cuda", p)].startswith("onnxruntime-gpu not installed")
        for p in ("fp32", "fp16", "int8")
    )
    assert reasons[("tensorrt", "fp16")].startswith("tensorrt not installed")
    hopper = HostFacts(cpu_flags=frozenset(), has_gpu=True, gpu_compute_capability=(9, 0))
    assert {
        r.reason for r in plan(_settings(("bf16",)), hopper) if r.backend == "pytorch_cuda"
    } == {""}


# ---------------------------------------------------------------- no silent CPU run


@pytest.mark.skipif(
    importlib.util.find_spec("torch") is None or gpu_present("auto"), reason="needs torch, no GPU"
)
def test_a_gpu_runner_on_a_host_without_cuda_refuses_to_load(tmp_path):

    fetch(model_spec(source="torchvision", architecture="resnet18", input_size=32), tmp_path)
    backend = get_backend("pytorch_cuda")("fp32", 1, None)
    artifact = tmp_path / "artifact"
    backend.compile(tmp_path, artifact)
    with pytest.raises(BackendUnavailable, match="no CUDA device visible to this job") as error:
        backend.load(artifact)
    assert str(error.value) == NO_CUDA_IN_JOB


# ---------------------------------------------------------------- on a real GPU


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_pytorch_cuda_times_on_the_device_and_matches_the_cpu(tmp_path, precision):
    torch = pytest.importorskip("torch")
    from deploybench.models import load_model

    fetch(model_spec(source="torchvision", architecture="resnet18", input_size=32), tmp_path)
    model, _ = load_model(tmp_path)
    batch = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)
    with torch.inference_mode():
        expected = model(torch.from_numpy(batch)).numpy()
    backend = get_backend("pytorch_cuda")(precision, 1, None)
    artifact = tmp_path / "artifact"
    backend.compile(tmp_path, artifact)
    with backend.load(Path(artifact)) as runner:
        outputs = runner.run(feeds(batch))
        assert all(value.is_cuda for value in outputs.values())
        assert runner.last_device_ms() > 0
        host = runner.infer(feeds(batch))
        assert "fp32 (TF32 off)" in runner.execution_info["execution_precision"] or (
            precision != "fp32"
        )
    (got,) = host.values()
    tolerance = 1e-4 if precision == "fp32" else 5e-2
    assert np.abs(got - expected).max() <= tolerance * np.abs(expected).max()
