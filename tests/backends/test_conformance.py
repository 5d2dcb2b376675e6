"""Every registered backend, every precision it offers: compile, load, run, named outputs,
parity with PyTorch, thread count honoured, missing package → a skip with the install hint.

Parametrised over the registry: a new backend is tested here without an edit."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tomllib

import numpy as np
import onnx
import pytest
from deploybench.backends import backend_names, get_backend
from deploybench.errors import BackendUnavailable, ConfigError
from deploybench.gpu import compute_capability, gpu_facts, gpu_present
from deploybench.hardware import HostFacts, cpu_flags
from deploybench.parity import check
from deploybench.plan import NO_GPU_REASON
from deploybench.specs import Tolerance, output_names, static_batch
from deploybench.stages.inference import run_all
from helpers import REPO, feeds, fetch, model_spec, two_input_graph

HOST = HostFacts(
    cpu_flags=cpu_flags(),
    has_gpu=gpu_present("auto"),
    gpu_compute_capability=compute_capability(gpu_facts()),
)
TOLERANCES = {
    "fp32": Tolerance(max_rel=1e-4, min_cosine=0.99999),
    "bf16": Tolerance(max_rel=5e-2, min_cosine=0.99),
    "fp16": Tolerance(max_rel=5e-2, min_cosine=0.999),
    "int8": Tolerance(min_cosine=0.9),
}


def _marks(name: str):
    return [pytest.mark.gpu] if get_backend(name).device == "cuda" else []


CASES = [
    pytest.param(name, precision, marks=_marks(name))
    for name in backend_names()
    for precision in get_backend(name).precisions
]
NAMES = [pytest.param(name, marks=_marks(name)) for name in backend_names()]
SHAPES = {"static": "static_b2", "dynamic": "dynamic"}


def runnable(name: str, precision: str):
    backend = get_backend(name)
    if backend.device == "cuda" and not HOST.has_gpu:
        pytest.skip(NO_GPU_REASON)
    ok, why = backend.availability()
    if ok:
        ok, why = backend.precision_support(precision, HOST)
    if not ok:
        pytest.skip(why)
    return backend


@pytest.fixture(scope="module")
def eager_model(tmp_path_factory):
    """A torchvision checkpoint folder (what torch-source backends compile) and its outputs."""
    torch = pytest.importorskip("torch")
    from deploybench.models import load_model

    folder = tmp_path_factory.mktemp("eager")
    fetch(model_spec(source="torchvision", architecture="resnet18", input_size=32), folder)
    model, _ = load_model(folder)
    batch = np.random.default_rng(1).standard_normal((6, 3, 32, 32)).astype(np.float32)
    with torch.inference_mode():
        reference = model(torch.from_numpy(batch)).numpy()
    return folder, batch, reference


def compile_for_test(backend, source, out_dir, calibration=None):
    """``backend.compile``, after its tuning stage where it has one (untuned: fast)."""
    tuning = None
    if backend.needs_tuning:
        from deploybench.specs import TuningSettings

        tuning = out_dir.parent / f"{out_dir.name}-tuning"
        tuning.mkdir()
        untuned = TuningSettings(
            trials_per_task=0,
            max_minutes=None,
            seed_database=None,
            trials_per_round=1,
            population_size=8,
            genetic_iterations=1,
        )
        type(backend).tune([source], tuning, untuned, backend.threads)
    return backend.compile(source, out_dir, calibration, tuning=tuning)


def source_and_reference(backend, shape, tiny_onnx, tiny_inputs, tiny_reference, eager_model):
    """What this backend compiles, the evaluation batch, the reference and the output names."""
    if backend.source == "torch":
        if shape != "dynamic":
            pytest.skip("eager models have no static graph")
        folder, batch, reference = eager_model
        return folder, feeds(batch), {output_names(1)[0]: reference}
    path = tiny_onnx[shape]
    names = [o.name for o in onnx.load(str(path)).graph.output]
    return path, feeds(tiny_inputs["evaluation"]), {names[0]: tiny_reference}


@pytest.mark.parametrize(("name", "precision"), CASES)
@pytest.mark.parametrize("shape", ["static", "dynamic"])
def test_compile_load_run_named_outputs_and_parity(
    name, precision, shape, tiny_onnx, tiny_inputs, tiny_reference, eager_model, tmp_path
):
    backend_cls = runnable(name, precision)
    if shape not in backend_cls.shapes and backend_cls.source == "onnx":
        pytest.skip(f"{name} runs only {backend_cls.shapes} shapes")
    source, evaluation, reference = source_and_reference(
        backend_cls, shape, tiny_onnx, tiny_inputs, tiny_reference, eager_model
    )
    backend = backend_cls(precision, 1, None)
    calibration = (
        feeds(tiny_inputs["calibration"]) if precision in backend.needs_calibration else None
    )
    artifact = tmp_path / "artifact"
    facts = compile_for_test(backend, source, artifact, calibration)
    assert facts.artifact_bytes > 0 and facts.files
    with backend.load(artifact) as runner:
        raw = runner.run({name: value[:2] for name, value in evaluation.items()})
        outputs = run_all(runner, evaluation, static_batch(SHAPES[shape]))
    assert list(raw) == list(reference), "outputs must be keyed by the graph's names"
    assert outputs[next(iter(reference))].shape == next(iter(reference.values())).shape
    result = check(reference, outputs, TOLERANCES[precision])
    worst = result.outputs[0]
    tolerance = TOLERANCES[precision]
    assert tolerance.max_rel is None or worst.max_rel <= tolerance.max_rel, result.reason
    assert worst.cosine >= tolerance.min_cosine, result.reason


ONNX_CASES = [
    pytest.param(name, precision, marks=_marks(name))
    for name in backend_names()
    if get_backend(name).source == "onnx"
    for precision in get_backend(name).precisions
    if precision in ("fp32", "int8")
]


@pytest.mark.parametrize(("name", "precision"), ONNX_CASES)
def test_a_graph_with_two_named_inputs_is_fed_by_name(name, precision, tmp_path):
    backend_cls = runnable(name, precision)
    shape = "dynamic" if "dynamic" in backend_cls.shapes else "static"
    source = tmp_path / "two_inputs.onnx"
    expected = two_input_graph(source, None if shape == "dynamic" else 2)
    rng = np.random.default_rng(6)
    evaluation = {
        "x": rng.standard_normal((6, 4)).astype(np.float32),
        "mask": rng.uniform(0, 1, (6, 4)).astype(np.float32),
    }
    calibration = {
        "x": rng.standard_normal((16, 4)).astype(np.float32),
        "mask": rng.uniform(0, 1, (16, 4)).astype(np.float32),
    }
    backend = backend_cls(precision, 1, None)
    needs = precision in backend.needs_calibration
    compile_for_test(backend, source, tmp_path / "artifact", calibration if needs else None)
    with backend.load(tmp_path / "artifact") as runner:
        outputs = run_all(runner, evaluation, static_batch(SHAPES[shape]))
        with pytest.raises(ConfigError, match="do not match"):
            runner.run({"x": evaluation["x"][:2]})  # an input missing: refused, by name
    assert list(outputs) == ["out"]
    right = check({"out": expected(evaluation)}, outputs, TOLERANCES[precision]).outputs[0]
    swapped = {"x": evaluation["mask"], "mask": evaluation["x"]}
    wrong = check({"out": expected(swapped)}, outputs, TOLERANCES[precision]).outputs[0]
    # int8 on a 4-wide MatMul is coarse (OpenVINO's NNCF: cosine ~0.83 here): what this pins
    # is the wiring, each input fed by its name, far closer to the right answer than the swap
    assert right.cosine >= (0.8 if precision == "int8" else 0.99999), right
    assert wrong.cosine < right.cosine - 0.2, (right, wrong)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("threads", [1, 2])
def test_the_thread_count_reaches_the_library(
    name, threads, tiny_onnx, tiny_inputs, eager_model, tmp_path
):
    backend_cls = runnable(name, "fp32")
    if not backend_cls.host_threads:
        pytest.skip(f"{name} runs no host thread pool")
    if backend_cls.source == "torch":
        source = eager_model[0]
    else:
        source = tiny_onnx["dynamic" if "dynamic" in backend_cls.shapes else "static"]
    backend = backend_cls("fp32", threads, None)
    artifact = tmp_path / "artifact"
    compile_for_test(backend, source, artifact)
    # loaded in a fresh process, as every runner is (a library may size its thread pool once
    # per process); read back from the library, not echoed from our argument
    probe = (
        "from pathlib import Path; from deploybench.backends import get_backend; "
        f"runner = get_backend({name!r})('fp32', {threads}, None).load(Path({str(artifact)!r})); "
        "print('THREADS', runner.execution_info['threads'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300
    )
    reported = [line for line in result.stdout.splitlines() if line.startswith("THREADS ")]
    assert reported, result.stderr[-2000:]
    assert reported[-1] == f"THREADS {threads}"


@pytest.mark.parametrize("name", backend_names())
def test_a_missing_package_disables_the_backend_with_its_install_hint(name, monkeypatch):
    backend = get_backend(name)
    real_find_spec = importlib.util.find_spec
    absent = backend.packages[0]
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == absent else real_find_spec(n, *a)
    )
    ok, reason = backend.availability()
    assert not ok
    assert f"{absent} not installed" in reason
    assert f"pip install 'deploybench[{backend.extra}]'" in reason


@pytest.mark.parametrize("name", backend_names())
def test_the_install_hint_names_an_extra_that_installs_the_backend(name):
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    backend = get_backend(name)
    assert backend.extra in extras, f"no [{backend.extra}] extra in pyproject.toml"
    listed = " ".join(extras[backend.extra])
    for distribution in backend.distributions:
        assert distribution in listed, f"[{backend.extra}] does not install {distribution}"
    env = (REPO / "envs" / f"{backend.extra}.yaml").read_text()
    assert f"[{backend.extra}]" in env, f"envs/{backend.extra}.yaml does not install it"


@pytest.mark.parametrize("name", backend_names())
def test_every_precision_it_declares_is_a_known_one_and_support_has_a_reason(name):
    backend = get_backend(name)
    for precision in ("fp32", "fp16", "bf16", "int8"):
        ok, reason = backend.precision_support(precision, HostFacts(frozenset(), False))
        assert reason
        if precision in backend.declined_precisions:
            assert not ok and reason == backend.declined_precisions[precision]
        elif precision not in backend.precisions:
            assert not ok and f"does not offer {precision}" in reason
        if precision in backend.native_precisions and backend.device == "cpu":
            assert not ok and "lacks native" in reason
        if precision in backend.native_precisions and backend.device == "cuda":
            # a submit host that cannot see the GPU plans it; an old GPU refuses it
            if backend._missing_package(backend.precision_packages.get(precision, ())) is None:
                assert ok
            old_gpu = HostFacts(frozenset(), True, gpu_compute_capability=(5, 0))
            old_ok, old_reason = backend.precision_support(precision, old_gpu)
            assert not old_ok and "too old" in old_reason


def test_native_precisions_follow_the_cpu_flags():
    with_bf16 = HostFacts(frozenset({"avx512_bf16"}), False)
    without = HostFacts(frozenset({"avx2"}), False)
    for name in backend_names():
        backend = get_backend(name)
        if "bf16" in backend.native_precisions and backend.device == "cpu":
            if backend._missing_package(backend.precision_packages.get("bf16", ())) is None:
                assert backend.precision_support("bf16", with_bf16)[0]
            assert not backend.precision_support("bf16", without)[0]


def test_a_graph_fed_a_dtype_the_backend_lacks_is_refused_at_compile_naming_the_inputs(
    tmp_path, monkeypatch
):
    """What the plan cannot know (a part's inputs are captured after the DAG is built), the
    compile step checks against the graph itself, before the backend's own work."""
    backend_cls = runnable("onnxruntime", "fp32")
    monkeypatch.setattr(backend_cls, "input_dtypes", frozenset({"int64"}))
    source = tmp_path / "two_inputs.onnx"
    two_input_graph(source, None)
    with pytest.raises(BackendUnavailable) as refused:
        backend_cls("fp32", 1, None).compile(source, tmp_path / "artifact")
    assert str(refused.value) == "onnxruntime takes no float32 inputs: mask (float32), x (float32)"
    assert not (tmp_path / "artifact").exists()
