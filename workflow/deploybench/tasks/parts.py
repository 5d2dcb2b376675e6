"""One part of a model, deployed on its own: ``module: backbone`` (a dotted path into the model).

A part's inputs are whatever the model hands it: they are captured by a forward pre-hook while
the whole model runs on its task's samples, one sample per call, so every backend is fed what
the part sees in production (Mask R-CNN's box head gets the RoIs its RPN proposed). Inputs
that are lists or dicts of tensors (an FPN's feature maps) become one named input per tensor
(``x_0``, ``x_1``, ...); the outputs likewise (``output_0``, ``output_pool``). A part's sample
is one row of its inputs' first axis: an image for a backbone, one RoI for a box head.

Parity is the raw-output kind (relative error, cosine): a part has no post-processing of its
own, and its outputs carry a signal even with random weights.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..feeds import Feeds, concatenated, feed_count
from ..specs import ModelSpec
from .base import BATCH_AXIS, InputSpec, Task

#: At most this many samples of a part's inputs are kept, taken evenly from every call (a box
#: head sees 1000 RoIs per image).
MAX_SAMPLES = 256


def resolve(model, path: str):
    """The submodule at the dotted ``path``; a wrong step says which children there are."""
    module, walked = model, []
    for step in path.split("."):
        children = dict(module.named_children())
        if step not in children:
            where = ".".join(walked) or "the model"
            close = difflib.get_close_matches(step, children, n=1)
            hint = f"did you mean {'.'.join([*walked, close[0]])}? " if close else ""
            raise ConfigError(
                f"module {path!r}: {where} has no child {step!r}: {hint}"
                f"its children are {', '.join(children) or 'none'}"
            )
        module, walked = children[step], [*walked, step]
    return module


def _flatten(name: str, value: Any) -> dict[str, Any]:
    """Named tensors from a tensor, or a list, tuple or dict of tensors (one level)."""
    import torch

    if torch.is_tensor(value):
        return {name: value}
    if isinstance(value, (list, tuple)):
        items = enumerate(value)
    elif isinstance(value, Mapping):
        items = value.items()
    else:
        raise ConfigError(f"part input {name!r} is a {type(value).__name__}, not tensors")
    flat = {}
    for key, item in items:
        if not torch.is_tensor(item):
            raise ConfigError(
                f"part input {name}_{key} nests deeper than one list or dict of tensors"
            )
        flat[f"{name}_{key}"] = item
    return flat


def _flatten_outputs(name: str, value: Any) -> dict[str, Any]:
    """Named tensors from outputs nested in lists, tuples and dicts to any depth (an RPN head
    returns a list of logits and a list of box deltas, one per feature map)."""
    import torch

    if torch.is_tensor(value):
        return {name: value}
    if isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        raise ConfigError(f"part output {name!r} is a {type(value).__name__}, not tensors")
    flat = {}
    for key, item in items:
        flat.update(_flatten_outputs(f"{name}_{key}", item))
    return flat


def _holds_tensors(value: Any) -> bool:
    import torch

    if torch.is_tensor(value):
        return True
    if isinstance(value, Mapping):
        return any(_holds_tensors(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_holds_tensors(v) for v in value)
    return False


def _layout(value: Any) -> Any:
    """How to rebuild ``value`` from its flat tensors: None for a tensor, the container and its
    keys for a list, tuple or dict of them, and a value with no tensor in it (a scale, the
    image sizes) as the constant it was at the first call."""
    if not _holds_tensors(value):
        return ("constant", value)
    if isinstance(value, Mapping):
        return ("dict", list(value))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, len(value))
    return None


class PartCall:
    """The part behind a flat signature: named tensors in, named tensors out."""

    def __new__(cls, part, parameters: dict[str, Any]):
        import torch

        class Part(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.part = part

            def forward(self, *flat):
                arguments, position = {}, 0
                for parameter, layout in parameters.items():
                    if layout is None:
                        arguments[parameter], position = flat[position], position + 1
                    elif layout[0] == "constant":
                        arguments[parameter] = layout[1]
                    elif layout[0] == "dict":
                        keys = layout[1]
                        arguments[parameter] = dict(
                            zip(keys, flat[position : position + len(keys)], strict=True)
                        )
                        position += len(keys)
                    else:
                        items = list(flat[position : position + layout[1]])
                        arguments[parameter] = items if layout[0] == "list" else tuple(items)
                        position += layout[1]
                return _flatten_outputs("output", self.part(**arguments))

        return Part()


def capture(
    model, path: str, call: Callable[[Feeds], Any], feeds: Feeds
) -> tuple[Feeds, dict[str, Any]]:
    """The part's inputs, as named feeds, while ``call`` runs the whole model on ``feeds`` one
    sample at a time; and the layout :class:`PartCall` rebuilds them with."""
    import torch

    part = resolve(model, path)
    signature = inspect.signature(part.forward)
    calls: list[dict[str, Any]] = []
    samples = [0]

    def record(module, args, kwargs):
        if len(calls) < samples[0]:  # the first call per sample: a shared module runs again
            calls.append(signature.bind(*args, **kwargs).arguments)

    handle = part.register_forward_pre_hook(record, with_kwargs=True)
    try:
        with torch.inference_mode():
            for sample in range(feed_count(feeds)):
                samples[0] = sample + 1
                call({name: value[sample : sample + 1] for name, value in feeds.items()})
    finally:
        handle.remove()
    if len(calls) < feed_count(feeds):
        raise ConfigError(
            f"module {path!r} was not called on every sample of the model's task "
            f"({len(calls)} of {feed_count(feeds)}): deploy a part the model always runs"
        )
    layout = {name: _layout(value) for name, value in calls[0].items()}
    per_call = []
    for arguments in calls:
        flat: dict[str, np.ndarray] = {}
        for name, value in arguments.items():
            if layout[name] is not None and layout[name][0] == "constant":
                continue
            flat.update({k: v.detach().float().numpy() for k, v in _flatten(name, value).items()})
        per_call.append(flat)
    return _even_sample(concatenated(per_call)), layout


def _even_sample(feeds: Feeds) -> Feeds:
    count = feed_count(feeds)
    if count <= MAX_SAMPLES:
        return feeds
    rows = np.linspace(0, count - 1, MAX_SAMPLES).round().astype(int)
    return {name: np.ascontiguousarray(value[rows]) for name, value in feeds.items()}


class Part(Task):
    """A part of a model of the ``family`` task: the family's samples drive the whole model,
    the part's captured inputs are what is deployed, timed and judged."""

    unit = "samples"
    class_scores = False

    def __init__(self, family: Task, path: str, model_dir=None):
        """``model_dir``: the whole model's saved weights, which the part's evaluation and
        calibration inputs are captured from."""
        self.family, self.path, self.model_dir = family, path, model_dir
        self.name = family.name
        self.image_folders = family.image_folders
        self.deploys = f"the part {path} (inputs captured from the whole model)"

    def inputs(self, spec: ModelSpec) -> list[InputSpec]:
        return []  # known once captured: the whole model decides what the part is handed

    def check(self, spec: ModelSpec) -> None:
        self.family.check(spec)

    def _whole(self, model, spec: ModelSpec) -> Callable[[Feeds], Any]:
        def call(feeds: Feeds):
            return self.family.call_whole(model, spec, feeds)

        return call

    def part_feeds(self, model, spec: ModelSpec, feeds: Feeds) -> tuple[Feeds, dict[str, Any]]:
        return capture(model, self.path, self._whole(model, spec), feeds)

    def deployable(self, model, spec: ModelSpec):
        return self.deployed(model, spec)[0]

    def deployed(self, model, spec: ModelSpec) -> tuple[Any, Feeds]:
        feeds, layout = self.part_feeds(model, spec, self._samples(spec, 1))
        return PartCall(resolve(model, self.path), layout), feeds

    def _samples(self, spec: ModelSpec, count: int) -> Feeds:
        """The family's first evaluation samples: real ones, so that a part the model runs
        only on what it finds (a mask head, on detections) is reached, as a blank input
        might not be with trained weights."""
        feeds, _ = self.family.evaluation_feeds(spec)
        return {name: value[:count] for name, value in feeds.items()}

    def _whole_model(self):
        from ..models import load_model

        if self.model_dir is None:
            raise ValueError(f"module {self.path!r}: its inputs need the whole model's weights")
        return load_model(self.model_dir)[0]

    def evaluation_feeds(self, spec: ModelSpec) -> tuple[Feeds, dict[str, Any]]:
        whole, facts = self.family.evaluation_feeds(spec)
        feeds, _ = self.part_feeds(self._whole_model(), spec, whole)
        return feeds, facts

    def calibration_feeds(self, spec: ModelSpec, size: int, seed: int) -> Feeds:
        whole = self.family.calibration_feeds(spec, size, seed)
        return self.part_feeds(self._whole_model(), spec, whole)[0]

    def export_onnx(self, model, spec, out_path, batch, exporter="dynamo", opset=20):
        """``model``: the whole model; the part is traced on what it captures from two
        samples (torch.export specialises a dimension of size 1)."""
        from ..onnx_tools import export_onnx

        feeds, layout = self.part_feeds(model, spec, self._samples(spec, 2))
        return export_onnx(
            PartCall(resolve(model, self.path), layout),
            feeds,
            self.output_names,
            {name: {0: BATCH_AXIS} for name in feeds},
            out_path,
            batch,
            exporter,
            opset,
        )

    def output_names(self, spec: ModelSpec, count: int) -> list[str]:
        return [f"output_{i}" for i in range(count)]
