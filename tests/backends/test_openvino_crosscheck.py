import importlib.util

import pytest
from deploybench.backends import get_backend
from deploybench.backends.openvino import parse_benchmark_app

SAMPLE = """
[ INFO ] First inference took 5.94 ms
[ INFO ] Count:            2948 iterations
[ INFO ] Latency:
[ INFO ]    Median:        592.13 us
[ INFO ]    Average:       652.27 us
"""


def test_parse_benchmark_app_converts_units():
    parsed = parse_benchmark_app(SAMPLE)
    assert parsed == {"median_ms": pytest.approx(0.59213), "first_ms": 5.94, "iterations": 2948}
    assert parse_benchmark_app(SAMPLE.replace("592.13 us", "1.5 ms"))["median_ms"] == 1.5


def test_parse_benchmark_app_without_median_is_an_error():
    with pytest.raises(RuntimeError, match="no median.*bad input"):
        parse_benchmark_app("[ ERROR ] bad input\n")


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="openvino not installed")
@pytest.mark.parametrize("shape", ["static", "dynamic"])
def test_benchmark_app_times_our_ir_with_our_settings(tiny_onnx, tmp_path, shape):
    backend_cls = get_backend("openvino")
    backend = backend_cls()
    options = backend_cls.Options()
    backend.compile(tiny_onnx[shape], tmp_path, "fp32", None, options)
    result = backend.vendor_benchmark(tmp_path, "fp32", 1, (2, 3, 16, 16), 1, options)
    assert result["tool"] == "benchmark_app"
    assert result["median_ms"] > 0 and result["iterations"] > 0
    assert "-load_config" in result["command"] and "-data_shape [2,3,16,16]" in result["command"]
