"""Model fetch, evaluation and calibration inputs, and the PyTorch fp32 reference outputs."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from ..backends import baseline_backend, onnx_reference_backend
from ..feeds import load_feeds, save_feeds
from ..io import save_npz
from ..specs import ConfigKey, ModelSpec
from ..tasks import task_for
from .common import bind_backend
from .inference import run_all

log = logging.getLogger("deploybench")


def fetch_model(spec: dict, out_dir: str) -> None:
    from ..tasks import fetch_deployable

    facts = fetch_deployable(ModelSpec(**spec), out_dir)
    log.info(
        "fetched %s: %d parameters, %.2f GFLOPs",
        spec["name"],
        facts["parameters"],
        facts["flops"] / 1e9,
    )


def prepare_evaluation_inputs(spec: dict, out_path: str, model_dir: str | None = None) -> None:
    """The task's evaluation samples; for a part (``module:``), what the part is handed while
    the whole model in ``model_dir`` runs on them."""
    model = ModelSpec(**spec)
    feeds, facts = task_for(model, model_dir).evaluation_feeds(model)
    save_feeds(out_path, feeds, **facts)
    log.info("evaluation inputs: %s", {name: value.shape for name, value in feeds.items()})


def prepare_calibration_inputs(
    spec: dict, size: int, seed: int, out_path: str, model_dir: str | None = None
) -> None:
    model = ModelSpec(**spec)
    feeds = task_for(model, model_dir).calibration_feeds(model, size, seed)
    save_feeds(out_path, feeds)
    log.info("calibration inputs: %s", {name: value.shape for name, value in feeds.items()})


def reference_outputs(model: str, inputs_npz: str, threads: int, out_npz: str) -> None:
    """The outputs every backend is judged against, on every evaluation sample: PyTorch eager
    fp32 on the saved model (``model.pt``), or for an ONNX file, which has no PyTorch model,
    ONNX Runtime fp32 on its imported graph (``exported.onnx``)."""
    evaluation = load_feeds(inputs_npz)
    model = Path(model)
    if model.suffix == ".onnx":
        from ..onnx_tools import input_batch

        key = ConfigKey(model.parent.name, onnx_reference_backend(), "fp32", "dynamic")
        backend = bind_backend(key, threads, {})
        with tempfile.TemporaryDirectory() as artifact:
            backend.compile(model, Path(artifact))
            with backend.load(Path(artifact)) as runner:
                outputs = run_all(runner, evaluation, input_batch(model))
    else:
        key = ConfigKey(model.parent.name, baseline_backend(), "fp32", "dynamic")
        with bind_backend(key, threads, {}).load(model.parent) as runner:
            outputs = run_all(runner, evaluation, None)
    save_npz(out_npz, **outputs)
    log.info("reference outputs: %s", {name: value.shape for name, value in outputs.items()})
