"""Tasks (model families) as plug-ins: built in, from another package's ``deploybench.tasks``
entry points, or for one run from ``DEPLOYBENCH_TASKS`` (``name=module:Class,...``)."""

from __future__ import annotations

from ..plugins import Registry
from .base import BATCH_AXIS, InputSpec, Task

BUILTIN = {
    "classification": "deploybench.tasks.classification:Classification",
    "tensors": "deploybench.tasks.tensors:Tensors",
    "text-encoder": "deploybench.tasks.text:TextEncoder",
}
ENVIRONMENT_VARIABLE = "DEPLOYBENCH_TASKS"
TASKS = Registry("task", BUILTIN, "deploybench.tasks", ENVIRONMENT_VARIABLE, Task)


def task_names() -> list[str]:
    return TASKS.names()


def get_task(name: str) -> Task:
    return TASKS.get(name)()


__all__ = ["BATCH_AXIS", "InputSpec", "Task", "get_task", "task_names"]
