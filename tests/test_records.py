"""Typed records: JSON round trips, the summary's columns come from the fields, missing values
are recognised in one place."""

import dataclasses
import math

import pytest
from deploybench.errors import InputFileError
from deploybench.parity import OutputParity
from deploybench.records import (
    CompileRecord,
    ParityRecord,
    SkipRecord,
    Status,
    TimingRecord,
    VendorCheck,
    missing,
    summary_columns,
)
from deploybench.specs import ConfigKey
from deploybench.stats import summarize

KEY = ConfigKey("m", "openvino", "int8", "static_b1")


def timing_record():
    return TimingRecord.ok(
        KEY,
        batch=1,
        threads=2,
        stats=summarize([1.0, 2.0, 3.0]),
        latencies_ms=[1.0, 2.0, 3.0],
        noise=["CV 0.40 > 0.15", "other processes used 0.3 cores"],
        vendor=VendorCheck(tool="benchmark_app", median_ms=2.5, ratio=0.8),
    )


@pytest.mark.parametrize(
    "record",
    [
        timing_record(),
        CompileRecord.ok(KEY, seconds=1.5, artifact_bytes=10, files=["a"], details={"x": 1}),
        ParityRecord.ok(KEY, verdict="pass", outputs=[OutputParity(1.0, 0.1, 0.99, 1.0, 1.0)]),
        ParityRecord.failed(KEY, RuntimeError("boom\ndetail")),
        SkipRecord.skipped(KEY, "nncf not installed", batch=8),
    ],
    ids=lambda r: f"{r.KIND}-{r.status}",
)
def test_json_round_trip_rebuilds_the_same_record(record, tmp_path):
    path = tmp_path / "record.json"
    record.write(path)
    again = type(record).read(path)
    assert again == record
    assert isinstance(again.status, Status)
    if isinstance(record, TimingRecord):
        assert again.stats.median_ms == 2.0 and again.vendor.ratio == 0.8


def test_reading_a_record_of_another_kind_is_refused(tmp_path):
    path = tmp_path / "record.json"
    timing_record().write(path)
    with pytest.raises(InputFileError, match="is a 'timing' record, not 'parity'"):
        ParityRecord.read(path)


def test_failed_record_keeps_the_first_line_and_the_traceback():
    try:
        raise RuntimeError("Exception from src/x.cpp:12:\nreal cause\n")
    except RuntimeError as exc:
        record = CompileRecord.failed(KEY, exc)
    assert record.status is Status.FAILED
    assert record.reason == "RuntimeError: real cause"
    assert record.traceback


def test_summary_columns_are_the_fields_flattened():
    columns = summary_columns()
    assert len(columns) == len(set(columns))
    stats_fields = [f.name for f in dataclasses.fields(type(summarize([1.0])))]
    assert all(name in columns for name in stats_fields)  # stats flatten without a prefix
    assert "vendor_ratio" in columns and "vendor_tool" in columns
    assert "parity_verdict" in columns and "parity_cosine" in columns  # first output
    assert "compile_seconds" in columns and "compile_status" in columns
    assert "cmp_speedup" in columns and "cmp_baseline" in columns  # from the comparison
    # details stay in the JSON only
    for detail in ("latencies_ms", "attempts", "traceback", "python", "execution", "files"):
        assert not any(c.endswith(detail) for c in columns), detail


def test_a_new_field_becomes_a_column_without_another_edit():
    @dataclasses.dataclass(kw_only=True)
    class Extended(TimingRecord):
        gpu_clock_mhz: float | None = None

    assert "gpu_clock_mhz" in Extended.columns()
    row = Extended.ok(KEY, batch=1, gpu_clock_mhz=1980.0).summary()
    assert row["gpu_clock_mhz"] == 1980.0
    assert set(row) == set(Extended.columns())


def test_summary_row_flattens_nested_records_and_joins_lists():
    row = timing_record().summary()
    assert set(row) == set(TimingRecord.columns())
    assert row["median_ms"] == 2.0 and row["n"] == 3
    assert row["vendor_median_ms"] == 2.5 and row["vendor_drift"] is None
    assert row["noise"] == "CV 0.40 > 0.15; other processes used 0.3 cores"
    assert row["status"] == "ok"
    parity = ParityRecord.ok(KEY, verdict="fail", outputs=[OutputParity(1.0, 0.1, 0.5, 0, 0)])
    prefixed = parity.summary("parity_", with_keys=False)
    assert prefixed["parity_cosine"] == 0.5 and "parity_model" not in prefixed
    empty = ParityRecord.skipped(KEY, "compile failed").summary("parity_", with_keys=False)
    assert empty["parity_cosine"] is None and empty["parity_verdict"] == "not run"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, True), (math.nan, True), (float("nan"), True), (0.0, False), ("", False), (3, False)],
)
def test_missing_recognises_none_and_nan_only(value, expected):
    assert missing(value) is expected
