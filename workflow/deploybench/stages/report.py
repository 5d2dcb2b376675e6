"""Render the one self-contained HTML report (Jinja2 template, seaborn figures inlined)."""

from __future__ import annotations

import base64
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import hardware
from ..backends import get_backend
from ..backends.base import installed_version
from ..gpu import gpu_facts
from ..io import atomic_path, read_json
from ..records import TUNING_RECORD, missing, summary_columns
from .decide import (
    CROSSCHECK_TOLERANCE,
    comparison_notes,
    crosscheck_note,
    hardware_groups,
    hardware_mismatches,
    recommend,
)

# The workflow's own stack; each backend's packages come from its class.
WORKFLOW_DISTRIBUTIONS = ("onnx", "onnxscript", "onnxsim", "onnxslim", "numpy", "snakemake")


@dataclass(frozen=True)
class Column:
    """One column of the per-model table: its header, the summary columns it shows (two make a
    range), and the significant digits."""

    header: str
    keys: tuple[str, ...]
    digits: int = 3


def result_columns(unit: str) -> tuple[Column, ...]:
    """The per-model table's result columns, throughput in the model's task unit (images/s)."""
    return tuple(
        Column(f"{unit}/s", c.keys, c.digits) if c.keys == ("throughput_per_s",) else c
        for c in RESULT_COLUMNS
    )


def task_facts(spec: dict[str, Any]) -> dict[str, Any]:
    """What the report says of a model's task: its name, throughput unit and input spec."""
    from ..specs import ModelSpec
    from ..tasks import task_for

    model = ModelSpec(**spec)
    task = task_for(model)
    inputs = [f"{i.name} {'×'.join(str(a) for a in i.shape)} {i.dtype}" for i in task.inputs(model)]
    return {
        "task": task.name,
        "unit": task.unit,
        "deploys": task.deploys,
        "measures": [key.split("_", 1)[1].replace("_", " ") for key in task.measure_keys],
        # a part's inputs are what the whole model hands it: the export section lists them
        "inputs": inputs or ["as captured (see the ONNX export)"],
    }


# A model whose fetch failed: no facts, so no task facts either.
UNKNOWN_TASK = {"task": "unknown", "unit": "samples", "deploys": "", "measures": [], "inputs": []}


def group_by_family(models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The models grouped by task (their family), families in order of first appearance."""
    families: dict[str, dict[str, Any]] = {}
    for model in models:
        facts = model["task"]
        family = families.setdefault(facts["task"], {"task": facts["task"], "models": []})
        family["models"].append(model)
    return list(families.values())


# Shown for every row; the rest only for configurations that ran (else their reason).
IDENTITY_COLUMNS = ("backend", "precision", "shape", "batch", "status")
RESULT_COLUMNS = (
    Column("own job: median ms", ("median_ms",)),
    Column("95% CI", ("median_ci_low_ms", "median_ci_high_ms")),
    Column("p90", ("p90_ms",)),
    Column("p99", ("p99_ms",)),
    Column("CV", ("cv",), 2),
    Column("n", ("n",)),
    Column("cold ms", ("cold_ms",)),
    Column("per s", ("throughput_per_s",)),  # headed by the task's unit: see result_columns
    Column("side-by-side ms", ("cmp_median_ms",)),
    Column("speedup", ("cmp_speedup",)),
    Column("speedup CI", ("cmp_speedup_ci_low", "cmp_speedup_ci_high")),
    Column("parity", ("parity_verdict",)),
    Column("executes as", ("execution_precision",)),
    Column("compile s", ("compile_seconds",)),
    Column("artifact MB", ("artifact_mb",)),
    Column("note", ("note",)),
)


def crosscheck_rows(summary) -> list[dict[str, Any]]:
    rows = summary[summary.vendor_tool.notna()]
    result = []
    for row in rows.to_dict("records"):
        row["explanation"] = crosscheck_note(row.get("vendor_ratio"), row.get("vendor_drift"))
        row["ours_after_ms"] = row.get("vendor_ours_after_ms")
        result.append(row)
    return result


def versions(backends: list[str]) -> dict[str, str]:
    """Versions of the workflow's stack and of every package the run's backends declare."""
    names = list(WORKFLOW_DISTRIBUTIONS)
    for backend in backends:
        names += get_backend(backend).distributions
    return {name: installed_version(name) or "not installed" for name in dict.fromkeys(names)}


def backend_facts(backends: list[str]) -> list[dict[str, Any]]:
    """What the report says about each backend of the run: all of it from the backend class."""
    facts = []
    for name in backends:
        backend = get_backend(name)
        facts.append(
            {
                "name": name,
                "device": backend.device,
                "packages": ", ".join(
                    f"{dist} {installed_version(dist) or 'not installed'}"
                    for dist in backend.distributions
                ),
                "vendor_tool": backend.vendor_tool or "",
                "role": "baseline and parity reference" if backend.baseline else "",
                "install": backend.install_hint(),
            }
        )
    return facts


def _row_notes(frame) -> list[str]:
    notes = []
    for row in frame.to_dict("records"):
        parts = []
        if not missing(row.get("noisy")) and bool(row["noisy"]):
            parts.append(f"noisy: {row['noise']}")
        if not missing(row.get("vendor_median_ms")):
            parts.append(f"{row['vendor_tool']}: {_fmt(row['vendor_median_ms'])} ms")
        notes.append("; ".join(parts))
    return notes


def table_rows(rows) -> list[dict[str, Any]]:
    """The rows of the per-model table, with the display-only columns it shows."""
    rows = rows.copy()
    rows["artifact_mb"] = rows.compile_artifact_bytes / 1e6
    rows["note"] = _row_notes(rows) if len(rows) else []
    return rows.to_dict("records")


def _figure_to_data_uri(figure) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _vendor_tools(summary) -> dict[str, str]:
    """Backend → its vendor tool, for the backends of this run that declare one."""
    tools = {}
    for backend in summary.backend.drop_duplicates():
        tool = get_backend(backend).vendor_tool
        if tool:
            tools[backend] = tool
    return tools


def config_labels(frame):
    # frame.shape is the DataFrame's size, hence the item access.
    return frame["backend"] + " " + frame["precision"] + " " + frame["shape"]


def _rows_figure(plt, rows):
    """A figure with one horizontal band per configuration, tall enough to read every label."""
    return plt.subplots(figsize=(9, 0.35 * len(rows) + 1.5))


def _pyplot():
    """pyplot and seaborn, headless, in the report's theme."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    return plt, sns


FAILS_PARITY = "  ✗ fails parity"


def figure_rows(rows):
    """The configurations that ran, each labelled as the figures name it."""
    ok = rows[rows.status == "ok"].copy()
    # a fast configuration whose outputs fail parity must not read as a win
    failing = ok["parity_verdict"].eq("fail").map({True: FAILS_PARITY, False: ""})
    ok["config"] = config_labels(ok) + failing
    ok["batch"] = ok["batch"].astype(int)
    return ok


def speedup_bars(rows) -> tuple[list[str], list[dict[str, Any]]]:
    """The speedup figure's data, from ``figure_rows``: its row labels from top to bottom (the
    largest speedup first), and one bar per configuration and batch, placed in its label's band,
    with its whisker as matplotlib takes it (the distances from the bar's end to the CI's)."""
    rows = rows[rows.cmp_speedup.notna()]
    order = list(rows.groupby("config").cmp_speedup.max().sort_values(ascending=False).index)
    batches = sorted(rows.batch.unique())
    height = 0.8 / len(batches) if batches else 0.0
    position = {config: i for i, config in enumerate(order)}
    bars = []
    for index, batch in enumerate(batches):
        for row in rows[rows.batch == batch].to_dict("records"):
            bars.append(
                {
                    "config": row["config"],
                    "batch": int(batch),
                    "y": position[row["config"]] - 0.4 + height * (index + 0.5),
                    "height": height,
                    "speedup": row["cmp_speedup"],
                    "error_below": row["cmp_speedup"] - row["cmp_speedup_ci_low"],
                    "error_above": row["cmp_speedup_ci_high"] - row["cmp_speedup"],
                }
            )
    return order, bars


def latency_boxes(model: str, latencies):
    """The latency figure's data: its row labels from top to bottom (the lowest median latency
    first) and every measured iteration of ``model`` as (config, batch, latency_ms)."""
    lat = latencies[latencies.model == model].copy()
    if lat.empty:
        return [], lat
    lat["config"] = config_labels(lat)
    lat["batch"] = lat["batch"].astype(int)
    order = list(lat.groupby("config").latency_ms.median().sort_values().index)
    return order, lat[["config", "batch", "latency_ms"]]


def throughput_lines(rows):
    """The throughput figure's points, from ``figure_rows``: one line per backend and precision
    (one style per shape) over the batch sizes; none with a single batch size (no curve)."""
    lines = rows.assign(family=rows.backend + " " + rows.precision)
    lines = lines[["family", "shape", "batch", "throughput_per_s"]]
    return lines if rows.batch.nunique() > 1 else lines.iloc[:0]


def _plots(model: str, rows, latencies) -> dict[str, str]:
    plt, sns = _pyplot()
    figures: dict[str, str] = {}
    ok = figure_rows(rows)
    if ok.empty:
        return figures

    labels, bars = speedup_bars(ok)
    if bars:
        figures["speedup"] = _figure_to_data_uri(_speedup_figure(plt, sns, model, labels, bars))

    order, lat = latency_boxes(model, latencies)
    if order:
        figures["latency"] = _figure_to_data_uri(_latency_figure(plt, sns, model, order, lat))

    lines = throughput_lines(ok)
    if not lines.empty:
        figures["throughput"] = _figure_to_data_uri(_throughput_figure(plt, sns, model, lines))
    return figures


def _speedup_figure(plt, sns, model: str, labels: list[str], bars: list[dict[str, Any]]):
    """Paired speedups from the side-by-side comparison, with their CIs over rounds."""
    batches = sorted({bar["batch"] for bar in bars})
    colours = dict(zip(batches, sns.color_palette("viridis", len(batches)), strict=True))
    fig, ax = _rows_figure(plt, labels)
    for batch in batches:
        part = [bar for bar in bars if bar["batch"] == batch]
        y = [bar["y"] for bar in part]
        speedup = [bar["speedup"] for bar in part]
        error = [[bar["error_below"] for bar in part], [bar["error_above"] for bar in part]]
        height = part[0]["height"]
        ax.barh(y, speedup, height=height, color=colours[batch], label=f"batch {batch}")
        ax.errorbar(speedup, y, xerr=error, fmt="none", ecolor="black", capsize=2)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.axvline(1.0, color="black", lw=1, ls="--")
    ax.legend(loc="lower right")
    ax.set(
        xlabel="speedup over the baseline: median of per-round paired ratios, 95% CI over rounds",
        ylabel="",
        title=f"{model}: speedup (side-by-side comparison)",
    )
    return fig


def _latency_figure(plt, sns, model: str, order: list[str], lat):
    fig, ax = _rows_figure(plt, order)
    sns.boxplot(
        data=lat,
        y="config",
        x="latency_ms",
        hue="batch",
        order=order,
        ax=ax,
        palette="viridis",
        showfliers=True,
        fliersize=1.5,
        orient="h",
    )
    ax.set_xscale("log")
    ax.set(
        xlabel="latency per batch, ms (log scale; every measured iteration)",
        ylabel="",
        title=f"{model}: latency distributions",
    )
    return fig


def _throughput_figure(plt, sns, model: str, lines):
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(7, 4))
    sns.lineplot(
        data=lines,
        x="batch",
        y="throughput_per_s",
        hue="family",
        style="shape",
        markers=True,
        ax=ax,
    )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="batch size",
        ylabel="images / s (batch / median)",
        title=f"{model}: throughput vs batch",
    )
    batches = sorted(lines.batch.unique())
    ax.set_xticks(batches, [str(b) for b in batches])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.legend(fontsize="small", bbox_to_anchor=(1.02, 1), loc="upper left")
    return fig


def tuning_rows(tuning_dirs: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per tuned model: what tuning cost and bought, and the points of its latency curve."""
    rows, curve = [], []
    for folder in sorted(tuning_dirs):
        facts = read_json(Path(folder) / TUNING_RECORD)
        model = Path(folder).parent.name
        settings = facts.get("settings", {})
        row: dict[str, Any] = {
            "model": model,
            "status": facts.get("status", "failed"),
            "trials_per_task": settings.get("trials_per_task"),
            "note": facts.get("reason", ""),
        }
        if row["status"] == "ok":
            tasks = facts["tasks"]
            tuned = sum(1 for t in tasks if t["trials"] or t["seed_records"])
            failed = sum(t.get("failed_trials", 0) for t in tasks)
            target = facts["target"]
            measured = next(iter(facts.get("measured", {}).values()), {})
            untuned, tuned_run = measured.get("untuned", {}), measured.get("tuned", {})
            row.update(
                target=f"{target['kind']} -mcpu={target['mcpu']} -num-cores={target['num-cores']}",
                trials=facts["trials"],
                tasks_tuned=f"{tuned}/{len(tasks)}",
                seed=(
                    f"{facts['seed_records_imported']} records, {facts['tasks_from_seed']} tasks "
                    f"not re-tuned ({settings['seed_database']})"
                    if settings.get("seed_database")
                    else "none"
                ),
                tuning_seconds=facts["tuning_seconds"],
                batch=untuned.get("batch"),
                untuned_ms=untuned.get("median_ms"),
                tuned_ms=tuned_run.get("median_ms"),
                iterations=untuned.get("iterations"),
                gain=(
                    untuned["median_ms"] / tuned_run["median_ms"]
                    if untuned.get("median_ms") and tuned_run.get("median_ms")
                    else None
                ),
                note="; ".join(
                    n
                    for n in (
                        "wall-clock cap reached: compiled with what it had"
                        if facts.get("hit_wall_clock_cap")
                        else "",
                        f"{len(tasks) - tuned} task(s) without any trial run TVM's default code"
                        if tuned < len(tasks)
                        else "",
                        f"{failed} candidate(s) failed to build or run (see the tuning log)"
                        if failed
                        else "",
                    )
                    if n
                ),
            )
            curve += [{"model": model, **point} for point in facts.get("budget_curve", [])]
        rows.append(row)
    return rows, curve


def _tuning_figure(curve: list[dict[str, Any]]) -> str | None:
    if not curve:
        return None
    import pandas as pd

    plt, sns = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    sns.lineplot(
        data=pd.DataFrame(curve),
        x="trials_per_task",
        y="estimate_ms",
        hue="model",
        marker="o",
        ax=ax,
    )
    ax.set_yscale("log")
    ax.set(
        xlabel="trials per task (each operator's best of its first k candidates)",
        ylabel="model latency, ms (sum of best operator times; log)",
        title="TVM: what MetaSchedule trials bought",
    )
    return _figure_to_data_uri(fig)


def _range(low_column, high_column) -> tuple[float, float] | None:
    low, high = low_column.min(), high_column.max()
    return None if missing(low) or missing(high) else (low, high)


def timing_conditions(summary) -> dict[str, Any]:
    """What the report says about the conditions of the timings that ran: how many were noisy,
    the most CPU other processes took, and the range of the clock and the load around them."""
    timed = summary[summary.status == "ok"]
    return {
        "noisy_count": int(timed.noisy.eq(True).sum()),
        "timed_count": len(timed),
        "max_foreign_cpu": timed.foreign_cpu.max(),
        "mhz_range": _range(timed.cpu_mhz_before, timed.cpu_mhz_after),
        "load_range": _range(timed.load_average_before, timed.load_average_after),
    }


def problem_rows(summary) -> list[dict[str, Any]]:
    """What did not run, one row per model, backend, precision, status and reason, with the
    shapes it concerns."""
    return (
        summary[summary.status != "ok"]
        .groupby(["model", "backend", "precision", "status", "reason"], sort=True)["shape"]
        .agg(lambda shapes: ", ".join(dict.fromkeys(shapes)))
        .reset_index()
        .to_dict("records")
    )


def parity_table_rows(summary) -> list[dict[str, Any]]:
    """One row per configuration whose parity was checked: parity is checked once per graph,
    whatever the batch sizes it was timed at."""
    return (
        summary[summary.parity_status.notna()]
        .drop_duplicates(["model", "backend", "precision", "shape"])
        .to_dict("records")
    )


def _fmt(value: Any, digits: int = 3) -> str:
    """Numbers as a reader wants them: significant digits, no exponent between 1e-4 and 1e6."""
    if missing(value):
        return ""
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-4 or abs(value) >= 1e6):
            return f"{value:.{digits - 1}e}"
        if abs(value) >= 10**digits:
            return f"{value:.0f}"
        return f"{value:.{digits}g}"
    return str(value)


def render_report(
    summary_csv: str,
    latencies_csv: str,
    rounds_csv: str,
    onnx_fact_paths: list[str],
    model_fact_paths: list[str],
    timing: dict[str, Any],
    threads: int,
    out_html: str,
    tuning_dirs: list[str] = (),
    selection: str = "",
) -> None:
    import jinja2
    import pandas as pd

    summary = pd.read_csv(summary_csv).reindex(columns=summary_columns())
    latencies = pd.read_csv(latencies_csv)
    rounds = pd.read_csv(rounds_csv)

    model_facts = {}
    for path in model_fact_paths:
        facts = read_json(path)
        model_facts[facts["spec"]["name"]] = facts
    onnx_facts = []
    for path in sorted(p for p in onnx_fact_paths if p.endswith("simplify.json")):
        folder = Path(path).parent
        export = read_json(folder.parent / "export.json")
        simplified = read_json(path)
        onnx_facts.append(
            {
                "model": folder.parent.name,
                "shape": folder.name,
                "export": export,
                "simplify": simplified,
            }
        )

    models = []
    for model in summary.model.drop_duplicates():
        rows = summary[summary.model == model]
        facts = model_facts.get(model, {})
        pretrained = bool(facts.get("pretrained", False))
        task = task_facts(facts["spec"]) if facts else UNKNOWN_TASK
        models.append(
            {
                "name": model,
                "facts": facts,
                "task": task,
                "columns": result_columns(task["unit"]),
                "pretrained": pretrained,
                "recommendations": recommend(rows, rounds, pretrained),
                "comparison_notes": comparison_notes(rows),
                # skips are listed once, grouped, under "Failures and skips"
                "rows": table_rows(rows[rows.status != "skipped"]),
                "figures": _plots(model, rows, latencies),
            }
        )

    families = group_by_family(models)
    parity_rows = parity_table_rows(summary)
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("deploybench", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
    )
    tunings, curve = tuning_rows(list(tuning_dirs))
    env.filters["fmt"] = _fmt
    env.tests["missing"] = missing
    html = env.get_template("report.html.j2").render(
        generated=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        families=families,
        crosschecks=crosscheck_rows(summary),
        crosscheck_tolerance=CROSSCHECK_TOLERANCE,
        vendor_tools=_vendor_tools(summary),
        identity_columns=IDENTITY_COLUMNS,
        baselines=sorted(summary.cmp_baseline.dropna().unique()),
        parity_rows=parity_rows,
        accuracy_rows=[r for r in parity_rows if not missing(r.get("parity_accuracy_images"))],
        problems=problem_rows(summary),
        onnx_facts=onnx_facts,
        tunings=tunings,
        tuning_curve=_tuning_figure(curve),
        host={**hardware.describe(), "gpu": gpu_facts()},
        hardware_groups=hardware_groups(summary),
        hardware_mismatches=hardware_mismatches(summary),
        versions=versions(list(summary.backend.drop_duplicates())),
        backends=backend_facts(list(summary.backend.drop_duplicates())),
        threads=threads,
        selection=selection,
        timing=timing,
        **timing_conditions(summary),
    )
    with atomic_path(out_html) as tmp:
        tmp.write_text(html)
