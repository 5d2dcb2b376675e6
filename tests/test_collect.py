"""collect_results on hand-made records: every record lands in its own row and column, the
latencies and per-round medians keep their order and keys, skips are rows too, the table is
sorted and written whole. Written for the mutation run of ``stages/collect.py``."""

from __future__ import annotations

import pandas as pd
from deploybench.records import (
    ARTIFACT_RECORD,
    ComparedConfig,
    ComparisonRecord,
    CompileRecord,
    ParityRecord,
    SkipRecord,
    Status,
    TimingRecord,
)
from deploybench.specs import ConfigKey
from deploybench.stages.collect import collect_results
from deploybench.stats import summarize

ORT = ConfigKey("m", "onnxruntime", "fp32", "dynamic")
BASE = ConfigKey("m", "pytorch", "fp32", "dynamic")
SKIP = ConfigKey("m", "openvino", "int8", "dynamic")


def write_records(folder):
    paths = {"timings": [], "parity": [], "artifacts": []}
    for key, latencies in ((BASE, [9.0, 10.0, 11.0]), (ORT, [4.0, 5.0])):
        for batch in (1, 2):
            timing = TimingRecord.ok(
                key,
                batch=batch,
                stats=summarize([x * batch for x in latencies]),
                latencies_ms=[x * batch for x in latencies],
            )
            path = folder / f"{key.backend}-b{batch}.json"
            timing.write(path)
            paths["timings"].append(str(path))
        verdict = "pass" if key is BASE else "fail"
        parity = ParityRecord.ok(key, verdict=verdict, reason=f"{key.backend} parity")
        parity.write(folder / f"{key.backend}-parity.json")
        paths["parity"].append(str(folder / f"{key.backend}-parity.json"))
        artifact = folder / key.backend
        artifact.mkdir()
        size = 100 if key is BASE else 7
        CompileRecord.ok(key, seconds=1.0, artifact_bytes=size, files=[]).write(
            artifact / ARTIFACT_RECORD
        )
        paths["artifacts"].append(str(artifact))
    compared = [
        ComparedConfig(
            backend=k.backend,
            precision=k.precision,
            shape=k.shape,
            status=Status.OK,
            rounds=2,
            median_ms=median,
            speedup=speedup,
            round_medians_ms=rounds,
            hardware_id="abc",
        )
        for k, median, speedup, rounds in (
            (BASE, 10.0, 1.0, [10.0, 10.0]),
            (ORT, 5.0, 2.0, [5.0, None, 4.0]),
        )
    ]
    comparison = ComparisonRecord(model="m", batch=2, threads=1, rounds=3, configs=compared)
    comparison.write(folder / "comparison.json")
    skipped = [SkipRecord.skipped(SKIP, "openvino int8 not offered", batch=b) for b in (1, 2)]
    return paths, [str(folder / "comparison.json")], [s.to_json() for s in skipped]


def collected(tmp_path):
    paths, comparisons, skipped = write_records(tmp_path)
    out = {name: tmp_path / f"{name}.csv" for name in ("summary", "latencies", "rounds")}
    collect_results(
        timing_paths=paths["timings"],
        parity_paths=paths["parity"],
        comparison_paths=comparisons,
        artifact_dirs=paths["artifacts"],
        skipped=skipped,
        out_summary=str(out["summary"]),
        out_latencies=str(out["latencies"]),
        out_rounds=str(out["rounds"]),
    )
    return {name: pd.read_csv(path) for name, path in out.items()}


def test_every_record_lands_in_its_own_row(tmp_path):
    summary = collected(tmp_path)["summary"]
    assert len(summary) == 6
    rows = summary.set_index(["backend", "batch"])
    assert rows.loc[("pytorch", 1), "median_ms"] == 10.0
    assert rows.loc[("onnxruntime", 2), "median_ms"] == 9.0
    assert rows.loc[("pytorch", 2), "parity_verdict"] == "pass"
    assert rows.loc[("onnxruntime", 1), "parity_verdict"] == "fail"
    assert rows.loc[("onnxruntime", 1), "parity_reason"] == "onnxruntime parity"
    assert rows.loc[("onnxruntime", 2), "compile_artifact_bytes"] == 7
    assert rows.loc[("pytorch", 1), "compile_artifact_bytes"] == 100
    # the comparison was at batch 2 only: batch 1 rows have no side-by-side figures
    assert rows.loc[("onnxruntime", 2), "cmp_speedup"] == 2.0
    assert rows.loc[("onnxruntime", 2), "cmp_hardware_id"] == "abc"
    assert pd.isna(rows.loc[("onnxruntime", 1), "cmp_speedup"])
    skipped = summary[summary.status == "skipped"]
    assert len(skipped) == 2 and set(skipped.reason) == {"openvino int8 not offered"}


def test_the_table_is_sorted_by_its_keys(tmp_path):
    summary = collected(tmp_path)["summary"]
    order = list(zip(summary.backend, summary.batch, strict=True))
    assert order == [
        ("onnxruntime", 1),
        ("onnxruntime", 2),
        ("openvino", 1),
        ("openvino", 2),
        ("pytorch", 1),
        ("pytorch", 2),
    ]


def test_latencies_keep_every_iteration_in_order(tmp_path):
    latencies = collected(tmp_path)["latencies"]
    assert len(latencies) == 2 * 3 + 2 * 2
    ort_b2 = latencies[(latencies.backend == "onnxruntime") & (latencies.batch == 2)]
    assert list(ort_b2.iteration) == [0, 1] and list(ort_b2.latency_ms) == [8.0, 10.0]
    assert list(latencies.columns[:5]) == ["model", "backend", "precision", "shape", "batch"]


def test_rounds_keep_their_numbers_and_leave_out_the_unmeasured(tmp_path):
    rounds = collected(tmp_path)["rounds"]
    ort = rounds[rounds.backend == "onnxruntime"]
    # round 1 was not measured: left out, and round 2 keeps its number
    assert list(ort["round"]) == [0, 2] and list(ort.median_ms) == [5.0, 4.0]
    assert set(rounds.batch) == {2} and len(rounds) == 4
