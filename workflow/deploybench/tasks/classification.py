"""Image classification: one image batch in (``input``, N×3×H×W), logits out, counted in images.

The images are the photographs scikit-image ships (:mod:`deploybench.inputs`), preprocessed as
the model was trained: what today's experiments have always used.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError
from ..feeds import Feeds
from ..specs import INPUT_NAME, ModelSpec, output_names
from .base import BATCH_AXIS, InputSpec, Task


class Classification(Task):
    name = "classification"
    unit = "images"
    class_scores = True
    image_folders = True

    def check(self, spec: ModelSpec) -> None:
        if spec.source == "text_encoder":
            raise ConfigError(f"models.{spec.name}: source text_encoder needs task: text-encoder")
        if spec.inputs:
            raise ConfigError(
                f"models.{spec.name}: task {self.name} takes one image input of "
                "input_size: drop 'inputs', or set task: tensors"
            )

    def inputs(self, spec: ModelSpec) -> list[InputSpec]:
        size = spec.input_size
        return [InputSpec(INPUT_NAME, (BATCH_AXIS, 3, size, size), "float32", -3.0, 3.0)]

    def output_names(self, spec: ModelSpec, count: int) -> list[str]:
        return output_names(count)

    def evaluation_feeds(self, spec: ModelSpec) -> tuple[Feeds, dict[str, Any]]:
        from ..inputs import LABELS, evaluation_images, labelled_evaluation

        if spec.evaluation_images is not None:
            images, names, labels = labelled_evaluation(spec)
            return {INPUT_NAME: images}, {"image_names": np.asarray(names), LABELS: labels}
        images, names = evaluation_images(spec)
        return {INPUT_NAME: images}, {"image_names": np.asarray(names)}

    def calibration_feeds(self, spec: ModelSpec, size: int, seed: int) -> Feeds:
        from ..inputs import calibration_images

        return {INPUT_NAME: calibration_images(spec, size, seed)}

    def example_feeds(self, spec: ModelSpec, batch: int) -> Feeds:
        size = spec.input_size
        return {INPUT_NAME: np.zeros((batch, 3, size, size), np.float32)}
