"""PyTorch eager on a CUDA GPU: the baseline every GPU speedup is measured against.

fp32 is real fp32: cuDNN and cuBLAS would otherwise run convolutions and matmuls in TF32 on
Ampere and newer, which is a different precision. fp16 and bf16 time a model converted once
(``.to(torch.float16)`` / ``.to(torch.bfloat16)``, the input cast once with the copy): that is
the latency of an fp16 model. Autocast, the option ``autocast: true``, keeps fp32 weights and
re-casts every one of them on every run, inside the timed events; its records say so.
``torch.compile`` is an option, off by default: eager is the reference a user's model starts
from.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from pathlib import Path

from ..feeds import named_outputs
from ..specs import output_names
from ..tasks import load_deployable, task_for
from .base import Runner
from .cuda import CudaRunner
from .pytorch import PyTorchBackend

REDUCED_DTYPES = {"fp16": "float16", "bf16": "bfloat16"}
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass(frozen=True)
class PyTorchCudaOptions:
    compile: bool = False
    compile_mode: str = "default"
    # fp16/bf16 by autocast over fp32 weights, instead of a model converted once
    autocast: bool = False

    def __post_init__(self) -> None:
        if self.compile_mode not in COMPILE_MODES:
            raise ValueError(f"compile_mode must be one of {', '.join(COMPILE_MODES)}")


def precision_context(torch, precision: str, autocast: bool):
    """What the forward runs under: CUDA autocast for fp16 and bf16 when asked, else nothing."""
    if autocast and precision in REDUCED_DTYPES:
        return functools.partial(torch.autocast, "cuda", getattr(torch, REDUCED_DTYPES[precision]))
    return contextlib.nullcontext


def execution_precision(precision: str, autocast: bool) -> str:
    if precision not in REDUCED_DTYPES:
        return "fp32 (TF32 off)"
    if autocast:
        return f"{precision} (autocast: fp32 weights re-cast on every run)"
    return f"{precision} (model converted once to {REDUCED_DTYPES[precision]})"


class PyTorchCudaRunner(CudaRunner):
    def __init__(
        self, model, precision: str, threads: int, options: PyTorchCudaOptions, names=output_names
    ) -> None:
        super().__init__()
        self._names = names  # the task's output names, for outputs the model does not name
        torch = self._torch
        torch.set_num_threads(threads)
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        converted = precision in REDUCED_DTYPES and not options.autocast
        self._input_dtype = (
            getattr(torch, REDUCED_DTYPES[precision]) if converted else torch.float32
        )
        # on the runner's stream: the conversion kernels are ordered before the first run
        with self.on_stream():
            model = model.to(self._device).eval()
            if converted:
                model = model.to(self._input_dtype)
        if options.compile:
            model = torch.compile(model, mode=options.compile_mode)
        self._model = model
        self._precision_context = precision_context(torch, precision, options.autocast)
        self.execution_info.update(
            {
                "threads": torch.get_num_threads(),
                "execution_precision": execution_precision(precision, options.autocast),
                "torch_compile": options.compile_mode if options.compile else None,
                "cuda": torch.version.cuda,
            }
        )

    def run(self, feeds):
        torch = self._torch
        inputs = self.device_inputs(feeds, self._input_dtype)
        # an eager model has no input names: it is called with the feeds in their order
        with self.on_stream(), torch.inference_mode(), self._precision_context(), self._timer:
            output = self._model(*inputs.values())
        return named_outputs(output, self._names)


class PyTorchCudaBackend(PyTorchBackend):
    name = "pytorch_cuda"
    device = "cuda"
    precisions = ("fp32", "fp16", "bf16")
    native_precisions = ("fp16", "bf16")
    distributions = ("torch", "torchvision")
    extra = "gpu"
    baseline = True
    Options = PyTorchCudaOptions

    def _load(self, artifact_dir: Path) -> Runner:
        model, spec = load_deployable(artifact_dir)
        names = functools.partial(task_for(spec).output_names, spec)
        return PyTorchCudaRunner(model, self.precision, self.threads, self.options, names)
