"""A throwaway backend for the tests, registered through the registry mechanism alone
(``DEPLOYBENCH_BACKENDS=onnx_reference=toy_backend:OnnxReferenceBackend``): ONNX's own
reference evaluator, pure numpy. Nothing else in the product knows it exists."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from deploybench.backends import Backend, Runner

ENVIRONMENT = (
    "onnx_reference=toy_backend:OnnxReferenceBackend,onnx_scaled=toy_backend:ScaledOutputsBackend"
)
FAKE_GPU_ENVIRONMENT = "toy_cuda=toy_backend:FakeGpuBackend"


class OnnxReferenceRunner(Runner):
    def __init__(self, model_path: Path, threads: int) -> None:
        super().__init__()
        from onnx.reference import ReferenceEvaluator

        self._evaluator = ReferenceEvaluator(str(model_path))
        self._inputs = list(self._evaluator.input_names)
        self._outputs = list(self._evaluator.output_names)
        self.execution_info = {"threads": threads, "execution_precision": "fp32 (numpy)"}

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = self._evaluator.run(None, {name: feeds[name] for name in self._inputs})
        return dict(zip(self._outputs, results, strict=True))


class OnnxReferenceBackend(Backend):
    name = "onnx_reference"
    precisions = ("fp32",)
    packages = ("onnx",)
    distributions = ("onnx",)
    extra = "dev"

    def _compile(self, source: Path, out_dir: Path, calibration) -> dict:
        shutil.copyfile(source, out_dir / "model.onnx")
        return {"evaluator": "onnx.reference"}

    def _load(self, artifact_dir: Path) -> Runner:
        return OnnxReferenceRunner(artifact_dir / "model.onnx", self.threads)


class ScaledOutputsRunner(OnnxReferenceRunner):
    """Right graph, wrong numbers: every output 1.5x what it should be."""

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {name: value * 1.5 for name, value in super().run(feeds).items()}


class ScaledOutputsBackend(OnnxReferenceBackend):
    """A deliberately broken backend: its parity must fail, whatever the reference."""

    name = "onnx_scaled"

    def _load(self, artifact_dir: Path) -> Runner:
        return ScaledOutputsRunner(artifact_dir / "model.onnx", self.threads)


class FakeGpuBackend(OnnxReferenceBackend):
    """For the cluster tests: planned, routed and allocated as a GPU backend (device "cuda",
    so its jobs carry gpu=1), while its work runs in numpy: the GPU is faked at the device
    layer only, where the test cluster's GPU is a fake gres."""

    name = "toy_cuda"
    device = "cuda"
