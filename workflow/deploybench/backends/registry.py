"""Backend names → modules, imported only when asked for.

Importing this module (or a backend module) never imports torch, onnxruntime, openvino, tvm or
tensorrt: backends import their packages inside their methods, so a missing package disables one
backend with a reason and nothing else.
"""

from __future__ import annotations

import importlib

from ..errors import ConfigError
from .base import Backend

BACKENDS: dict[str, str] = {
    "pytorch": "deploybench.backends.pytorch:PyTorchBackend",
    "onnxruntime": "deploybench.backends.onnxruntime:OnnxRuntimeBackend",
    "openvino": "deploybench.backends.openvino:OpenVinoBackend",
}


def backend_names() -> list[str]:
    return list(BACKENDS)


def get_backend(name: str) -> type[Backend]:
    try:
        target = BACKENDS[name]
    except KeyError:
        raise ConfigError(f"unknown backend {name!r}: choose from {', '.join(BACKENDS)}") from None
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)
