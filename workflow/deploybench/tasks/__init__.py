"""Tasks (model families) as plug-ins: built in, from another package's ``deploybench.tasks``
entry points, or for one run from ``DEPLOYBENCH_TASKS`` (``name=module:Class,...``)."""

from __future__ import annotations

import functools

from ..parity import TaskParity
from ..plugins import Registry
from ..specs import ModelSpec
from .base import BATCH_AXIS, InputSpec, Task

BUILTIN = {
    "classification": "deploybench.tasks.classification:Classification",
    "tensors": "deploybench.tasks.tensors:Tensors",
    "text-encoder": "deploybench.tasks.text:TextEncoder",
    "segmentation": "deploybench.tasks.segmentation:Segmentation",
    "detection": "deploybench.tasks.detection:Detection",
}
ENVIRONMENT_VARIABLE = "DEPLOYBENCH_TASKS"
# the calibration set is drawn from seed inputs.seed: the statistics from another stream
STATISTICS_SEED_OFFSET = 7919
TASKS = Registry("task", BUILTIN, "deploybench.tasks", ENVIRONMENT_VARIABLE, Task)


def task_names() -> list[str]:
    return TASKS.names()


def get_task(name: str) -> Task:
    return TASKS.get(name)()


#: Samples the BatchNorm statistics of a recalibrated random-weights model are set from.
STATISTICS_SAMPLES = 32


def task_for(spec: ModelSpec, model_dir=None) -> Task:
    """The task a model is deployed under: its family's; with ``module:`` the part's (whose
    inputs are captured from the whole model saved in ``model_dir``); for an ONNX file, its
    family's fed under the graph's own input names."""
    family = get_task(spec.task)
    if spec.source == "onnx":
        from .onnx_file import OnnxFile

        return OnnxFile(family)
    if spec.module is None:
        return family
    from .parts import Part

    return Part(family, spec.module, model_dir)


def fetch_deployable(spec: ModelSpec, out_dir) -> dict:
    """Fetch the model (:func:`deploybench.models.fetch_model`) with what its task deploys and,
    where asked, BatchNorm statistics from the task's own data (a seeded stream apart from
    both the evaluation and the calibration sets)."""
    from ..models import fetch_model

    task = task_for(spec)
    statistics = (
        task.calibration_feeds(spec, STATISTICS_SAMPLES, spec.seed + STATISTICS_SEED_OFFSET)
        if spec.recalibrate_batchnorm
        else None
    )
    return fetch_model(spec, out_dir, functools.partial(task.deployed, spec=spec), statistics)


def load_deployable(model_dir):
    """The saved model's deployed part (its task's) in eval mode, and its spec."""
    from ..models import load_model

    model, spec = load_model(model_dir)
    return task_for(spec).deployable(model, spec).eval(), spec


__all__ = [
    "BATCH_AXIS",
    "InputSpec",
    "Task",
    "TaskParity",
    "fetch_deployable",
    "get_task",
    "load_deployable",
    "task_for",
    "task_names",
]
