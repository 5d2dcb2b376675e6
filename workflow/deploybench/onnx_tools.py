"""ONNX export (static or dynamic batch), simplification, and facts about a graph."""

from __future__ import annotations

import collections
import contextlib
import inspect
import io
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from .errors import InputFileError
from .feeds import named_outputs
from .io import atomic_path

#: The ONNX model property that keeps the sizes of the experiment's axes besides the batch.
AXES_PROPERTY = "deploybench.axes"


def load_onnx(path: str | Path) -> onnx.ModelProto:
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"ONNX file {path} is missing: rerun export_onnx for it")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputFileError(f"ONNX file {path} is corrupt ({first}): delete it and rerun") from exc
    return model


def graph_facts(model: onnx.ModelProto) -> dict[str, Any]:
    ops = collections.Counter(node.op_type for node in model.graph.node)

    def dims(value) -> list[int | str]:
        return [
            d.dim_value if d.HasField("dim_value") else d.dim_param or "?"
            for d in value.type.tensor_type.shape.dim
        ]

    return {
        "opset": next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None),
        "nodes": len(model.graph.node),
        "op_types": dict(sorted(ops.items())),
        "inputs": {i.name: dims(i) for i in model.graph.input},
        "outputs": {o.name: dims(o) for o in model.graph.output},
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
    }


def experiment_axes(
    example: Mapping[str, np.ndarray], symbolic_axes: Mapping[str, Mapping[int, str]]
) -> dict[str, int]:
    """The sizes of the symbolic axes other than the batch (a sequence length), as traced."""
    return {
        axis: int(example[name].shape[i])
        for name, axes in symbolic_axes.items()
        for i, axis in axes.items()
        if axis != "batch" and name in example
    }


def fix_named_axes(model: onnx.ModelProto, sizes: Mapping[str, int]) -> onnx.ModelProto:
    """A copy whose inputs' and outputs' axes named in ``sizes`` are fixed at those sizes: an
    experiment's sequence length, which the export left free. Only the batch stays free in a
    dynamic graph, so TVM can infer every shape and TensorRT needs a profile over the batch
    alone."""
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    del fixed.graph.value_info[:]
    for value in [*fixed.graph.input, *fixed.graph.output]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.HasField("dim_param") and dim.dim_param in sizes:
                size = sizes[dim.dim_param]
                dim.Clear()
                dim.dim_value = size
    return onnx.shape_inference.infer_shapes(fixed)


#: Past this, a copied graph keeps its weights in a file beside it (protobuf's 2 GiB limit).
EXTERNAL_DATA_BYTES = 1 << 30


def import_onnx(
    source: str | Path, out_path: str | Path, experiment_shapes: Mapping[str, tuple[int, ...]]
) -> dict[str, Any]:
    """Copy a user's ONNX file into the workflow as its exported graph. Its symbolic axes other
    than the batch are recorded at the sizes of the experiment's data (``experiment_shapes``,
    per input at batch 1), for simplify to fix as it does an export's."""
    start = time.perf_counter()
    model = load_onnx(source)
    sizes: dict[str, int] = {}
    for value in model.graph.input:
        shape = experiment_shapes.get(value.name)
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            if shape is not None and axis > 0 and dim.dim_param and axis < len(shape):
                sizes[dim.dim_param] = int(shape[axis])
    if sizes:
        entry = model.metadata_props.add()
        entry.key, entry.value = AXES_PROPERTY, json.dumps(sizes, sort_keys=True)
    large = model.ByteSize() > EXTERNAL_DATA_BYTES
    with atomic_path(out_path) as tmp:
        onnx.save(
            model,
            str(tmp),
            save_as_external_data=large,
            location=f"{Path(out_path).name}.data" if large else None,
        )
    facts = graph_facts(model)
    facts.update(
        exporter="none: an ONNX file",
        source=str(source),
        export_seconds=time.perf_counter() - start,
        bytes=Path(out_path).stat().st_size,
        batch=_batch_of(model) or "dynamic",
        parameters=int(
            sum(np.prod(tensor.dims, dtype=np.int64) for tensor in model.graph.initializer)
        ),
        fixed_axes=sizes,
    )
    return facts


def graph_input_dtypes(model: onnx.ModelProto) -> dict[str, str]:
    """Each graph input's numpy dtype name, by input name."""
    return {
        i.name: np.dtype(onnx.helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type)).name
        for i in model.graph.input
    }


def input_batch(path: str | Path) -> int | None:
    """The fixed batch of the graph's first input, or None when the batch axis is free."""
    return _batch_of(onnx.load(str(path), load_external_data=False))


def _batch_of(model: onnx.ModelProto) -> int | None:
    # an older graph lists its weights among its inputs too: the first fed one counts
    weights = {tensor.name for tensor in model.graph.initializer}
    first = next(i for i in model.graph.input if i.name not in weights)
    dim = first.type.tensor_type.shape.dim[0]
    return dim.dim_value if dim.HasField("dim_value") else None


def export_onnx(
    model,
    example: Mapping[str, np.ndarray],
    output_names: Callable[[int], list[str]],
    symbolic_axes: Mapping[str, Mapping[int, str]],
    out_path: str | Path,
    batch: int | None,
    exporter: str = "dynamo",
    opset: int = 20,
) -> dict[str, Any]:
    """Export to one self-contained ONNX file, its inputs named as ``example`` (the task's
    feeds, traced at their batch) and its outputs by ``output_names(count)``. ``batch=None``
    leaves each input's ``symbolic_axes`` free, and the outputs' first (batch) axis."""
    import torch

    tensors = tuple(torch.from_numpy(np.ascontiguousarray(v)) for v in example.values())
    with torch.inference_mode():
        produced = model(*tensors)
    # named as the eager runners name them: a model's own keys, else the task's names
    inputs, outputs = list(example), list(named_outputs(produced, output_names))
    start = time.perf_counter()
    log = io.StringIO()
    with atomic_path(out_path) as tmp:
        kwargs: dict[str, Any] = {
            "input_names": inputs,
            "output_names": outputs,
            "opset_version": opset,
        }
        if exporter == "dynamo":
            kwargs.update(dynamo=True, external_data=False, optimize=True)
            if batch is None:
                dims = {
                    axis: torch.export.Dim(axis)
                    for a in symbolic_axes.values()
                    for axis in a.values()
                }
                shapes = [
                    {i: dims[axis] for i, axis in symbolic_axes.get(name, {}).items()}
                    for name in inputs
                ]
                parameters = list(inspect.signature(model.forward).parameters.values())
                if parameters and parameters[0].kind is inspect.Parameter.VAR_POSITIONAL:
                    # forward(*tensors): one entry, a tuple over the tensors
                    kwargs["dynamic_shapes"] = {parameters[0].name: tuple(shapes)}
                else:
                    kwargs["dynamic_shapes"] = {
                        parameter.name: shape
                        for parameter, shape in zip(parameters, shapes, strict=False)
                    }
        else:
            kwargs.update(dynamo=False)
            if batch is None:
                kwargs["dynamic_axes"] = {
                    **{name: dict(symbolic_axes.get(name, {})) for name in inputs},
                    **{name: {0: "batch"} for name in outputs},
                }
        # The dynamo exporter prints its progress to stdout; keep it for the log, not the console.
        with contextlib.redirect_stdout(log), torch.inference_mode():
            torch.onnx.export(model, tensors, str(tmp), **kwargs)
        exported = onnx.load(str(tmp))
        sizes = experiment_axes(example, symbolic_axes)
        if sizes:
            # what simplify fixes in every graph, kept with the graph itself
            entry = exported.metadata_props.add()
            entry.key, entry.value = AXES_PROPERTY, json.dumps(sizes, sort_keys=True)
            onnx.save(exported, str(tmp))
        onnx.checker.check_model(exported)
    facts = graph_facts(exported)
    facts.update(
        exporter=exporter,
        export_seconds=time.perf_counter() - start,
        bytes=Path(out_path).stat().st_size,
        torch=torch.__version__,
        batch="dynamic" if batch is None else batch,
    )
    return facts


def fix_batch(model: onnx.ModelProto, batch: int) -> onnx.ModelProto:
    """A copy whose inputs and outputs have their free batch axis fixed at ``batch``.

    The simplifier then folds the shape arithmetic the dynamic export carries: for the models
    here the result has the same nodes, and gives the same outputs, as a static export.
    """
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    # stale symbolic shapes of intermediate values would contradict the fixed batch
    del fixed.graph.value_info[:]
    for value in [*fixed.graph.input, *fixed.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if not dims:
            continue
        if dims[0].HasField("dim_value") and dims[0].dim_value != batch:
            raise ValueError(f"{value.name} already has batch {dims[0].dim_value}, not {batch}")
        dims[0].Clear()
        dims[0].dim_value = batch
    return onnx.shape_inference.infer_shapes(fixed)


def simplify_onnx(
    in_path: str | Path, out_path: str | Path, simplifier: str, batch: int | None = None
) -> dict[str, Any]:
    """Simplify one graph; ``batch`` fixes a free batch axis first (a static-batch graph)."""
    original = load_onnx(in_path)
    before = graph_facts(original)
    start = time.perf_counter()
    properties = {p.key: p.value for p in original.metadata_props}
    axes = json.loads(properties.get(AXES_PROPERTY, "{}"))
    source = fix_named_axes(original, axes) if axes else original
    source = source if batch is None else fix_batch(source, batch)
    with atomic_path(out_path) as tmp:
        if simplifier == "none":
            simplified, checked = source, None
        elif simplifier == "onnxsim":
            import onnxsim

            simplified, checked = onnxsim.simplify(source)
        elif simplifier == "onnxslim":
            import onnxslim

            simplified, checked = onnxslim.slim(source), None
        else:
            raise ValueError(f"unknown simplifier {simplifier!r}")
        onnx.checker.check_model(simplified)
        onnx.save(simplified, str(tmp))
    after = graph_facts(simplified)
    return {
        "simplifier": simplifier,
        "batch": "dynamic" if batch is None else batch,
        "fixed_axes": axes,
        "simplify_seconds": time.perf_counter() - start,
        "nodes_before": before["nodes"],
        "nodes_after": after["nodes"],
        "simplifier_check": checked,
        "opset": after["opset"],
        "op_types": after["op_types"],
        "inputs": after["inputs"],
        "outputs": after["outputs"],
        "bytes": Path(out_path).stat().st_size,
    }
