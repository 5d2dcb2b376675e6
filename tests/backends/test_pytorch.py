import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deploybench.backends import get_backend  # noqa: E402
from deploybench.config import ModelSpec  # noqa: E402
from deploybench.hardware import supports_bf16  # noqa: E402
from deploybench.models import fetch_model  # noqa: E402
from deploybench.parity import Tolerance, check  # noqa: E402

SPEC = ModelSpec(
    name="tiny", source="torchvision", architecture="mobilenet_v3_small", input_size=32
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    fetch_model(SPEC, folder)
    return folder


def test_eager_fp32_is_deterministic_and_threads_are_set(model_dir, tmp_path):
    backend_cls = get_backend("pytorch")
    backend = backend_cls()
    backend.compile(model_dir / "model.pt", tmp_path, "fp32", None, backend_cls.Options())
    batch = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    with backend.load(tmp_path, "fp32", threads=1, options=backend_cls.Options()) as runner:
        first, second = runner.run(batch)[0], runner.run(batch)[0]
        assert runner.execution_info["threads"] == 1
    assert first.shape == (2, 1000)
    np.testing.assert_array_equal(first, second)


@pytest.mark.skipif(not supports_bf16(), reason="CPU lacks native bf16")
def test_bf16_autocast_stays_close_to_fp32(model_dir, tmp_path):
    backend_cls = get_backend("pytorch")
    batch = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)
    outputs = {}
    for precision in ("fp32", "bf16"):
        backend_cls().compile(model_dir / "model.pt", tmp_path / precision, precision, None, None)
        with backend_cls().load(tmp_path / precision, precision, 1, None) as runner:
            outputs[precision] = runner.run(batch)[0]
    assert not np.array_equal(outputs["fp32"], outputs["bf16"])  # it really ran in bf16
    result = check([outputs["fp32"]], [outputs["bf16"]], Tolerance(min_cosine=0.99))
    assert result.outputs[0].cosine > 0.99
