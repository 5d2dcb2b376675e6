"""The task protocol: what a model family's inputs and outputs are, and how to fill them.

A task owns a model's input spec (names, shapes with symbolic axes, dtypes, how to fill them),
the names its export gives inputs and outputs, and what the report counts its throughput in.
The rest of the workflow sees only feeds (``{input name: array}``) and named outputs.
"""

from __future__ import annotations

import dataclasses
import functools
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError
from ..feeds import Feeds
from ..parity import TaskParity
from ..specs import ModelSpec

#: The symbolic axis every input and output has first: the batch, an axis of the experiment.
BATCH_AXIS = "batch"
DTYPES = ("float32", "float16", "int64", "int32", "bool")
#: Tolerance keys every task's outputs are judged by, and those only class scores are.
RAW_TOLERANCE_KEYS = ("max_rel", "min_cosine")
TOP_K_KEYS = ("min_top1", "min_top5")


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """One named input: its shape (an int per fixed axis, a name per symbolic one), its dtype
    and the range seeded random data is drawn from (integers: ``low`` to ``high`` inclusive)."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str = "float32"
    low: float = 0.0
    high: float = 1.0

    def __post_init__(self) -> None:
        where = f"input {self.name!r}"
        if not self.shape or self.shape[0] != BATCH_AXIS:
            raise ConfigError(f"{where}: its shape must start with the {BATCH_AXIS!r} axis")
        if self.dtype not in DTYPES:
            raise ConfigError(f"{where}: dtype {self.dtype!r} is not one of {', '.join(DTYPES)}")
        if not self.low <= self.high:
            raise ConfigError(f"{where}: range [{self.low}, {self.high}] is empty")
        for axis in self.shape:
            if isinstance(axis, int) and axis < 1:
                raise ConfigError(f"{where}: axis size {axis} must be >= 1")

    def symbolic_axes(self) -> dict[int, str]:
        return {i: axis for i, axis in enumerate(self.shape) if isinstance(axis, str)}

    def concrete_shape(self, batch: int, axes: Mapping[str, int]) -> tuple[int, ...]:
        sizes = {**axes, BATCH_AXIS: batch}
        missing = sorted({a for a in self.symbolic_axes().values() if a not in sizes})
        if missing:
            raise ConfigError(
                f"input {self.name!r}: give the size of axis {', '.join(missing)} "
                f"(models.<name>.axes: {{{missing[0]}: N}})"
            )
        return tuple(sizes[a] if isinstance(a, str) else a for a in self.shape)

    def random(self, rng: np.random.Generator, batch: int, axes: Mapping[str, int]) -> np.ndarray:
        shape = self.concrete_shape(batch, axes)
        if self.dtype == "bool":
            return rng.random(shape) < 0.5
        if self.dtype.startswith("int"):
            return rng.integers(int(self.low), int(self.high), shape, endpoint=True).astype(
                self.dtype
            )
        return rng.uniform(self.low, self.high, shape).astype(self.dtype)


class Task(ABC):
    """A model family. Subclasses set ``name`` and ``unit`` and implement the abstract methods;
    everything else has a default that suits most families."""

    name: ClassVar[str]
    #: What one sample is, for throughput in the report ("images" → images/s).
    unit: ClassVar[str] = "samples"
    #: How many evaluation samples :meth:`evaluation_feeds` makes by default.
    evaluation_size: ClassVar[int] = 16
    #: Whether the outputs are class scores: only those get parity's top-k checks (an
    #: embedding's or a mask's top "classes" mean nothing).
    class_scores: ClassVar[bool] = False
    #: What of the model is exported, compiled and timed (the report says it per family).
    deploys: ClassVar[str] = "the whole model"
    #: The tolerance keys its :meth:`parity_measures` are judged by (``min_miou``, ...).
    measure_keys: ClassVar[tuple[str, ...]] = ()
    #: Whether its data can come from the user's image folders (``calibration_images``).
    image_folders: ClassVar[bool] = False

    def tolerance(self, precision_tolerance: Mapping[str, Any]) -> dict[str, Any]:
        """The keys of one precision's tolerance this task's parity reads, unset ones left out:
        a parity job is handed only these, so changing another task's keys reruns nothing."""
        keys = (*RAW_TOLERANCE_KEYS, *(TOP_K_KEYS if self.class_scores else ()), *self.measure_keys)
        return {k: precision_tolerance[k] for k in keys if precision_tolerance.get(k) is not None}

    def deployable(self, model, spec: ModelSpec):
        """The module that is exported, compiled and timed, and whose outputs are judged: the
        whole model by default; a family whose post-processing cannot be a graph (a detector's
        NMS) deploys the part before it and does the rest in :meth:`parity_measures`."""
        return model

    def deployed(self, model, spec: ModelSpec) -> tuple[Any, Feeds]:
        """The deployed module and an example of its feeds at batch 1 (FLOPs are counted on
        it)."""
        return self.deployable(model, spec), self.example_feeds(spec, 1)

    def call_whole(self, model, spec: ModelSpec, feeds: Feeds):
        """Run the whole model on feeds of this task, as it is called in production: what a
        deployed part's inputs are captured from (``module:``)."""
        import torch

        return model(*(torch.from_numpy(value) for value in feeds.values()))

    def parity_measures(
        self,
        spec: ModelSpec,
        references: Mapping[str, np.ndarray],
        candidates: Mapping[str, np.ndarray],
    ) -> TaskParity | None:
        """Agreement after the task's own post-processing (mIoU of masks, matched boxes), each
        judged by the tolerance key ``min_<name>`` or ``max_<name>``; ``None``: the raw-output
        checks say all there is (the default)."""
        return None

    def check(self, spec: ModelSpec) -> None:
        """Refuse a spec this task cannot serve (one line, naming the fix); when the DAG is
        built. The default accepts any spec whose inputs can be listed."""
        self.inputs(spec)

    @abstractmethod
    def inputs(self, spec: ModelSpec) -> list[InputSpec]:
        """The model's named inputs, in the order the model is called with them."""

    def output_names(self, spec: ModelSpec, count: int) -> list[str]:
        """Names for the model's ``count`` outputs, in order, as the export gives them."""
        return [f"output_{i}" for i in range(count)]

    @abstractmethod
    def evaluation_feeds(self, spec: ModelSpec) -> tuple[Feeds, dict[str, Any]]:
        """What every backend is timed and judged on, and facts to keep beside it."""

    @abstractmethod
    def calibration_feeds(self, spec: ModelSpec, size: int, seed: int) -> Feeds:
        """``size`` samples for int8 calibration, seeded, distinct from the evaluation set."""

    def example_feeds(self, spec: ModelSpec, batch: int) -> Feeds:
        """Feeds of the right names, shapes and dtypes for tracing an export or counting FLOPs."""
        rng = np.random.default_rng(0)
        return {i.name: i.random(rng, batch, spec.axes) for i in self.inputs(spec)}

    def export_onnx(
        self,
        model,
        spec: ModelSpec,
        out_path,
        batch: int | None,
        exporter: str = "dynamo",
        opset: int = 20,
    ) -> dict[str, Any]:
        """Export what this task deploys of ``model`` (the whole model) with its input and
        output names; ``batch=None`` leaves the batch axis (and every other symbolic axis of
        the inputs) free."""
        from ..onnx_tools import export_onnx

        return export_onnx(
            self.deployable(model, spec),
            # torch.export specialises a dimension of size 1, so a free batch is traced at 2
            self.example_feeds(spec, batch or 2),
            functools.partial(self.output_names, spec),
            {item.name: item.symbolic_axes() for item in self.inputs(spec)},
            out_path,
            batch,
            exporter,
            opset,
        )
