"""The device check's summary (tools/gpu_check.sh): one table per question, from what the run
left, and nothing else: a number that is not in a record is shown as missing, never filled in.

    python tools/gpu_check_summary.py WORKDIR OUTPUT_DIR

Reads WORKDIR (the workflow's directory, with gpu_check_steps.tsv, nvidia-smi.csv and
pytest.xml beside results/) and OUTPUT_DIR/torch_benchmark.json; writes OUTPUT_DIR/summary.md
and OUTPUT_DIR/summary.json.
"""

from __future__ import annotations

import csv
import json
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _csv(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="") as handle:
            return [
                {k.strip(): (v or "").strip() for k, v in row.items()}
                for row in csv.DictReader(handle)
            ]
    except OSError:
        return []


def steps(work: Path) -> list[dict[str, Any]]:
    rows = []
    for line in (work / "gpu_check_steps.tsv").read_text().splitlines():
        name, rc, seconds = line.split("\t")
        rows.append({"step": name, "exit": int(rc), "seconds": int(seconds)})
    return rows


def tests(work: Path) -> dict[str, Any] | None:
    """Counts from pytest's JUnit XML, and each skip's reason (how many tests gave it)."""
    try:
        root = ElementTree.parse(work / "pytest.xml").getroot()
    except (OSError, ElementTree.ParseError):
        return None
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    reasons: dict[str, int] = {}
    failed = []
    for case in suite.iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        skipped = case.find("skipped")
        if skipped is not None:
            reason = skipped.get("message", "")
            reasons[reason] = reasons.get(reason, 0) + 1
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(name)
    return {**counts, "skip_reasons": reasons, "failed": failed}


def timings(results: Path, bench: dict | None) -> list[dict[str, Any]]:
    benchmark = {(r["precision"], r["batch"]): r for r in (bench or {}).get("rows", [])}
    rows = []
    for path in sorted(results.glob("timings/*/*/*/*/b*.json")):
        record = _json(path) or {}
        # results/timings/<model>/<backend>/<precision>/<shape>/b<N>.json → parity/…/<shape>.json
        key = path.parent.relative_to(results / "timings").parts
        parity = _json(results.joinpath("parity", *key).with_suffix(".json")) or {}
        outputs = parity.get("outputs") or [{}]
        stats = record.get("stats") or {}
        execution = record.get("execution") or {}
        precision, batch = record.get("precision"), record.get("batch")
        theirs = benchmark.get((precision, batch), {}).get("median_ms")
        events = stats.get("median_ms")
        rows.append(
            {
                "backend": record.get("backend"),
                "precision": precision,
                "batch": batch,
                "status": record.get("status"),
                "reason": record.get("reason", ""),
                "events_median_ms": events,
                "events_p99_ms": stats.get("p99_ms"),
                "runs": stats.get("n"),
                "host_median_ms": record.get("host_median_ms"),
                "torch_benchmark_median_ms": theirs,
                "events_over_benchmark": events / theirs if events and theirs else None,
                "timing_clock": execution.get("timing_clock"),
                "execution_precision": record.get("execution_precision"),
                "gpu_in_record": execution.get("gpu") or {},
                "parity": parity.get("verdict"),
                "parity_max_rel": outputs[0].get("max_rel"),
                "parity_cosine": outputs[0].get("cosine"),
                "parity_top1": outputs[0].get("top1"),
            }
        )
    return rows


def comparisons(results: Path) -> list[dict[str, Any]]:
    rows = []
    for path in sorted(results.glob("comparisons/*/cuda/b*.json")):
        record = _json(path) or {}
        for config in record.get("configs", []):
            rows.append(
                {
                    "batch": record.get("batch"),
                    "backend": config.get("backend"),
                    "precision": config.get("precision"),
                    "status": config.get("status"),
                    "rounds": config.get("rounds"),
                    "median_ms": config.get("median_ms"),
                    "speedup": config.get("speedup"),
                    "speedup_ci": [config.get("speedup_ci_low"), config.get("speedup_ci_high")],
                }
            )
    return rows


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "missing"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _table(rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    if not rows:
        return ["(none)"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return lines


def markdown(summary: dict[str, Any]) -> str:
    lines = [f"# deploybench device check, {summary['date']}", ""]
    for gpu in summary["nvidia_smi"] or [{"name": "nvidia-smi gave nothing"}]:
        lines.append("GPU (nvidia-smi): " + ", ".join(f"{k} {v}" for k, v in gpu.items()))
    bench = summary["torch_benchmark"] or {}
    lines += [f"torch {bench.get('torch', 'missing')}, CUDA {bench.get('cuda', 'missing')}", ""]
    lines += ["## Steps", "", *_table(summary["steps"], ["step", "exit", "seconds"]), ""]
    found = summary["tests"]
    lines += ["## gpu-marked tests (pytest -m gpu)", ""]
    if found is None:
        lines.append("no pytest.xml: the tests did not run to the end")
    else:
        lines.append(
            f"{found['tests']} run, {found['failures']} failed, {found['errors']} errors, "
            f"{found['skipped']} skipped"
        )
        lines += [f"- failed: {name}" for name in found["failed"]]
        lines += [f"- skipped ({n}): {reason}" for reason, n in found["skip_reasons"].items()]
    lines += [
        "",
        "## Latency and parity per configuration (ms)",
        "",
        "events: the workflow's CUDA-event median (device time, no copies); host: its host-clock",
        "median (copy in, work, copy out); benchmark: torch.utils.benchmark on the same model.",
        "",
        *_table(
            summary["timings"],
            [
                "backend",
                "precision",
                "batch",
                "status",
                "events_median_ms",
                "host_median_ms",
                "torch_benchmark_median_ms",
                "events_over_benchmark",
                "runs",
                "parity",
                "parity_max_rel",
                "parity_cosine",
                "execution_precision",
            ],
        ),
        "",
        "## Side by side on the GPU (speedup over pytorch_cuda fp32)",
        "",
        *_table(
            summary["comparisons"],
            ["batch", "backend", "precision", "status", "rounds", "median_ms", "speedup"],
        ),
        "",
        "## Not measured",
        "",
        *_table(summary["not_measured"], ["backend", "precision", "batch", "status", "reason"]),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: python tools/gpu_check_summary.py WORKDIR OUTPUT_DIR")
    work, out = Path(sys.argv[1]), Path(sys.argv[2])
    results = work / "results"
    bench = _json(out / "torch_benchmark.json")
    collected = _csv(results / "summary.csv")
    summary = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "nvidia_smi": _csv(work / "nvidia-smi.csv"),
        "steps": steps(work),
        "tests": tests(work),
        "torch_benchmark": bench,
        "timings": timings(results, bench),
        "comparisons": comparisons(results),
        "not_measured": [
            {k: row.get(k) for k in ("backend", "precision", "batch", "status", "reason")}
            for row in collected
            if row.get("status") not in ("ok", None)
        ],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    (out / "summary.md").write_text(markdown(summary))
    print(markdown(summary))


if __name__ == "__main__":
    main()
