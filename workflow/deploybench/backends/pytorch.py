"""PyTorch eager: the baseline every CPU speedup is measured against, and the parity reference."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..feeds import named_outputs
from ..specs import output_names
from ..tasks import load_deployable, task_for
from .base import Backend, Runner


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


class PyTorchRunner(Runner):
    def __init__(self, model, precision: str, threads: int, names=output_names) -> None:
        super().__init__()
        self._names = names  # the task's output names, for outputs the model does not name
        import torch

        torch.set_num_threads(threads)
        self._torch = torch
        self._model = model
        autocast = precision == "bf16"
        # fp32 enters no autocast context at all: nothing but the model inside the timed call
        self._precision_context = (
            functools.partial(torch.autocast, "cpu", torch.bfloat16)
            if autocast
            else contextlib.nullcontext
        )
        self.execution_info = {
            "threads": torch.get_num_threads(),
            "execution_precision": "bf16 (autocast)" if autocast else "fp32",
        }

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        # an eager model has no input names: it is called with the feeds in their order
        with torch.inference_mode(), self._precision_context():
            output = self._model(*(torch.from_numpy(value) for value in feeds.values()))
        return {
            name: value.float().numpy()
            for name, value in named_outputs(output, self._names).items()
        }


class PyTorchBackend(Backend):
    name = "pytorch"
    source = "torch"
    precisions = ("fp32", "bf16")
    native_precisions = ("bf16",)
    shapes = ("dynamic",)  # eager runs any batch; a static graph does not apply
    packages = ("torch", "torchvision")
    distributions = ("torch", "torchvision")
    extra = "pytorch"
    baseline = True

    def _compile(self, source: Path, out_dir: Path, calibration) -> dict:
        # Eager needs no build: the artifact is the checkpoint itself (hard-linked, not copied).
        from ..models import FACTS_FILE, WEIGHTS_FILE

        folder = source.parent if source.is_file() else source
        for name in (WEIGHTS_FILE, FACTS_FILE):
            _link_or_copy(folder / name, out_dir / name)
        return {"mode": "eager"}

    def _load(self, artifact_dir: Path) -> Runner:
        model, spec = load_deployable(artifact_dir)
        names = functools.partial(task_for(spec).output_names, spec)
        return PyTorchRunner(model, self.precision, self.threads, names)
