"""A throwaway task, registered from outside through the environment alone
(``DEPLOYBENCH_TASKS``): non-square frames in, counted in frames. It proves that a task is one
module plus one registry line, through every stage of the workflow (tests/test_workflow.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
from deploybench.specs import ModelSpec
from deploybench.tasks import InputSpec, Task

ENVIRONMENT = "toy_frames=toy_task:ToyFrames"


class ToyFrames(Task):
    name = "toy_frames"
    unit = "frames"

    def inputs(self, spec: ModelSpec) -> list[InputSpec]:
        return [InputSpec("frames", ("batch", 3, 24, 40), "float32", -1.0, 1.0)]

    def evaluation_feeds(self, spec: ModelSpec) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        (frames,) = self.inputs(spec)
        return {"frames": frames.random(np.random.default_rng(spec.seed), 6, spec.axes)}, {}

    def calibration_feeds(self, spec: ModelSpec, size: int, seed: int) -> dict[str, np.ndarray]:
        (frames,) = self.inputs(spec)
        return {"frames": frames.random(np.random.default_rng(seed + 1), size, spec.axes)}
