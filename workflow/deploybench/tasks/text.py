"""A text encoder: token ids and an attention mask in (``batch`` × ``sequence``), a sentence
embedding out, counted in sequences. The sequence length is an axis of the experiment
(``axes: {sequence: N}``, 128 by default), like the batch size.

Evaluation and calibration data are seeded random token ids with random lengths (at least a
quarter of the sequence, the rest padding, masked out): nothing to download, and the padding
path is exercised as real batches exercise it."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError
from ..feeds import Feeds
from ..specs import ModelSpec
from ..text_encoder import encoder_shape
from .base import BATCH_AXIS, InputSpec, Task

SEQUENCE_AXIS = "sequence"
DEFAULT_SEQUENCE = 128
EVALUATION_STREAM, CALIBRATION_STREAM = 0, 1


def sequence_length(spec: ModelSpec) -> int:
    return int(spec.axes.get(SEQUENCE_AXIS, DEFAULT_SEQUENCE))


class TextEncoder(Task):
    name = "text-encoder"
    unit = "sequences"

    def _vocabulary(self, spec: ModelSpec) -> int:
        return encoder_shape(spec.architecture).vocabulary

    def check(self, spec: ModelSpec) -> None:
        if spec.source != "text_encoder":
            raise ConfigError(
                f"models.{spec.name}: task text-encoder needs source text_encoder (or describe "
                "the model's inputs with task: tensors)"
            )
        longest = encoder_shape(spec.architecture).max_sequence
        if not 1 <= sequence_length(spec) <= longest:
            raise ConfigError(
                f"models.{spec.name}: axes.sequence {sequence_length(spec)} is outside 1..{longest}"
            )

    def inputs(self, spec: ModelSpec) -> list[InputSpec]:
        top = self._vocabulary(spec) - 1
        return [
            InputSpec("input_ids", (BATCH_AXIS, SEQUENCE_AXIS), "int64", 0, top),
            InputSpec("attention_mask", (BATCH_AXIS, SEQUENCE_AXIS), "int64", 1, 1),
        ]

    def output_names(self, spec: ModelSpec, count: int) -> list[str]:
        # not "embedding": the exporter names the token-embedding lookup so, and the names clash
        return ["sentence_embedding", *(f"output_{i}" for i in range(1, count))]

    def _draw(self, spec: ModelSpec, size: int, seed: int, stream: int) -> Feeds:
        rng = np.random.default_rng([seed, stream])
        length = sequence_length(spec)
        ids = rng.integers(0, self._vocabulary(spec), (size, length), dtype=np.int64)
        valid = rng.integers(max(1, length // 4), length, size, endpoint=True)
        mask = (np.arange(length)[None, :] < valid[:, None]).astype(np.int64)
        return {"input_ids": ids * mask, "attention_mask": mask}

    def evaluation_feeds(self, spec: ModelSpec) -> tuple[Feeds, dict[str, Any]]:
        return self._draw(spec, self.evaluation_size, spec.seed, EVALUATION_STREAM), {}

    def calibration_feeds(self, spec: ModelSpec, size: int, seed: int) -> Feeds:
        return self._draw(spec, size, seed, CALIBRATION_STREAM)

    def example_feeds(self, spec: ModelSpec, batch: int) -> Feeds:
        return self._draw(spec, batch, 0, EVALUATION_STREAM)
