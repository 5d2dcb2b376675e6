"""The plan: every model × backend × precision × shape × batch, planned or skipped with a reason.

Decided once, when the DAG is built, from the settings, the backends' declared capabilities and
availability, and the facts of the host that builds the DAG.
"""

from __future__ import annotations

from dataclasses import dataclass

from .backends.registry import get_backend
from .hardware import HostFacts
from .records import SkipRecord
from .settings import Settings
from .specs import ConfigKey, batches_for, shape_kind, shape_names

NO_GPU_REASON = "no CUDA device on the host that built the DAG (gpu: true plans for a cluster)"


@dataclass(frozen=True)
class Combination:
    model: str
    backend: str
    precision: str
    shape: str  # "dynamic" or "static_b<N>"
    batch: int
    planned: bool
    reason: str = ""

    @property
    def key(self) -> ConfigKey:
        return ConfigKey(self.model, self.backend, self.precision, self.shape)

    def skip_record(self) -> SkipRecord:
        return SkipRecord.skipped(self.key, self.reason, batch=self.batch)


def _why_not(backend_name: str, precision: str, host: HostFacts) -> str:
    """Why this backend × precision cannot run here; empty when it can."""
    backend = get_backend(backend_name)
    if backend.device == "cuda" and not host.has_gpu:
        return NO_GPU_REASON
    available, why_not = backend.availability()
    if not available:
        return why_not
    supported, why_unsupported = backend.precision_support(precision, host)
    if not supported:
        return why_unsupported
    return ""


def _shape_reason(backend) -> str:
    """Why a graph shape the backend does not take is skipped."""
    return backend.shape_reason or f"{backend.name} runs only {'/'.join(backend.shapes)} shapes"


def plan(settings: Settings, host: HostFacts) -> list[Combination]:
    rows: list[Combination] = []
    shapes = shape_names(settings.shapes, settings.batch_sizes)
    for backend_name in settings.backends:
        backend = get_backend(backend_name)
        # `shapes` describes ONNX graphs; an eager model takes any batch, always.
        offered = shapes if backend.source == "onnx" else ["dynamic"]
        for precision in settings.precisions:
            reason = _why_not(backend_name, precision, host)
            for model in settings.models:
                # Shapes the backend does not take still show up, as skipped with its reason.
                for shape in offered:
                    taken = backend.source != "onnx" or shape_kind(shape) in backend.shapes
                    why = reason or ("" if taken else _shape_reason(backend))
                    for batch in batches_for(shape, settings.batch_sizes):
                        rows.append(
                            Combination(model, backend_name, precision, shape, batch, not why, why)
                        )
    return rows
