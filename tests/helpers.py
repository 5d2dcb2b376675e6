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
