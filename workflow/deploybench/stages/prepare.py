"""Model fetch, evaluation and calibration inputs, and the PyTorch fp32 reference outputs."""

from __future__ import annotations

import logging
from pathlib import Path

from ..backends import baseline_backend
from ..io import load_npz, save_npz
from ..specs import ConfigKey, ModelSpec
from .common import bind_backend
from .inference import run_all

log = logging.getLogger("deploybench")


def fetch_model(spec: dict, out_dir: str) -> None:
    from ..models import fetch_model as fetch

    facts = fetch(ModelSpec(**spec), out_dir)
    log.info(
        "fetched %s: %d parameters, %.2f GFLOPs",
        spec["name"],
        facts["parameters"],
        facts["flops"] / 1e9,
    )


def prepare_evaluation_inputs(spec: dict, out_path: str) -> None:
    from ..inputs import prepare_evaluation

    log.info("evaluation inputs: %s", prepare_evaluation(ModelSpec(**spec), out_path))


def prepare_calibration_inputs(spec: dict, size: int, seed: int, out_path: str) -> None:
    from ..inputs import prepare_calibration

    log.info("calibration inputs: %s", prepare_calibration(ModelSpec(**spec), size, seed, out_path))


def reference_outputs(model_dir: str, inputs_npz: str, threads: int, out_npz: str) -> None:
    """PyTorch eager fp32 on every evaluation image: what every backend is judged against."""
    key = ConfigKey(Path(model_dir).name, baseline_backend(), "fp32", "dynamic")
    evaluation = load_npz(inputs_npz)["evaluation"]
    with bind_backend(key, threads, {}).load(Path(model_dir)) as runner:
        outputs = run_all(runner, evaluation, None)
    save_npz(out_npz, **outputs)
    log.info("reference outputs: %s", {name: value.shape for name, value in outputs.items()})
