"""Feeding evaluation images to a runner in the batches its graph accepts."""

from __future__ import annotations

import numpy as np

from ..backends import Runner


def make_batch(evaluation: np.ndarray, batch: int) -> np.ndarray:
    """The first ``batch`` evaluation images, cycled when there are fewer."""
    index = np.arange(batch) % len(evaluation)
    return np.ascontiguousarray(evaluation[index])


def run_all(runner: Runner, evaluation: np.ndarray, batch: int | None) -> dict[str, np.ndarray]:
    """Every evaluation image through the runner, outputs on the host and keyed by name."""
    size = batch or len(evaluation)
    chunks: list[dict[str, np.ndarray]] = []
    for start in range(0, len(evaluation), size):
        chunk = evaluation[start : start + size]
        real = len(chunk)
        if real < size:  # a static graph needs a full batch: pad, then drop the padding
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], size - real, axis=0)])
        outputs = runner.infer(np.ascontiguousarray(chunk))
        chunks.append({name: value[:real] for name, value in outputs.items()})
    return {name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]}
