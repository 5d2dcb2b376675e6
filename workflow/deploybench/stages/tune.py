"""Tune one model for a backend that compiles from a tuning database (TVM's MetaSchedule).

The tuning runs in a supervised child like every backend's work: a crash, a hang past the
compile time limit or an exhausted memory cap leaves a ``tuning.json`` that says so, and the
compile of that model fails with that reason instead of the whole workflow stopping.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

from ..backends import get_backend
from ..feeds import cycled, load_feeds
from ..io import atomic_dir, write_json
from ..isolation import ChildDied, Limits, phase, run_isolated
from ..onnx_tools import input_batch
from ..records import HARD_ERRORS, TUNING_RECORD
from ..specs import LimitSettings, TuningSettings
from .common import job_log_path, stage_limits
from .onnx import graph_failure

log = logging.getLogger("deploybench")

# Whole-model runs behind the "untuned vs tuned" figures (the comparisons time the tuned one
# properly; these say what tuning bought, at the smallest batch).
WHAT_TUNING_BOUGHT_ITERATIONS = 5


def tune_model(
    graphs: list[str],
    evaluation_npz: str,
    tuning: TuningSettings,
    threads: int,
    limits: LimitSettings,
    out_dir: str,
) -> None:
    """Tune ``graphs`` (one model's static-batch ONNX graphs) into the folder ``out_dir``."""
    with atomic_dir(out_dir) as tmp:
        work = functools.partial(
            _tune_or_failure, [Path(g) for g in graphs], Path(evaluation_npz), tuning, threads, tmp
        )
        try:
            facts = run_isolated(work, tuning_limits(limits, tuning), job_log_path())
        except ChildDied as death:
            log.error("tuning: %s", death)
            facts = {"status": "failed", "reason": str(death)}
        if facts["status"] != "ok":  # a tuning that finished wrote its own facts
            write_json(tmp / TUNING_RECORD, {**facts, "settings": tuning.params()})


def tuning_limits(limits: LimitSettings, tuning: TuningSettings) -> Limits:
    """The tuning child's limits: its own wall-clock cap plus a compile's worth of time (the
    compiles and runs around the tuning), or none when the tuning is uncapped."""
    compile_limits = stage_limits(limits, "compile")
    if tuning.max_minutes is None:
        return Limits(seconds=None, memory_mb=compile_limits.memory_mb)
    return Limits(
        seconds=tuning.max_minutes * 60 + compile_limits.seconds,
        memory_mb=compile_limits.memory_mb,
    )


def _tune_or_failure(*args: Any) -> dict[str, Any]:
    """The tuning facts; TVM's own error becomes a failed tuning (the user's error is raised)."""
    try:
        return _tune(*args)
    except HARD_ERRORS:
        raise
    except Exception as exc:
        log.exception("tuning failed")
        return {"status": "failed", "reason": f"{type(exc).__name__}: {exc}".splitlines()[0]}


def _tune(
    graphs: list[Path], evaluation_npz: Path, tuning: TuningSettings, threads: int, out_dir: Path
) -> dict[str, Any]:
    from ..backends import tvm

    failures = [failure for graph in graphs if (failure := graph_failure(graph))]
    if failures:
        return {"status": "failed", "reason": failures[0]}
    backend = get_backend("tvm")
    phase("tune")
    smallest = min(graphs, key=lambda g: input_batch(g) or 0)

    def measure(graph: Path, tuning_dir: Path | None, target: dict) -> dict[str, Any]:
        data = cycled(load_feeds(evaluation_npz), input_batch(graph) or 1)
        lib = tvm.build_library(graph, tuning_dir, target)
        return tvm.time_library(
            lib, tvm.in_graph_order(data, graph), threads, WHAT_TUNING_BOUGHT_ITERATIONS
        )

    return backend.tune(
        graphs, out_dir, tuning, threads, measure=measure, measure_graphs=[smallest]
    )


def tuning_failure(tuning_dir: str | Path) -> str | None:
    """Why the tuning failed, or None when it produced a database."""
    from ..io import read_json

    facts = read_json(Path(tuning_dir) / TUNING_RECORD)
    return None if facts.get("status") == "ok" else f"tuning failed: {facts.get('reason')}"
