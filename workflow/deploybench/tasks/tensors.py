"""Any model described by its named inputs alone (``models.<name>.inputs``): seeded random data
in each input's range, in its dtype, with the sizes of its symbolic axes from ``axes``."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError
from ..feeds import Feeds
from ..specs import ModelSpec
from .base import InputSpec, Task

#: Evaluation data and calibration data draw from different streams of the model's seed.
EVALUATION_STREAM, CALIBRATION_STREAM = 0, 1


def input_specs(spec: ModelSpec) -> list[InputSpec]:
    specs = []
    for name, raw in (spec.inputs or {}).items():
        low, high = raw.get("range", (0.0, 1.0))
        shape = tuple(raw["shape"])
        specs.append(InputSpec(name, shape, raw.get("dtype", "float32"), low, high))
    return specs


class Tensors(Task):
    name = "tensors"

    def check(self, spec: ModelSpec) -> None:
        if not spec.inputs:
            raise ConfigError(
                f"models.{spec.name}: task tensors needs 'inputs', e.g. "
                "{input: {shape: [batch, 3, 224, 224], dtype: float32, range: [0, 1]}}"
            )
        for item in input_specs(spec):
            item.concrete_shape(1, spec.axes)  # every symbolic axis has a size

    def inputs(self, spec: ModelSpec) -> list[InputSpec]:
        return input_specs(spec)

    def _draw(self, spec: ModelSpec, size: int, stream: int, seed: int) -> Feeds:
        rng = np.random.default_rng([seed, stream])
        return {item.name: item.random(rng, size, spec.axes) for item in self.inputs(spec)}

    def evaluation_feeds(self, spec: ModelSpec) -> tuple[Feeds, dict[str, Any]]:
        return self._draw(spec, self.evaluation_size, EVALUATION_STREAM, spec.seed), {}

    def calibration_feeds(self, spec: ModelSpec, size: int, seed: int) -> Feeds:
        return self._draw(spec, size, CALIBRATION_STREAM, seed)
