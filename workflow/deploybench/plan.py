"""The plan: every model × backend × precision × shape × batch, planned or skipped with a reason.

Decided once, when the DAG is built, from the settings, the backends' declared capabilities and
availability, and the facts of the host that builds the DAG. With ``gpu: true`` the GPU jobs run
on other hosts (a cluster's GPU nodes) in the GPU environment, so a GPU backend's packages are
judged as there, not by what the planning host has installed.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .backends.base import Backend
from .backends.registry import baseline_backend, device_of, get_backend, onnx_reference_backend
from .hardware import HostFacts
from .records import SkipRecord
from .settings import Settings
from .specs import (
    ConfigKey,
    ModelSpec,
    batches_for,
    names_configuration,
    shape_kind,
    shape_names,
    static_batch,
)
from .tasks import task_for
from .tasks.onnx_file import fixed_batch

NO_GPU_REASON = "no CUDA device on the host that built the DAG (gpu: true plans for a cluster)"
#: The pip extra that makes the GPU environment (envs/gpu.yaml), where the GPU jobs run.
GPU_EXTRA = "gpu"


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


def plans_for_other_hosts(settings: Settings) -> bool:
    """``gpu: true``: the GPU jobs run elsewhere (a login node plans for GPU nodes)."""
    return settings.gpu is True or settings.gpu == "true"


@functools.cache
def _in_the_gpu_environment(backend: type[Backend]) -> type[Backend]:
    """The backend as judged inside the GPU environment, which installs all it imports
    (tests/test_gpu_plan.py checks the [gpu] extra): a login node cannot hold onnxruntime-gpu
    beside the CPU onnxruntime, and need not hold TensorRT. Where a package is missing there
    after all, the job fails with the install hint (``compile`` checks availability), and the
    report shows that failure."""
    judged = (True, f"judged as in the [{GPU_EXTRA}] environment, where its jobs run")
    return type(
        backend.__name__,
        (backend,),
        {
            "availability": classmethod(lambda cls: judged),
            "_missing_package": classmethod(lambda cls, packages: None),
        },
    )


def _why_not(backend_name: str, precision: str, host: HostFacts, elsewhere: bool) -> str:
    """Why this backend × precision cannot run where its jobs will; empty when it can."""
    backend = get_backend(backend_name)
    if backend.device == "cuda" and not host.has_gpu:
        return NO_GPU_REASON
    if elsewhere and backend.device == "cuda" and backend.extra == GPU_EXTRA:
        # the GPU's capability, declined and unoffered precisions still count; this host's
        # packages do not
        backend = _in_the_gpu_environment(backend)
    available, why_not = backend.availability()
    if not available:
        return why_not
    supported, why_unsupported = backend.precision_support(precision, host)
    if not supported:
        return why_unsupported
    return ""


def _input_dtypes(spec: ModelSpec) -> dict[str, str]:
    """The model's named input dtypes, as far as its task knows them when the DAG is built (a
    part's are captured later, and its compile step checks them)."""
    return {i.name: i.dtype for i in task_for(spec).inputs(spec)}


def _source_reason(spec: ModelSpec, backend: type[Backend]) -> str:
    if backend.source == "torch" and not spec.has_torch_model:
        return (
            f"{spec.onnx} is an ONNX file: there is no PyTorch model to run "
            "(speedups and parity are against ONNX Runtime fp32)"
        )
    return ""


def _fixed_batch_reason(spec: ModelSpec, fixed: int | None, shape: str) -> str:
    """An ONNX file whose graph fixes the batch runs at that batch only."""
    if fixed is None or static_batch(shape) == fixed:
        return ""
    return f"{spec.onnx} fixes the batch at {fixed}: export it with a free batch axis"


def _shape_reason(backend) -> str:
    """Why a graph shape the backend does not take is skipped."""
    return backend.shape_reason or f"{backend.name} runs only {'/'.join(backend.shapes)} shapes"


def plan(settings: Settings, host: HostFacts) -> list[Combination]:
    rows: list[Combination] = []
    elsewhere = plans_for_other_hosts(settings)
    shapes = shape_names(settings.shapes, settings.batch_sizes)
    # what each model's task and file say, read once (an ONNX file's graph header included)
    dtypes = {model: _input_dtypes(spec) for model, spec in settings.models.items()}
    fixed_batches = {model: fixed_batch(spec) for model, spec in settings.models.items()}
    for backend_name in settings.backends:
        backend = get_backend(backend_name)
        # `shapes` describes ONNX graphs; an eager model takes any batch, always.
        offered = shapes if backend.source == "onnx" else ["dynamic"]
        for precision in settings.precisions:
            reason = _why_not(backend_name, precision, host, elsewhere)
            for model, spec in settings.models.items():
                # an ONNX file has no eager model, whether or not torch is installed
                fed = _source_reason(spec, backend) or reason or backend.dtype_reason(dtypes[model])
                fixed = fixed_batches[model]
                # Shapes the backend does not take still show up, as skipped with its reason.
                for shape in offered:
                    taken = backend.source != "onnx" or shape_kind(shape) in backend.shapes
                    why = (
                        fed
                        or ("" if taken else _shape_reason(backend))
                        or _fixed_batch_reason(spec, fixed, shape)
                    )
                    for batch in batches_for(shape, settings.batch_sizes):
                        rows.append(
                            Combination(model, backend_name, precision, shape, batch, not why, why)
                        )
    return _selected(rows, settings) if settings.selects else rows


def selection_note(settings: Settings) -> str:
    """What the report says of a run that picked its configurations ("" for the cross
    product)."""
    if not settings.selects:
        return ""
    picked = (
        f"the {len(settings.configurations)} configuration pattern(s) under configurations"
        if settings.configurations is not None
        else "the cross product of backends, precisions, shapes and batch sizes"
    )
    left_out = f", less the {len(settings.exclude)} under exclude" if settings.exclude else ""
    return (
        f"This run measured {picked}{left_out}, as the config asks. Each comparison's baseline "
        "(eager fp32; for an ONNX file ONNX Runtime fp32) was added where the config did not "
        "name it, so that every speedup and parity verdict has its reference."
    )


def matches(pattern: Mapping[str, Any], row: Combination) -> bool:
    """Whether a row is one a ``configurations``/``exclude`` pattern names (``shape: static``
    names every static graph)."""
    values = {
        "model": row.model,
        "backend": row.backend,
        "precision": row.precision,
        "shape": shape_kind(row.shape),
        "batch": row.batch,
    }
    return all(values[key] == value for key, value in pattern.items())


#: The precision every baseline runs at.
BASELINE_PRECISION = "fp32"


def choose_baseline(keys: list[ConfigKey], device: str) -> str:
    """What every speedup is over: the device's eager fp32 ("pytorch fp32"); where that is not
    compared (a model that is an ONNX file has none), ONNX Runtime fp32 on the dynamic graph,
    else on the one static graph ("onnxruntime fp32 dynamic")."""
    eager = baseline_backend(device)
    if any(k.backend == eager for k in keys):
        return f"{eager} {BASELINE_PRECISION}"
    graph = onnx_reference_backend(device)
    shapes = sorted(
        (k.shape != "dynamic", k.shape)
        for k in keys
        if (k.backend, k.precision) == (graph, BASELINE_PRECISION)
    )
    return f"{graph} {BASELINE_PRECISION} {shapes[0][1] if shapes else 'dynamic'}"


def _selected(rows: list[Combination], settings: Settings) -> list[Combination]:
    """The rows the config's ``configurations`` name and its ``exclude`` does not; each
    comparison's baseline is kept whatever they say, so that speedups and parity exist."""
    chosen = [
        r
        for r in rows
        if (settings.configurations is None or any(matches(p, r) for p in settings.configurations))
        and not any(matches(p, r) for p in settings.exclude)
    ]
    # each comparison's baseline as the comparison itself will choose it, from what is planned
    groups: dict[tuple, list[Combination]] = {}
    for r in rows:
        if r.planned:
            groups.setdefault((r.model, r.batch, device_of(r.backend)), []).append(r)
    compared = {(r.model, r.batch, device_of(r.backend)) for r in chosen}
    baselines = {
        group: choose_baseline([r.key for r in members], group[2])
        for group, members in groups.items()
        if group in compared
    }
    kept = set(chosen)
    return [
        r
        for r in rows
        if r in kept
        or (
            r.planned
            and (base := baselines.get((r.model, r.batch, device_of(r.backend)))) is not None
            and names_configuration(base, r.backend, r.precision, r.shape)
        )
    ]
