"""Backend names → classes, imported only when asked for.

Importing this module (or a backend module) never imports torch, onnxruntime, openvino, tvm or
tensorrt: backends import their packages inside their methods, so a missing package disables one
backend with a reason and nothing else.

Besides the built-in backends, a backend can come from another package, registered through the
``deploybench.backends`` entry-point group (``name = "module:Class"``), or for one run through
the ``DEPLOYBENCH_BACKENDS`` environment variable (``name=module:Class,...``).
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import os

from ..errors import ConfigError
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


def _from_environment() -> dict[str, str]:
    found = {}
    for item in filter(
        None, (p.strip() for p in os.environ.get(ENVIRONMENT_VARIABLE, "").split(","))
    ):
        name, sep, target = item.partition("=")
        if not sep or ":" not in target:
            raise ConfigError(
                f"{ENVIRONMENT_VARIABLE}: {item!r} is not name=module:Class: fix the variable"
            )
        found[name.strip()] = target.strip()
    return found


@functools.cache
def _installed_plugins() -> dict[str, str]:
    return {ep.name: ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def registered() -> dict[str, str]:
    """Every backend name and the dotted path of its class."""
    return {**BUILTIN, **_installed_plugins(), **_from_environment()}


def backend_names() -> list[str]:
    return list(registered())


@functools.cache
def _load(target: str) -> type[Backend]:
    module_name, _, class_name = target.partition(":")
    backend = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(backend, type) and issubclass(backend, Backend)):
        raise ConfigError(f"{target} is not a deploybench Backend subclass")
    return backend


def get_backend(name: str) -> type[Backend]:
    backends = registered()
    try:
        target = backends[name]
    except KeyError:
        raise ConfigError(f"unknown backend {name!r}: choose from {', '.join(backends)}") from None
    return _load(target)


def device_of(name: str) -> str:
    """Where a backend's runner executes ("cpu" or "cuda"): what comparisons group by."""
    return get_backend(name).device


def baseline_backend(device: str = "cpu") -> str:
    """The backend every speedup on ``device`` is measured against (and the parity reference)."""
    for name in registered():
        backend = get_backend(name)
        if backend.baseline and backend.device == device:
            return name
    raise ConfigError(f"no baseline backend is registered for {device}")
