import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deploybench.backends import get_backend  # noqa: E402
from deploybench.hardware import cpu_flags, native_precision_support  # noqa: E402
from deploybench.parity import check  # noqa: E402
from deploybench.specs import Tolerance  # noqa: E402
from helpers import feeds, fetch, model_spec  # noqa: E402

SPEC = model_spec("tiny", source="torchvision", architecture="mobilenet_v3_small", input_size=32)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    fetch(SPEC, folder)
    return folder


def test_eager_fp32_is_deterministic_and_threads_are_set(model_dir, tmp_path):
    backend = get_backend("pytorch")("fp32", 1)
    backend.compile(model_dir / "model.pt", tmp_path)
    batch = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    with backend.load(tmp_path) as runner:
        first, second = runner.run(feeds(batch))["logits"], runner.run(feeds(batch))["logits"]
        assert runner.execution_info["threads"] == 1
    assert first.shape == (2, 1000)
    np.testing.assert_array_equal(first, second)


@pytest.mark.skipif(
    not native_precision_support("bf16", cpu_flags())[0], reason="CPU lacks native bf16"
)
def test_bf16_autocast_stays_close_to_fp32(model_dir, tmp_path):
    batch = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)
    outputs = {}
    for precision in ("fp32", "bf16"):
        backend = get_backend("pytorch")(precision, 1)
        backend.compile(model_dir / "model.pt", tmp_path / precision)
        with backend.load(tmp_path / precision) as runner:
            outputs[precision] = runner.run(feeds(batch))
    assert not np.array_equal(outputs["fp32"]["logits"], outputs["bf16"]["logits"])
    result = check(outputs["fp32"], outputs["bf16"], Tolerance(min_cosine=0.99))
    assert result.outputs[0].cosine > 0.99
