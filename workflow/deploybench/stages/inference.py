"""Feeding the evaluation set to a runner in the batches its graph accepts."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..backends import Runner
from ..feeds import batches, concatenated, feed_count


def run_all(
    runner: Runner, evaluation: Mapping[str, np.ndarray], batch: int | None
) -> dict[str, np.ndarray]:
    """Every evaluation sample through the runner, outputs on the host and keyed by name."""
    size = batch or feed_count(evaluation)
    chunks: list[dict[str, np.ndarray]] = []
    # a static graph needs a full batch: pad, then drop the padding
    for chunk, real in batches(evaluation, size, pad=True):
        outputs = runner.infer(chunk)
        chunks.append({name: value[:real] for name, value in outputs.items()})
    return concatenated(chunks)
