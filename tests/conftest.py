from __future__ import annotations

import numpy as np
import pytest
from deploybench.gpu import nvidia_smi_sees_gpu
from hypothesis import settings

# The same examples on every run and machine (a CI failure is reproducible), and no example
# database written into the checkout.
settings.register_profile("deploybench", derandomize=True, database=None)
settings.load_profile("deploybench")


# Per-test time limits (pytest-timeout), sized from the suite's measured durations (2026-12-02,
# a 2-core VM under load, docs/testing.md): every unit test takes under 60 s, so pyproject's
# default of 300 s; a workflow or cluster test (marked slow or cluster) took up to 560 s, its
# module's first test paying for a whole workflow run in a fixture, so 1800 s.
SLOW_TEST_SECONDS = 1800


def pytest_collection_modifyitems(config, items):
    for item in items:
        slow = "slow" in item.keywords or "cluster" in item.keywords
        if slow and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(SLOW_TEST_SECONDS))
    if nvidia_smi_sees_gpu():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU (nvidia-smi sees none)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_net():
    """A small CNN classifier (conv, BN, ReLU, pool, linear) whose outputs differ per input."""
    torch = pytest.importorskip("torch")
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),  # no global pooling: outputs must differ between inputs
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 10),
    )
    return model.eval()


@pytest.fixture(scope="session")
def tiny_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "evaluation": rng.standard_normal((6, 3, 16, 16)).astype(np.float32),
        "calibration": rng.standard_normal((8, 3, 16, 16)).astype(np.float32),
    }


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory, tiny_net) -> dict:
    """The tiny CNN exported twice: batch fixed at 2, and batch dynamic."""
    from helpers import export_classifier

    folder = tmp_path_factory.mktemp("onnx")
    paths = {}
    for name, batch in (("static", 2), ("dynamic", None)):
        paths[name] = folder / f"{name}.onnx"
        export_classifier(tiny_net, 16, paths[name], batch, "torchscript", 17)
    return paths


@pytest.fixture(scope="session")
def tiny_reference(tiny_inputs, tiny_net) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return tiny_net(torch.from_numpy(tiny_inputs["evaluation"])).numpy()
