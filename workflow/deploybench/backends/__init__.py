from .base import PRECISIONS, Backend, Runner
from .registry import backend_names, get_backend

__all__ = ["PRECISIONS", "Backend", "Runner", "backend_names", "get_backend"]
