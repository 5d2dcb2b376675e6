"""A model that is an ONNX file (``source: onnx``): its family's data, fed under the graph's
own input names, and judged on the graph's own outputs.

The graph is read without its weights (names, dtypes, the batch axis), so this needs only
onnx: no PyTorch anywhere in an ONNX file's chain.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, InputFileError
from ..feeds import Feeds
from ..parity import TaskParity
from ..specs import ModelSpec
from .base import InputSpec, Task


@dataclasses.dataclass(frozen=True)
class GraphSignature:
    """What an ONNX file takes and gives, as far as feeding and judging it needs."""

    inputs: dict[str, str]  # name -> numpy dtype, in the graph's order
    #: name -> each axis' fixed size, None where symbolic
    shapes: dict[str, tuple[int | None, ...]]
    outputs: list[str]
    #: the fixed batch of its first input, or None when the batch axis is free
    batch: int | None


@functools.cache
def graph_signature(path: str) -> GraphSignature:
    import onnx

    from ..onnx_tools import graph_input_dtypes

    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as exc:
        raise InputFileError(
            f"ONNX file {path} cannot be read ({type(exc).__name__}): export it again"
        ) from exc
    initializers = {i.name for i in model.graph.initializer}
    inputs = {n: d for n, d in graph_input_dtypes(model).items() if n not in initializers}
    if not inputs:
        raise InputFileError(f"ONNX file {path} has no inputs: nothing to feed it")
    shapes = {
        i.name: tuple(
            d.dim_value if d.HasField("dim_value") else None for d in i.type.tensor_type.shape.dim
        )
        for i in model.graph.input
        if i.name in inputs
    }
    first = shapes[next(iter(inputs))]
    batch = first[0] if first else None
    return GraphSignature(inputs, shapes, [o.name for o in model.graph.output], batch)


class OnnxFile(Task):
    """The ``family`` task's samples, renamed to the inputs of the graph in ``spec.onnx``."""

    def __init__(self, family: Task):
        self.family = family
        self.name = family.name
        self.unit = family.unit
        self.class_scores = family.class_scores
        self.measure_keys = family.measure_keys
        self.evaluation_size = family.evaluation_size
        self.image_folders = family.image_folders
        self.deploys = "the ONNX file as it is"

    def signature(self, spec: ModelSpec) -> GraphSignature:
        return graph_signature(str(spec.onnx))

    def _names(self, spec: ModelSpec) -> dict[str, str]:
        """The family's input names -> the graph's, refused in one line where they cannot
        correspond."""
        graph = self.signature(spec)
        family = [i.name for i in self.family.inputs(spec)]
        where = f"models.{spec.name}: {spec.onnx}"
        if spec.inputs:  # described by the user (task tensors): by name
            missing = sorted(set(graph.inputs) - set(family))
            extra = sorted(set(family) - set(graph.inputs))
            if missing or extra:
                raise ConfigError(
                    f"{where} takes inputs {', '.join(graph.inputs)}; the config's inputs "
                    f"{'lack ' + ', '.join(missing) if missing else 'name ' + ', '.join(extra)}"
                )
            return {name: name for name in family}
        if len(graph.inputs) != 1 or len(family) != 1:
            raise ConfigError(
                f"{where} takes {len(graph.inputs)} inputs ({', '.join(graph.inputs)}): "
                "describe them with task: tensors and inputs: {name: {shape: [batch, ...], "
                "dtype: ..., range: [...]}}"
            )
        return {family[0]: next(iter(graph.inputs))}

    def _renamed(self, spec: ModelSpec, feeds: Feeds) -> Feeds:
        names = self._names(spec)
        return {names[name]: value for name, value in feeds.items()}

    def check(self, spec: ModelSpec) -> None:
        self.family.check(spec)
        names = self._names(spec)
        graph = self.signature(spec)
        by_name = {names[i.name]: i for i in self.family.inputs(spec)}
        wrong = [
            f"{name} is {dtype} in the graph, {by_name[name].dtype} in the data"
            for name, dtype in graph.inputs.items()
            if by_name[name].dtype != dtype
        ]
        for name, fixed in graph.shapes.items():
            data = by_name[name].concrete_shape(1, spec.axes)
            if len(fixed) != len(data) or any(
                f is not None and f != d for f, d in zip(fixed[1:], data[1:], strict=False)
            ):
                shown = ["?" if f is None else f for f in fixed]
                wrong.append(f"{name} is {shown} in the graph, {list(data)} in the data")
        if wrong:
            raise ConfigError(
                f"models.{spec.name}: {spec.onnx}: {'; '.join(wrong)}: set input_size, or "
                "describe its inputs with task: tensors"
            )

    def inputs(self, spec: ModelSpec) -> list[InputSpec]:
        names = self._names(spec)
        return [
            dataclasses.replace(item, name=names[item.name]) for item in self.family.inputs(spec)
        ]

    def output_names(self, spec: ModelSpec, count: int) -> list[str]:
        return self.signature(spec).outputs

    def evaluation_feeds(self, spec: ModelSpec) -> tuple[Feeds, dict[str, Any]]:
        feeds, facts = self.family.evaluation_feeds(spec)
        return self._renamed(spec, feeds), facts

    def calibration_feeds(self, spec: ModelSpec, size: int, seed: int) -> Feeds:
        return self._renamed(spec, self.family.calibration_feeds(spec, size, seed))

    def example_feeds(self, spec: ModelSpec, batch: int) -> Feeds:
        return self._renamed(spec, self.family.example_feeds(spec, batch))

    def parity_measures(
        self,
        spec: ModelSpec,
        references: Mapping[str, np.ndarray],
        candidates: Mapping[str, np.ndarray],
    ) -> TaskParity | None:
        return self.family.parity_measures(spec, references, candidates)


def fixed_batch(spec: ModelSpec) -> int | None:
    """The batch an ONNX file's graph fixes, or None (free, or not an ONNX file)."""
    if spec.onnx is None or not Path(spec.onnx).is_file():
        return None
    return graph_signature(str(spec.onnx)).batch
