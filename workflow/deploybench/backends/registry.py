"""Backend names → classes, imported only when asked for.

Importing this module (or a backend module) never imports torch, onnxruntime, openvino, tvm or
tensorrt: backends import their packages inside their methods, so a missing package disables one
backend with a reason and nothing else.

Besides the built-in backends, a backend can come from another package, registered through the
``deploybench.backends`` entry-point group (``name = "module:Class"``), or for one run through
the ``DEPLOYBENCH_BACKENDS`` environment variable (``name=module:Class,...``).
"""

from __future__ import annotations

from ..errors import ConfigError
from ..plugins import Registry
from .base import Backend

BUILTIN: dict[str, str] = {
    "pytorch": "deploybench.backends.pytorch:PyTorchBackend",
    "onnxruntime": "deploybench.backends.onnxruntime:OnnxRuntimeBackend",
    "openvino": "deploybench.backends.openvino:OpenVinoBackend",
    "tvm": "deploybench.backends.tvm:TvmBackend",
    "pytorch_cuda": "deploybench.backends.pytorch_cuda:PyTorchCudaBackend",
    "onnxruntime_cuda": "deploybench.backends.onnxruntime_cuda:OnnxRuntimeCudaBackend",
    "tensorrt": "deploybench.backends.tensorrt:TensorRtBackend",
}
ENTRY_POINT_GROUP = "deploybench.backends"
ENVIRONMENT_VARIABLE = "DEPLOYBENCH_BACKENDS"
BACKENDS = Registry("backend", BUILTIN, ENTRY_POINT_GROUP, ENVIRONMENT_VARIABLE, Backend)


def registered() -> dict[str, str]:
    """Every backend name and the dotted path of its class."""
    return BACKENDS.registered()


def backend_names() -> list[str]:
    return BACKENDS.names()


def get_backend(name: str) -> type[Backend]:
    return BACKENDS.get(name)


def device_of(name: str) -> str:
    """Where a backend's runner executes ("cpu" or "cuda"): what comparisons group by."""
    return get_backend(name).device


def _declared(flag: str, device: str, what: str) -> str:
    """The first registered backend on ``device`` whose class sets ``flag``."""
    for name in registered():
        backend = get_backend(name)
        if getattr(backend, flag) and backend.device == device:
            return name
    raise ConfigError(f"no {what} backend is registered for {device}")


def onnx_reference_backend(device: str = "cpu") -> str:
    """The baseline and parity reference on ``device`` of a model that is an ONNX file."""
    return _declared("onnx_reference", device, "ONNX-file reference")


def baseline_backend(device: str = "cpu") -> str:
    """The backend every speedup on ``device`` is measured against (and the parity reference)."""
    return _declared("baseline", device, "baseline")
