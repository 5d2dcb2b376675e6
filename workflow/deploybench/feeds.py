"""Feeds: a model's named inputs for one batch, ``{input name: array}`` with the batch on axis 0.

Every runner takes feeds and returns named outputs; the evaluation and calibration sets are
feeds too, of many samples. The order of the names is the model's input order (what an eager
model is called with, positionally). In a ``.npz`` the names are kept apart from the arrays
(``feed_names``, then ``feed_0``, ``feed_1``, ...), so any input name survives the file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, InputFileError
from .io import load_npz, save_npz

Feeds = dict[str, np.ndarray]
NAMES_KEY = "feed_names"


def feed_count(feeds: Mapping[str, np.ndarray]) -> int:
    """The number of samples the feeds hold (their common first axis)."""
    if not feeds:
        raise ValueError("feeds need at least one named input")
    counts = {name: len(value) for name, value in feeds.items()}
    if len(set(counts.values())) != 1:
        raise ValueError(f"feeds disagree on the number of samples: {counts}")
    return next(iter(counts.values()))


def take(feeds: Mapping[str, np.ndarray], index: np.ndarray | slice) -> Feeds:
    """The same samples of every input, contiguous (what a runner is handed)."""
    return {name: np.ascontiguousarray(value[index]) for name, value in feeds.items()}


def cycled(feeds: Mapping[str, np.ndarray], batch: int) -> Feeds:
    """The first ``batch`` samples, cycled when there are fewer."""
    return take(feeds, np.arange(batch) % feed_count(feeds))


def batches(
    feeds: Mapping[str, np.ndarray], size: int, pad: bool = False
) -> Iterator[tuple[Feeds, int]]:
    """Consecutive batches of ``size`` samples with the number of real samples in each. With
    ``pad`` the last batch is filled up by repeating its last sample (a static graph takes
    only full batches); without it the last batch is shorter."""
    total = feed_count(feeds)
    for start in range(0, total, size):
        real = min(size, total - start)
        index = np.arange(start, start + size if pad else start + real)
        yield take(feeds, np.minimum(index, start + real - 1)), real


def concatenated(parts: list[Mapping[str, np.ndarray]]) -> Feeds:
    """Named arrays of several batches joined along the batch axis."""
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def save_feeds(path: str | Path, feeds: Mapping[str, np.ndarray], **extra: np.ndarray) -> None:
    feed_count(feeds)
    arrays = {f"feed_{i}": value for i, value in enumerate(feeds.values())}
    save_npz(path, **{NAMES_KEY: np.asarray(list(feeds)), **arrays, **extra})


def load_feeds(path: str | Path) -> Feeds:
    data = load_npz(path)
    if NAMES_KEY not in data:
        raise InputFileError(f"{path} holds no named inputs (an older format): delete it and rerun")
    return {str(name): data[f"feed_{i}"] for i, name in enumerate(data[NAMES_KEY])}


def require_names(feeds: Mapping[str, np.ndarray], names: list[str], model: str) -> None:
    """A one-line error naming both signatures where the feeds' names are not ``names`` (a
    graph's inputs). Cheap enough for every timed run: a comparison of key views, no sorting."""
    if feeds.keys() != set(names):
        raise ConfigError(
            f"the inputs ({', '.join(feeds)}) do not match {model}'s ({', '.join(names)}): "
            "name the inputs as the model does"
        )


def in_order(feeds: Mapping[str, np.ndarray], names: list[str], model: str = "the model") -> list:
    """The feeds' arrays in the order of ``names`` (for runtimes that take inputs by position)."""
    require_names(feeds, names, model)
    return [feeds[name] for name in names]


def first_shape(feeds: Mapping[str, np.ndarray]) -> tuple[int, ...]:
    """The first input's shape: what single-input vendor tools (trtexec, benchmark_app) take."""
    return tuple(next(iter(feeds.values())).shape)


def named_outputs(produced: Any, names: Callable[[int], list[str]]) -> dict[str, Any]:
    """A model's outputs keyed by name, the same for the eager runners and the export: a mapping
    keeps its own keys (torchvision's segmentation nets return ``{"out": ..., "aux": ...}``),
    a tuple or list is named in order by ``names(count)``, a single output by ``names(1)``."""
    if isinstance(produced, Mapping):
        return dict(produced)
    values = produced if isinstance(produced, (tuple, list)) else (produced,)
    return dict(zip(names(len(values)), values, strict=True))
