"""One function per workflow stage. The Snakemake scripts only unpack and call these."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import records
from .backends import get_backend
from .backends.base import ARTIFACT_RECORD
from .config import ModelSpec, TimingSettings
from .io import atomic_dir, load_npz, read_json, save_npz, write_json
from .parity import Tolerance, check
from .timing import measure, time_runner

log = logging.getLogger("deploybench")


def fetch_model(spec: dict, out_dir: str) -> None:
    from .models import fetch_model as fetch

    facts = fetch(ModelSpec(**spec), out_dir)
    log.info(
        "fetched %s: %d parameters, %.2f GFLOPs",
        spec["name"],
        facts["parameters"],
        facts["flops"] / 1e9,
    )


def prepare_evaluation_inputs(spec: dict, out_path: str) -> None:
    from .inputs import prepare_evaluation

    log.info("evaluation inputs: %s", prepare_evaluation(ModelSpec(**spec), out_path))


def prepare_calibration_inputs(spec: dict, size: int, seed: int, out_path: str) -> None:
    from .inputs import prepare_calibration

    log.info("calibration inputs: %s", prepare_calibration(ModelSpec(**spec), size, seed, out_path))


def export_onnx(model_pt: str, shape: str, settings: dict, out_onnx: str, out_json: str) -> None:
    from .config import static_batch
    from .models import load_model
    from .onnx_tools import export_onnx as export

    model, spec = load_model(Path(model_pt).parent)
    facts = export(
        model,
        spec.input_size,
        out_onnx,
        static_batch(shape),
        settings["exporter"],
        settings["opset"],
    )
    write_json(out_json, facts)
    log.info("exported %s/%s: %d nodes, opset %s", spec.name, shape, facts["nodes"], facts["opset"])


def simplify_onnx(in_onnx: str, simplifier: str, out_onnx: str, out_json: str) -> None:
    from .onnx_tools import simplify_onnx as simplify

    facts = simplify(in_onnx, out_onnx, simplifier)
    write_json(out_json, facts)
    log.info("%s: %d -> %d nodes", simplifier, facts["nodes_before"], facts["nodes_after"])


def reference_outputs(model_pt: str, inputs_npz: str, out_npz: str) -> None:
    import torch

    from .models import load_model

    model, _ = load_model(Path(model_pt).parent)
    evaluation = load_npz(inputs_npz)["evaluation"]
    with torch.inference_mode():
        output = model(torch.from_numpy(evaluation))
    outputs = output if isinstance(output, (tuple, list)) else (output,)
    save_npz(out_npz, **{f"output_{i}": o.float().numpy() for i, o in enumerate(outputs)})


def compile_artifact(
    backend: str,
    precision: str,
    source: str,
    calibration_npz: str | None,
    options: dict,
    out_dir: str,
    keys: dict,
) -> None:
    """Build the artifact folder; a backend error is recorded in artifact.json, not raised."""
    backend_cls = get_backend(backend)
    with atomic_dir(out_dir) as tmp:

        def build() -> dict:
            calibration = load_npz(calibration_npz)["calibration"] if calibration_npz else None
            facts = backend_cls().compile(
                Path(source), tmp, precision, calibration, backend_cls.make_options(options)
            )
            log.info(
                "compiled in %.1f s, %d bytes", facts["compile_seconds"], facts["artifact_bytes"]
            )
            return records.ok(keys, **facts)

        record = _record_or_failure("compile", keys, build)
        record["version"] = backend_cls.version()
        write_json(tmp / ARTIFACT_RECORD, record)


def _record_or_failure(what: str, keys: dict, work: Callable[[], dict]) -> dict:
    """``work()``'s record; a backend error becomes a failed record, a user's error is raised."""
    try:
        return work()
    except records.HARD_ERRORS:
        raise
    except Exception as exc:
        log.exception("%s failed", what)
        return records.failed(exc, **keys)


def _skipped_after_failed_compile(artifact_dir: str, out_json: str, keys: dict) -> bool:
    """Write a skipped record when the artifact failed to build; say whether it did."""
    artifact = read_json(Path(artifact_dir) / ARTIFACT_RECORD)
    if artifact["status"] == records.OK:
        return False
    write_json(out_json, records.skipped(f"compile failed: {artifact['reason']}", **keys))
    return True


def _load_runner(artifact_dir: str, keys: dict, threads: int, options: dict):
    backend_cls = get_backend(keys["backend"])
    return backend_cls().load(
        Path(artifact_dir), keys["precision"], threads, backend_cls.make_options(options)
    )


def make_batch(evaluation: np.ndarray, batch: int) -> np.ndarray:
    """The first ``batch`` evaluation images, cycled when there are fewer."""
    index = np.arange(batch) % len(evaluation)
    return np.ascontiguousarray(evaluation[index])


def time_inference(
    artifact_dir: str,
    inputs_npz: str,
    batch: int,
    threads: int,
    timing: dict,
    options: dict,
    out_json: str,
    keys: dict,
    crosscheck: dict | None = None,
) -> None:
    keys = {**keys, "batch": batch, "threads": threads}
    if _skipped_after_failed_compile(artifact_dir, out_json, keys):
        return
    backend_cls = get_backend(keys["backend"])
    settings = TimingSettings(**timing)

    def measure_all() -> dict:
        data = make_batch(load_npz(inputs_npz)["evaluation"], batch)
        start = time.perf_counter()
        runner = _load_runner(artifact_dir, keys, threads, options)
        load_seconds = time.perf_counter() - start
        with runner:
            result = time_runner(lambda: runner.run(data), settings)
            stats = result["stats"]
            log.info(
                "median %.3f ms (95%% CI %.3f-%.3f), CV %.3f, n=%d%s",
                stats["median_ms"],
                stats["median_ci_low_ms"],
                stats["median_ci_high_ms"],
                stats["cv"],
                stats["n"],
                " NOISY: " + "; ".join(result["noise"]) if result["noisy"] else "",
            )
            record = records.ok(
                keys,
                load_seconds=load_seconds,
                throughput_per_s=batch / (stats["median_ms"] / 1e3),
                execution=runner.execution_info,
                version=backend_cls.version(),
                **result,
            )
            if crosscheck:
                vendor = vendor_crosscheck(
                    lambda: backend_cls().vendor_benchmark(
                        Path(artifact_dir),
                        keys["precision"],
                        threads,
                        data.shape,
                        crosscheck["seconds"],
                        backend_cls.make_options(options),
                    ),
                    before_ms=stats["median_ms"],
                    measure_again=lambda: measure(lambda: runner.run(data), settings).stats[
                        "median_ms"
                    ],
                )
                if vendor is not None:
                    record["vendor_benchmark"] = vendor
        return record

    write_json(out_json, _record_or_failure("timing", keys, measure_all))


def vendor_crosscheck(
    run_tool: Callable[[], dict | None],
    before_ms: float,
    measure_again: Callable[[], float],
) -> dict[str, Any] | None:
    """The vendor tool's median for the same artifact and settings, bracketed by ours.

    This machine's speed drifts by tens of percent over seconds, so the tool's run is compared
    with the mean of our medians just before and just after it, and that drift is recorded.
    """
    try:
        vendor = run_tool()
    except Exception as exc:
        log.exception("vendor benchmark failed")
        return {"error": records.first_line(exc)}
    if vendor is None:
        return None
    after_ms = measure_again()
    vendor.update(
        ours_before_ms=before_ms,
        ours_after_ms=after_ms,
        drift=after_ms / before_ms,
        ratio=(before_ms + after_ms) / 2 / vendor["median_ms"],
    )
    log.info(
        "%s median %.3f ms; ours %.3f before, %.3f after: ours / theirs = %.3f",
        vendor["tool"],
        vendor["median_ms"],
        before_ms,
        after_ms,
        vendor["ratio"],
    )
    return vendor


def run_all(runner, evaluation: np.ndarray, batch: int | None) -> list[np.ndarray]:
    """Run every evaluation image through the runner in batches the graph accepts."""
    size = batch or len(evaluation)
    chunks: list[list[np.ndarray]] = []
    for start in range(0, len(evaluation), size):
        chunk = evaluation[start : start + size]
        real = len(chunk)
        if real < size:  # a static graph needs a full batch: pad, then drop the padding
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], size - real, axis=0)])
        outputs = runner.run(np.ascontiguousarray(chunk))
        chunks.append([o[:real] for o in outputs])
    return [np.concatenate(parts) for parts in zip(*chunks, strict=True)]


def check_parity(
    artifact_dir: str,
    inputs_npz: str,
    reference_npz: str,
    tolerance: dict,
    threads: int,
    options: dict,
    out_json: str,
    keys: dict,
) -> None:
    from .config import static_batch

    if _skipped_after_failed_compile(artifact_dir, out_json, keys):
        return
    reference = load_npz(reference_npz)
    references = [reference[f"output_{i}"] for i in range(len(reference))]

    def compare() -> dict:
        evaluation = load_npz(inputs_npz)["evaluation"]
        with _load_runner(artifact_dir, keys, threads, options) as runner:
            outputs = run_all(runner, evaluation, static_batch(keys["shape"]))
            execution = runner.execution_info
        result = check(references, outputs, Tolerance(**tolerance))
        log.info("parity %s: %s", result.verdict, result.reason)
        return records.ok(
            keys,
            tolerance=tolerance,
            images=len(evaluation),
            execution=execution,
            **result.as_dict(),
        )

    write_json(out_json, _record_or_failure("parity run", keys, compare))


def configure_logging(log_path: str | None) -> None:
    handlers: list[logging.Handler] = [] if log_path else [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        handlers=handlers,
        force=True,
    )
