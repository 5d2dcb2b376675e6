"""Gather every job's record into one tidy table: a row per model × backend × precision ×
shape × batch, whatever its status, plus the raw latencies for the distribution plots.

The columns are the records' fields (:func:`deploybench.records.summary_columns`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..backends import baseline_backend, get_backend
from ..errors import ConfigError
from ..io import atomic_path
from ..records import (
    ARTIFACT_RECORD,
    COMPILE_PREFIX,
    KEYS,
    PARITY_PREFIX,
    CompileRecord,
    ParityRecord,
    SkipRecord,
    TimingRecord,
    summary_columns,
)

BASELINE_PRECISION = "fp32"


def _baseline_of(backend: str) -> str | None:
    try:
        return baseline_backend(get_backend(backend).device)
    except ConfigError:
        return None  # no baseline on that device: no speedups for it


def add_speedups(frame):
    """Speedup over the device's baseline fp32 at the same model and batch, with a conservative
    CI (the baseline's CI bounds over this configuration's opposite bounds)."""
    ok = frame.status == "ok"
    frame["baseline"] = frame.backend.map(_baseline_of)
    is_base = ok & (frame.backend == frame.baseline) & (frame.precision == BASELINE_PRECISION)
    base = frame.loc[
        is_base,
        ["model", "batch", "baseline", "median_ms", "median_ci_low_ms", "median_ci_high_ms"],
    ]
    base = base.rename(columns=lambda c: c if c in ("model", "batch", "baseline") else f"base_{c}")
    merged = frame.merge(base, on=["model", "batch", "baseline"], how="left")
    speedup = {
        "speedup": merged.base_median_ms / merged.median_ms,
        "speedup_ci_low": merged.base_median_ci_low_ms / merged.median_ci_high_ms,
        "speedup_ci_high": merged.base_median_ci_high_ms / merged.median_ci_low_ms,
    }
    for column, values in speedup.items():
        frame[column] = values.where(ok.to_numpy()).to_numpy()
    frame["baseline"] = (frame.baseline + " " + BASELINE_PRECISION).where(frame.speedup.notna())
    return frame


def _by_key(records) -> dict[tuple, Any]:
    return {record.key: record for record in records}


def collect_results(
    timing_paths: list[str],
    parity_paths: list[str],
    artifact_dirs: list[str],
    skipped: list[dict[str, Any]],
    out_summary: str,
    out_latencies: str,
) -> None:
    import pandas as pd

    parity = _by_key(ParityRecord.read(path) for path in parity_paths)
    artifacts = _by_key(CompileRecord.read(Path(d) / ARTIFACT_RECORD) for d in artifact_dirs)

    rows, latency_rows = [], []
    for path in timing_paths:
        record = TimingRecord.read(path)
        row = record.summary()
        if record.key in parity:
            row.update(parity[record.key].summary(PARITY_PREFIX, with_keys=False))
        if record.key in artifacts:
            row.update(artifacts[record.key].summary(COMPILE_PREFIX, with_keys=False))
        rows.append(row)
        keys = {k: row[k] for k in KEYS}
        latency_rows += [
            {**keys, "iteration": i, "latency_ms": latency}
            for i, latency in enumerate(record.latencies_ms)
        ]
    rows += [SkipRecord.from_json(skip).summary() for skip in skipped]

    frame = pd.DataFrame(rows).reindex(columns=summary_columns())
    frame = add_speedups(frame).sort_values(list(KEYS), kind="stable")
    with atomic_path(out_summary) as tmp:
        frame.to_csv(tmp, index=False)
    latencies = pd.DataFrame(latency_rows, columns=[*KEYS, "iteration", "latency_ms"])
    with atomic_path(out_latencies) as tmp:
        latencies.to_csv(tmp, index=False)
