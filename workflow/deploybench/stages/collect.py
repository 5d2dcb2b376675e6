"""Gather every job's record into one tidy table: a row per model × backend × precision ×
shape × batch, whatever its status, plus the raw latencies for the distribution plots and
the comparisons' per-round medians for the paired statistics.

The columns are the records' fields (:func:`deploybench.records.summary_columns`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..io import atomic_path
from ..records import (
    ARTIFACT_RECORD,
    COMPILE_PREFIX,
    KEYS,
    PARITY_PREFIX,
    ComparisonRecord,
    CompileRecord,
    ParityRecord,
    SkipRecord,
    TimingRecord,
    comparison_summary,
    summary_columns,
)


def _by_key(records) -> dict[tuple, Any]:
    return {record.key: record for record in records}


def collect_results(
    timing_paths: list[str],
    parity_paths: list[str],
    comparison_paths: list[str],
    artifact_dirs: list[str],
    skipped: list[dict[str, Any]],
    out_summary: str,
    out_latencies: str,
    out_rounds: str,
) -> None:
    import pandas as pd

    parity = _by_key(ParityRecord.read(path) for path in parity_paths)
    artifacts = _by_key(CompileRecord.read(Path(d) / ARTIFACT_RECORD) for d in artifact_dirs)
    compared, round_rows = {}, []
    for path in comparison_paths:
        comparison = ComparisonRecord.read(path)
        for config in comparison.configs:
            compared[(comparison.model, *config.key, comparison.batch)] = config
            keys = {"model": comparison.model, **config.key_fields, "batch": comparison.batch}
            round_rows += [
                {**keys, "round": number, "median_ms": median}
                for number, median in enumerate(config.round_medians_ms)
                if median is not None
            ]

    rows, latency_rows = [], []
    for path in timing_paths:
        record = TimingRecord.read(path)
        row = record.summary()
        if record.key in parity:
            row.update(parity[record.key].summary(PARITY_PREFIX))
        if record.key in artifacts:
            row.update(artifacts[record.key].summary(COMPILE_PREFIX))
        in_comparison = compared.get((*record.key.as_dict().values(), record.batch))
        if in_comparison is not None:
            row.update(comparison_summary(in_comparison))
        rows.append(row)
        keys = {k: row[k] for k in KEYS}
        latency_rows += [
            {**keys, "iteration": i, "latency_ms": latency}
            for i, latency in enumerate(record.latencies_ms)
        ]
    rows += [SkipRecord.from_json(skip).summary() for skip in skipped]

    # the columns are chosen here: a record's own copies of the keys (parity_model...) drop out
    frame = pd.DataFrame(rows).reindex(columns=summary_columns())
    frame = frame.sort_values(list(KEYS), kind="stable")
    tables = {
        out_summary: frame,
        out_latencies: pd.DataFrame(latency_rows, columns=[*KEYS, "iteration", "latency_ms"]),
        out_rounds: pd.DataFrame(round_rows, columns=[*KEYS, "round", "median_ms"]),
    }
    for path, table in tables.items():
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False)
