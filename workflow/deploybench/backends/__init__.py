from .base import Backend, CompileFacts, Runner
from .registry import backend_names, baseline_backend, get_backend, onnx_reference_backend

__all__ = [
    "Backend",
    "CompileFacts",
    "Runner",
    "backend_names",
    "baseline_backend",
    "get_backend",
    "onnx_reference_backend",
]
