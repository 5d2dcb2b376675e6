import subprocess
import sys

import pytest
from deploybench.backends import backend_names, baseline_backend, get_backend
from deploybench.backends.registry import ENVIRONMENT_VARIABLE
from deploybench.errors import BackendUnavailable, ConfigError, InputFileError

HEAVY = ("torch", "onnxruntime", "openvino", "tvm", "tensorrt", "nncf", "torchvision", "pandas")


def test_importing_library_and_every_backend_module_imports_no_heavy_package():
    code = (
        "import sys, pkgutil, importlib, deploybench\n"
        "for m in pkgutil.walk_packages(deploybench.__path__, 'deploybench.'):\n"
        "    importlib.import_module(m.name)\n"
        "from deploybench.backends import backend_names, get_backend\n"
        "for name in backend_names():\n"
        "    b = get_backend(name); b.availability(); b.version()\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_backend_names_the_choices():
    with pytest.raises(ConfigError, match="unknown backend 'tensorflow'.*onnxruntime"):
        get_backend("tensorflow")


def test_a_backend_registers_through_the_environment_alone(monkeypatch):
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "onnx_reference=toy_backend:OnnxReferenceBackend")
    assert "onnx_reference" in backend_names()
    assert get_backend("onnx_reference").name == "onnx_reference"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("nonsense", "is not name=module:Class"), ("x=deploybench.errors:ConfigError", "not a")],
)
def test_a_malformed_registration_is_one_clear_line(monkeypatch, value, expected):
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, value)
    with pytest.raises(ConfigError, match=expected):
        get_backend(value.partition("=")[0] if "=" in value else "x")


def test_the_baseline_comes_from_the_backend_classes():
    assert baseline_backend("cpu") == "pytorch"
    with pytest.raises(ConfigError, match="no baseline"):
        baseline_backend("tpu")


def test_unavailable_backend_refuses_to_compile(monkeypatch, tmp_path):
    backend = get_backend("onnxruntime")
    monkeypatch.setattr(
        backend, "availability", classmethod(lambda cls: (False, "x not installed"))
    )
    with pytest.raises(BackendUnavailable, match="x not installed"):
        backend("fp32", 1).compile(tmp_path / "m.onnx", tmp_path / "out")


@pytest.mark.parametrize("name", backend_names())
def test_options_reject_unknown_keys(name):
    with pytest.raises(ConfigError, match=f"backend_options.{name}: unknown option"):
        get_backend(name).make_options({"no_such_option": 1})


def test_options_are_validated_on_construction():
    with pytest.raises(ConfigError, match="graph_optimization"):
        get_backend("onnxruntime").make_options({"graph_optimization": "max"})
    with pytest.raises(ConfigError, match="performance_hint"):
        get_backend("openvino").make_options({"performance_hint": "FAST"})


def test_a_bound_backend_refuses_a_precision_it_does_not_offer_and_bad_threads():
    with pytest.raises(ConfigError, match="onnxruntime does not offer bf16"):
        get_backend("onnxruntime")("bf16", 1)
    with pytest.raises(ConfigError, match="threads must be >= 1"):
        get_backend("onnxruntime")("fp32", 0)


def compile_onnxruntime(tmp_path, onnx_bytes: bytes, precision: str):
    source = tmp_path / "model.onnx"
    source.write_bytes(onnx_bytes)
    return get_backend("onnxruntime")(precision, 1).compile(source, tmp_path / "out")


def test_int8_without_calibration_is_an_error_not_a_fallback(tmp_path):
    with pytest.raises(ConfigError, match="calibration"):
        compile_onnxruntime(tmp_path, b"", "int8")


def test_corrupt_onnx_stops_compile_with_the_fix(tmp_path):
    with pytest.raises(InputFileError, match="corrupt.*delete it and rerun"):
        compile_onnxruntime(tmp_path, b"\x08\x07garbage", "fp32")
