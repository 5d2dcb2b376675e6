"""What several test modules share: the schema's defaults, and typed settings built from them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "config" / "schema.yaml"
DEFAULT_CONFIG = REPO / "config" / "config.yaml"


def validated(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` checked against the schema with its defaults filled in, as Snakemake does."""
    from snakemake.utils import validate

    config = copy.deepcopy(raw)
    validate(config, str(SCHEMA))
    return config


def default_config() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_CONFIG.read_text())


def timing_settings(**overrides: Any):
    from deploybench.specs import TimingSettings

    timing = validated({"models": {"m": {"source": "efficientnet_lite0"}}})["timing"]
    return TimingSettings(**{**timing, **overrides})


def comparison_settings(**overrides: Any):
    """The schema's side-by-side comparison settings, with ``overrides``."""
    from deploybench.specs import ComparisonSettings

    comparison = validated({"models": {"m": {"source": "efficientnet_lite0"}}})["comparison"]
    return ComparisonSettings(**{**comparison, **overrides})


def model_spec(name: str = "m", **fields: Any):
    """A ModelSpec with the schema's defaults for what ``fields`` leaves out."""
    from deploybench.specs import ModelSpec

    config = validated({"models": {name: fields}})
    return ModelSpec.from_config(name, config["models"][name])


def settings(**fields: Any):
    """The settings tree of a minimal validated config, with ``fields`` replaced."""
    import dataclasses

    from deploybench.settings import parse_config

    tree = parse_config(validated({"models": {"m": {"source": "efficientnet_lite0"}}}))
    return dataclasses.replace(tree, **fields)


def limits(**overrides: Any):
    """The schema's supervision limits, with ``overrides``, as the jobs get them."""
    from deploybench.specs import LimitSettings

    config = validated({"models": {"m": {"source": "efficientnet_lite0"}}})
    return LimitSettings(**{**config["limits"], **overrides})


def feeds(batch):
    """One image batch as the named inputs a runner takes (the exporter names the input so)."""
    from deploybench.specs import INPUT_NAME

    return {INPUT_NAME: batch}


def fetch(spec, out_dir):
    """The model fetched as the fetch stage does (with what its task deploys)."""
    from deploybench.tasks import fetch_deployable

    return fetch_deployable(spec, out_dir)


def export_classifier(model, input_size, out_path, batch, exporter="torchscript", opset=17):
    """An image classifier exported as the export stage does (task classification)."""
    from deploybench.tasks import get_task

    spec = model_spec("m", source="torchvision", architecture="resnet18", input_size=input_size)
    return get_task("classification").export_onnx(model, spec, out_path, batch, exporter, opset)


def two_input_graph(path, batch: int | None):
    """out = x @ W1 + (mask * c) @ W2, with the graph's inputs listed mask first: a runner that
    fed its inputs by position in the feeds' order (x first) would swap them."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)
    weights = {
        "W1": rng.standard_normal((4, 3)).astype(np.float32),
        "W2": rng.standard_normal((4, 3)).astype(np.float32),
        "c": np.array([1.0, -2.0, 0.5, 3.0], np.float32),
    }
    rows = batch if batch is not None else "batch"
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W1"], ["a"]),
            helper.make_node("Mul", ["mask", "c"], ["scaled"]),
            helper.make_node("MatMul", ["scaled", "W2"], ["b"]),
            helper.make_node("Add", ["a", "b"], ["out"]),
        ],
        "two_inputs",
        [
            helper.make_tensor_value_info("mask", TensorProto.FLOAT, [rows, 4]),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, 4]),
        ],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [rows, 3])],
        [numpy_helper.from_array(value, name) for name, value in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))

    def expected(feeds):
        return feeds["x"] @ weights["W1"] + (feeds["mask"] * weights["c"]) @ weights["W2"]

    return expected


USER_CODE = REPO / "tests" / "data" / "user_code"


def small_cnn_onnx(path, batch: int | None = None, input_size: int = 64):
    """A user's image classifier as an ONNX file (input ``pixels``, output ``scores``): the
    small CNN of tests/data/user_code, its BatchNorm statistics set from the classification
    task's images so that its scores carry a signal parity can judge."""
    import importlib.util

    import torch
    from deploybench.models import recalibrate_batchnorm
    from deploybench.tasks import get_task

    module_spec = importlib.util.spec_from_file_location(
        "small_cnn_onnx", USER_CODE / "small_cnn.py"
    )
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    torch.manual_seed(0)
    model = module.build(num_classes=10, width=8).eval()
    spec = model_spec("m", source="torchvision", architecture="resnet18", input_size=input_size)
    recalibrate_batchnorm(model, get_task("classification").calibration_feeds(spec, 32, 5))
    axes = {} if batch is not None else {"pixels": {0: "N"}, "scores": {0: "N"}}
    torch.onnx.export(
        model,
        (torch.rand(batch or 1, 3, input_size, input_size),),
        str(path),
        input_names=["pixels"],
        output_names=["scores"],
        dynamic_axes=axes,
        dynamo=False,
        opset_version=17,
    )
    return model


def labelled_photos(folder, names: dict[str, str] | None = None):
    """tests/data/labelled_photos.yaml as an ImageFolder layout under ``folder``: a folder per
    class, named by its ImageNet index, or with ``names`` (index -> name) by name."""
    from deploybench.inputs import load_sample_image
    from skimage import io

    labels = yaml.safe_load((REPO / "tests" / "data" / "labelled_photos.yaml").read_text())
    for photo, index in labels.items():
        label = names[str(index)] if names else str(index)
        (folder / label).mkdir(parents=True, exist_ok=True)
        io.imsave(folder / label / f"{photo}.png", load_sample_image(photo))
    return folder, labels
