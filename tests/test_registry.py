import importlib.util
import subprocess
import sys

import pytest
from deploybench.backends import backend_names, get_backend
from deploybench.errors import BackendUnavailable, ConfigError, InputFileError

HEAVY = ("torch", "onnxruntime", "openvino", "tvm", "tensorrt", "nncf", "torchvision")


def test_importing_library_and_every_backend_module_imports_no_heavy_package():
    code = (
        "import sys, deploybench, deploybench.config, deploybench.pipeline\n"
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


@pytest.mark.parametrize("name", backend_names())
def test_availability_follows_the_installed_packages(name, monkeypatch):
    backend = get_backend(name)
    real_find_spec = importlib.util.find_spec
    missing = set(backend.packages)

    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n in missing else real_find_spec(n, *a)
    )
    ok, reason = backend.availability()
    assert not ok
    assert "not installed" in reason

    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: object())
    assert backend.availability() == (True, "available")


def test_unavailable_backend_refuses_to_compile(monkeypatch, tmp_path):
    backend = get_backend("onnxruntime")
    monkeypatch.setattr(
        backend, "availability", classmethod(lambda cls: (False, "x not installed"))
    )
    with pytest.raises(BackendUnavailable, match="pip install"):
        backend().compile(tmp_path / "m.onnx", tmp_path / "out", "fp32", None, backend.Options())


@pytest.mark.parametrize("name", backend_names())
def test_options_reject_unknown_keys(name):
    with pytest.raises(ConfigError, match=f"backend_options.{name}: unknown option"):
        get_backend(name).make_options({"no_such_option": 1})


def test_options_are_validated_on_construction():
    with pytest.raises(ConfigError, match="graph_optimization"):
        get_backend("onnxruntime").make_options({"graph_optimization": "max"})
    with pytest.raises(ConfigError, match="performance_hint"):
        get_backend("openvino").make_options({"performance_hint": "FAST"})


def compile_onnxruntime(tmp_path, onnx_bytes: bytes, precision: str):
    backend = get_backend("onnxruntime")
    source = tmp_path / "model.onnx"
    source.write_bytes(onnx_bytes)
    return backend().compile(source, tmp_path / "out", precision, None, backend.Options())


def test_int8_without_calibration_is_an_error_not_a_fallback(tmp_path):
    with pytest.raises(ConfigError, match="calibration"):
        compile_onnxruntime(tmp_path, b"", "int8")


def test_corrupt_onnx_stops_compile_with_the_fix(tmp_path):
    with pytest.raises(InputFileError, match="corrupt.*delete it and rerun"):
        compile_onnxruntime(tmp_path, b"\x08\x07garbage", "fp32")
