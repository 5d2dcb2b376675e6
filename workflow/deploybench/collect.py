"""Gather every job's record into one tidy table: a row per model × backend × precision ×
shape × batch, whatever its status, plus the raw latencies for the distribution plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .backends.base import ARTIFACT_RECORD
from .io import atomic_path, read_json

KEYS = ["model", "backend", "precision", "shape", "batch"]
BASELINE = ("pytorch", "fp32")
STAT_COLUMNS = [
    "median_ms",
    "p90_ms",
    "p99_ms",
    "mean_ms",
    "std_ms",
    "cv",
    "min_ms",
    "max_ms",
    "median_ci_low_ms",
    "median_ci_high_ms",
    "n",
]


def _timing_row(record: dict[str, Any]) -> dict[str, Any]:
    row = {key: record.get(key) for key in KEYS}
    row.update(status=record["status"], reason=record.get("reason", ""))
    row["threads"] = record.get("threads")
    if record["status"] == "ok":
        row.update({k: record["stats"][k] for k in STAT_COLUMNS})
        execution = record.get("execution", {})
        row.update(
            throughput_per_s=record["throughput_per_s"],
            cold_ms=record["cold_ms"],
            load_seconds=record["load_seconds"],
            noisy=record["noisy"],
            noise="; ".join(record["noise"]),
            foreign_cpu=record.get("foreign_cpu"),
            load_average_before=record["load_average_before"][0],
            load_average_after=record["load_average_after"][0],
            cpu_mhz_before=record.get("cpu_mhz_before"),
            cpu_mhz_after=record.get("cpu_mhz_after"),
            execution_precision=execution.get("execution_precision", ""),
            execution=str(execution),
            version=record.get("version"),
        )
        vendor = record.get("vendor_benchmark") or {}
        if vendor:
            row.update(
                vendor_tool=vendor.get("tool", ""),
                vendor_median_ms=vendor.get("median_ms"),
                vendor_ratio=vendor.get("ratio"),
                vendor_drift=vendor.get("drift"),
                vendor_error=vendor.get("error", ""),
            )
    return row


def _parity_columns(record: dict[str, Any]) -> dict[str, Any]:
    if record["status"] != "ok":
        return {"parity": "not run", "parity_reason": record.get("reason", "")}
    first = record["outputs"][0] if record["outputs"] else {}
    return {
        "parity": record["verdict"],
        "parity_reason": record["reason"],
        "degenerate_reference": record["degenerate_reference"],
        "max_abs_error": first.get("max_abs"),
        "max_rel_error": first.get("max_rel"),
        "cosine": first.get("cosine"),
        "top1_agreement": first.get("top1"),
        "top5_agreement": first.get("top5"),
        "parity_images": record.get("images"),
    }


def _artifact_columns(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "compile_status": record["status"],
        "compile_seconds": record.get("compile_seconds"),
        "artifact_bytes": record.get("artifact_bytes"),
    }


def add_speedups(frame):
    """Speedup over eager PyTorch fp32 at the same model and batch, with a conservative CI."""
    is_base = (
        (frame.backend == BASELINE[0]) & (frame.precision == BASELINE[1]) & (frame.status == "ok")
    )
    base = frame.loc[
        is_base, ["model", "batch", "median_ms", "median_ci_low_ms", "median_ci_high_ms"]
    ]
    base = base.rename(columns=lambda c: c if c in ("model", "batch") else f"base_{c}")
    merged = frame.merge(base, on=["model", "batch"], how="left")
    ok = merged.status == "ok"
    frame["speedup"] = (merged.base_median_ms / merged.median_ms).where(ok).to_numpy()
    frame["speedup_ci_low"] = (
        (merged.base_median_ci_low_ms / merged.median_ci_high_ms).where(ok).to_numpy()
    )
    frame["speedup_ci_high"] = (
        (merged.base_median_ci_high_ms / merged.median_ci_low_ms).where(ok).to_numpy()
    )
    return frame


def collect_results(
    timing_paths: list[str],
    parity_paths: list[str],
    artifact_dirs: list[str],
    skipped: list[dict[str, Any]],
    out_summary: str,
    out_latencies: str,
) -> None:
    import pandas as pd

    parity = {}
    for path in parity_paths:
        record = read_json(path)
        parity[(record["model"], record["backend"], record["precision"], record["shape"])] = record
    artifacts = {}
    for folder in artifact_dirs:
        record = read_json(Path(folder) / ARTIFACT_RECORD)
        artifacts[(record["model"], record["backend"], record["precision"], record["shape"])] = (
            record
        )

    rows, latency_rows = [], []
    for path in timing_paths:
        record = read_json(path)
        row = _timing_row(record)
        key4 = (row["model"], row["backend"], row["precision"], row["shape"])
        if key4 in parity:
            row.update(_parity_columns(parity[key4]))
        if key4 in artifacts:
            row.update(_artifact_columns(artifacts[key4]))
        rows.append(row)
        for i, latency in enumerate(record.get("latencies_ms", [])):
            latency_rows.append(
                {**{k: row[k] for k in KEYS}, "iteration": i, "latency_ms": latency}
            )
    for skip in skipped:
        rows.append({**{k: skip[k] for k in KEYS}, "status": "skipped", "reason": skip["reason"]})

    frame = pd.DataFrame(rows)
    frame = add_speedups(frame).sort_values(KEYS, kind="stable")
    with atomic_path(out_summary) as tmp:
        frame.to_csv(tmp, index=False)
    latencies = pd.DataFrame(latency_rows, columns=[*KEYS, "iteration", "latency_ms"])
    with atomic_path(out_latencies) as tmp:
        latencies.to_csv(tmp, index=False)
