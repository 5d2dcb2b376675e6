"""Apache TVM (Relax) on the CPU: fp32 compiled with a MetaSchedule tuning database.

The model is imported with Relax's ONNX frontend at a static batch (MetaSchedule tunes static
shapes only), fused with the "zero" pipeline, tuned in its own stage (:func:`tune`, the
``tune_tvm`` rule) and compiled with that stage's database; operators the database does not
cover keep TVM's default (unscheduled) code, which is what ``trials_per_task: 0`` gives for all.

The target is the host CPU as LLVM names it, with the timing thread count as ``num-cores``; the
tuning stage chooses it and writes it beside its database, and the compile reads it from there,
so tuning records and the code built from them always agree.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, InputFileError
from ..feeds import in_order
from ..io import write_json
from ..records import TUNING_RECORD
from ..specs import TuningSettings
from .base import Backend, Runner

log = logging.getLogger("deploybench")

LIBRARY_FILE = "model.so"
TARGET_FILE = "target.json"
OUTPUTS_FILE = "outputs.json"
INPUTS_FILE = "inputs.json"
# What a MetaSchedule JSON database folder holds (tvm.s_tir.meta_schedule.database.JSONDatabase).
WORKLOAD_FILE = "database_workload.json"
RECORD_FILE = "database_tuning_record.json"

# Measured with tvm 0.27 (tests/backends/test_tvm.py re-checks it on every run of the tests):
# the Relax ONNX frontend imports QuantizeLinear/DequantizeLinear as dequantize -> fp32
# convolution, so a QDQ model would run fp32 arithmetic plus conversions, labelled int8.
INT8_REASON = (
    "TVM's Relax ONNX frontend dequantizes Q/DQ weights and activations and convolves in fp32: "
    "no int8 arithmetic to measure"
)
# Per candidate build: MetaSchedule's own default. (It timed out every build here only while the
# stock build function imported tvm.s_tir.tensor_intrin in each fresh worker, which ours does
# not.) A typical candidate builds in about a second; a heavily unrolled one can hold LLVM for
# minutes (seen: 300 s for an EfficientNet stem convolution; a ResNet-18 one ran into the former
# 60 s limit), time the rest of the round waits for.
BUILD_TIMEOUT_S = 30.0
RUN_TIMEOUT_S = 120.0
# A builder worker is replaced after this many builds (the stock builder: after every round).
BUILDS_PER_WORKER = 64


@dataclass(frozen=True)
class TvmOptions:
    #: PassContext opt_level of the final build (compile only: changing it does not re-tune).
    opt_level: int = 3

    def __post_init__(self) -> None:
        if not 0 <= self.opt_level <= 3:
            raise ValueError("opt_level must be 0..3")


def host_target(threads: int, mcpu: str | None = None) -> dict[str, Any]:
    """The LLVM target for this CPU, tuned for ``threads`` cores."""
    from tvm.target import codegen

    return {"kind": "llvm", "mcpu": mcpu or codegen.llvm_get_system_cpu(), "num-cores": threads}


def import_onnx(path: Path):
    """The Relax module of a static-batch ONNX graph (TVM's frontend errors pass through)."""
    from tvm.relax.frontend.onnx import from_onnx

    from ..onnx_tools import input_batch, load_onnx

    model = load_onnx(path)
    if input_batch(path) is None:
        raise ConfigError(
            f"{path}: TVM is tuned and compiled at a static batch; this graph's is free"
        )
    return from_onnx(model, keep_params_in_input=False)


def prepare(mod, target_spec: dict[str, Any]):
    """Decompose inference-only ops, fuse, and mark the weights as free to re-layout: the form
    both tuning and compiling start from.

    The weights (constants here) marked layout-free let MetaSchedule's schedules read each
    weight in the tiled order they compute in (its CPU rules rewrite their layout); the compile
    then packs them once (:func:`pack_weights`). This is ``static_shape_tuning``'s
    ``cpu_weight_prepack``. Measured (docs/tvm.md): the tuned operators were faster with it;
    the whole model once faster, once slower, within tuning's run-to-run spread.
    """
    import tvm
    from tvm import relax

    target = tvm.target.Target(target_spec)
    with target:
        return tvm.transform.Sequential(
            [
                relax.transform.DecomposeOpsForInference(),
                relax.transform.CanonicalizeBindings(),
                relax.get_pipeline("zero"),
                relax.transform.AttachAttrLayoutFreeBuffers(),
            ]
        )(mod)


def pack_weights(mod):
    """Move each tuned operator's weight re-layout out of the operator and fold it into the
    constant: the library carries packed weights and no run repeats the packing."""
    import tvm
    from tvm import relax

    return tvm.transform.Sequential(
        [relax.transform.SplitLayoutRewritePreproc(), relax.transform.FoldConstant()]
    )(mod)


def graph_output_names(path: Path) -> list[str]:
    import onnx

    return [output.name for output in onnx.load(str(path), load_external_data=False).graph.output]


def in_graph_order(feeds: Mapping[str, np.ndarray], path: Path) -> list[np.ndarray]:
    """The feeds as the graph at ``path`` takes them: by position, in its input order."""
    return in_order(feeds, graph_input_names(path), str(path))


def graph_input_names(path: Path) -> list[str]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    constants = {initializer.name for initializer in graph.initializer}
    return [graph_input.name for graph_input in graph.input if graph_input.name not in constants]


def load_prepared(path: Path, target_spec: dict[str, Any]):
    return prepare(import_onnx(path), target_spec)


# ---------------------------------------------------------------- the tuning database


def read_database(folder: Path, target_spec: dict[str, Any]) -> list:
    """The records of an existing MetaSchedule JSON database, checked: readable, and tuned
    for this target.

    A corrupt or foreign database is an error naming its file (a silent re-tune would throw
    away what the user pointed us at).
    """
    from tvm.s_tir.meta_schedule.database import JSONDatabase

    folder = Path(folder)
    for name in (WORKLOAD_FILE, RECORD_FILE):
        if not (folder / name).is_file():
            raise InputFileError(
                f"{folder / name} is missing: tuning.tvm.seed_database must be a MetaSchedule "
                "database folder (database_workload.json + database_tuning_record.json)"
            )
    try:
        database = JSONDatabase(
            path_workload=str(folder / WORKLOAD_FILE),
            path_tuning_record=str(folder / RECORD_FILE),
            allow_missing=False,
        )
        records = list(database.get_all_tuning_records())
    except Exception as exc:  # tvm raises its own error types for unparsable files
        raise InputFileError(
            f"{folder / RECORD_FILE} is not a readable MetaSchedule database ({exc}): "
            "point tuning.tvm.seed_database at a database tuned by TVM, or remove it"
        ) from None
    wanted = _target_identity(target_spec)
    foreign = {str(r.target) for r in records if _target_identity(r.target) != wanted}
    if foreign:
        raise InputFileError(
            f"{folder / RECORD_FILE} was tuned for another target ({sorted(foreign)[0]}), "
            f"not {wanted}: schedules do not carry over; use a database tuned on this CPU type"
        )
    return records


def _target_identity(target) -> str:
    """Kind, CPU and core count: what decides whether a schedule carries over."""
    import tvm

    if not isinstance(target, tvm.target.Target):
        target = tvm.target.Target(target)
    attrs = target.attrs
    return (
        f"{target.kind.name} -mcpu={attrs.get('mcpu', '')} -num-cores={attrs.get('num-cores', '')}"
    )


@dataclass
class TuningProgress:
    """Every candidate MetaSchedule measured, per task, in the order measured (ms; inf: it
    failed to build or run), and a point of the time curve after each task's round. Trials,
    bests and estimates are all read from that history."""

    weights: list[float]
    started: float = field(default_factory=time.perf_counter)
    history: dict[int, list[float]] = field(default_factory=dict)
    curve: list[dict[str, Any]] = field(default_factory=list)
    deadline: float | None = None
    hit_cap: bool = False

    @property
    def trials(self) -> int:
        return sum(len(h) for h in self.history.values())

    def best_ms(self, task_id: int) -> float | None:
        best = min(self.history.get(task_id) or [float("inf")])
        return best if np.isfinite(best) else None

    def failed(self, task_id: int) -> int:
        """Candidates of the task that failed to build or run."""
        return sum(1 for ms in self.history.get(task_id, []) if not np.isfinite(ms))

    def estimate_ms(self, trials_per_task: int | None = None) -> float | None:
        """The model latency MetaSchedule's measurements add up to (each task's best of its
        first ``trials_per_task``, or of all, weighted); None until every task has one."""
        if not self.weights or len(self.history) < len(self.weights):
            return None
        total = sum(self.weights[i] * min(h[:trials_per_task]) for i, h in self.history.items())
        return total if np.isfinite(total) else None

    def observe(self, task_id: int, run_secs: Iterable[list[float] | None]) -> None:
        self.history.setdefault(task_id, []).extend(
            float(np.mean(seconds)) * 1e3 if seconds else float("inf") for seconds in run_secs
        )
        elapsed = time.perf_counter() - self.started
        estimate = self.estimate_ms()
        self.curve.append(
            {"trials": self.trials, "seconds": round(elapsed, 2), "estimate_ms": estimate}
        )
        log.info(
            "tuning: %d/%d tasks measured, %d trials, %.0f s, model estimate %s",
            len(self.history),
            len(self.weights),
            self.trials,
            elapsed,
            "n/a (a task has no trial yet)" if estimate is None else f"{estimate:.2f} ms",
        )

    def budget_curve(self) -> list[dict[str, float]]:
        """What each budget per task would have bought: the estimate from every task's first
        k trials, for every k up to the longest history."""
        longest = max((len(h) for h in self.history.values()), default=0)
        points = ((k, self.estimate_ms(k)) for k in range(1, longest + 1))
        return [{"trials_per_task": k, "estimate_ms": e} for k, e in points if e is not None]

    def over_time(self) -> bool:
        return self.deadline is not None and time.perf_counter() > self.deadline


def _measure_callback(progress: TuningProgress):
    from tvm.ir.utils import derived_object
    from tvm.s_tir.meta_schedule.measure_callback import PyMeasureCallback

    @derived_object
    class Progress(PyMeasureCallback):
        def apply(self, task_scheduler, task_id, measure_candidates, builder_results, results):
            run_secs = [None if r.error_msg else [float(s) for s in r.run_secs] for r in results]
            for failed in (r for r in results if r.error_msg):
                # a candidate that fails to build or run counts as a trial without a time
                log.warning(
                    "tuning: a candidate of task %d failed: %s",
                    task_id,
                    str(failed.error_msg).strip().splitlines()[0][:300],
                )
            progress.observe(task_id, run_secs)
            if progress.over_time() and not progress.hit_cap:
                progress.hit_cap = True
                log.warning("tuning: wall-clock cap reached, stopping with what it has")
                for i, task in enumerate(task_scheduler.tasks_):
                    if not task.is_terminated:
                        task_scheduler.terminate_task(i)

    return Progress()


def build_without_tensor_intrinsics(mod, target, _params):
    """MetaSchedule's default build, minus its import of tvm.s_tir.tensor_intrin (which takes
    ~30 s in every fresh builder worker and is needed only for tensor-core style schedules)."""
    from tvm.driver import build as tvm_build
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    mod = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod)
    return tvm_build(mod, target=target)


def _pooled_builder(workers: int):
    """MetaSchedule's local builder, with its worker processes kept across rounds.

    The stock LocalBuilder starts fresh workers for every round (to bound a memory leak of
    long-lived workers); each imports TVM, and with it torch, which costs ~6 s of a 2-core
    machine per round, as much as building the round's candidates. Here a worker is replaced
    after ``BUILDS_PER_WORKER`` builds instead, and after a timeout, as the pool does anyway.
    The build itself is the stock one (``_worker_func``, our build function, the default
    export).
    """
    from tvm.ir.utils import derived_object
    from tvm.s_tir.meta_schedule.builder import BuilderResult, PyBuilder
    from tvm.s_tir.meta_schedule.builder.local_builder import _serialize_params
    from tvm.support.popen_pool import PopenPoolExecutor, StatusKind

    @derived_object
    class PooledBuilder(PyBuilder):
        def __init__(self) -> None:
            super().__init__()
            self.pool = PopenPoolExecutor(
                max_workers=workers,
                timeout=BUILD_TIMEOUT_S,
                maximum_process_uses=BUILDS_PER_WORKER,
            )

        def build(self, build_inputs):
            jobs = [
                (
                    build_without_tensor_intrinsics,
                    None,
                    b.mod,
                    b.target,
                    _serialize_params(b.params),
                )
                for b in build_inputs
            ]
            results = []
            for outcome in self.pool.map_with_error_catching(_run_build, jobs):
                if outcome.status == StatusKind.COMPLETE:
                    results.append(BuilderResult(outcome.value, None))
                elif outcome.status == StatusKind.TIMEOUT:
                    results.append(
                        BuilderResult(None, f"build timed out after {BUILD_TIMEOUT_S:.0f} s")
                    )
                else:
                    results.append(BuilderResult(None, f"build failed: {outcome.value}"))
            return results

        def shutdown(self) -> None:
            self.pool.shutdown()

    return PooledBuilder()


def _run_build(job):
    from tvm.s_tir.meta_schedule.builder.local_builder import _worker_func

    return _worker_func(*job)


def _dedupe(tasks) -> tuple[list, list[int]]:
    """Tasks with structurally identical workloads (e.g. a layer shared by two batch sizes or
    two models) merged: one task, weights summed, so no workload is tuned twice."""
    import tvm_ffi

    unique: list = []
    weights: list[int] = []
    for task in tasks:
        for i, seen in enumerate(unique):
            if tvm_ffi.structural_equal(seen.dispatched[0], task.dispatched[0]):
                weights[i] += task.weight
                break
        else:
            unique.append(task)
            weights.append(task.weight)
    return unique, weights


def _import_tensor_intrinsics() -> None:
    """Import tvm.s_tir.tensor_intrin, as every MetaSchedule TuneContext does, in seconds
    instead of a minute.

    Its TVMScript parser calls ``inspect.stack()`` for each of its ~250 intrinsics, and inspect
    looks up the module of every frame; for the import system's frozen frames (no
    ``__file__``) that lookup misses inspect's file cache and rescans all of ``sys.modules``
    (~2000 with torch loaded, which tvm_ffi imports) each time: 71 s here, before the first
    trial of every tuning job. Entering those frames' file names in that cache, as inspect
    does for every module with a file, gives the same answers and took the import to 9 s.
    """
    import importlib._bootstrap
    import importlib._bootstrap_external
    import inspect

    for module in (importlib._bootstrap, importlib._bootstrap_external):
        inspect.modulesbyfile.setdefault(f"<frozen {module.__name__}>", module.__name__)
    import tvm.s_tir.tensor_intrin  # noqa: F401


def _tune_contexts(tasks, strategy, threads: int) -> list:
    """One MetaSchedule context per task, as ``extracted_tasks_to_tune_contexts`` makes them,
    but logging to our job log: that helper reconfigures Python logging process-wide (and
    fails the second time in one process when other handlers are installed)."""
    from tvm.s_tir.meta_schedule import TuneContext
    from tvm.s_tir.meta_schedule.utils import fork_seed

    _import_tensor_intrinsics()
    task_log = logging.getLogger("deploybench.tvm.task")
    task_log.setLevel(logging.WARNING)  # per-task design spaces and traces: megabytes
    return [
        TuneContext(
            mod=task.dispatched[0],
            target=task.target,
            space_generator="post-order-apply",
            search_strategy=strategy,
            task_name=task.task_name,
            logger=task_log,
            rand_state=seed,
            num_threads=threads,
        ).clone()
        for task, seed in zip(tasks, fork_seed(0, n=len(tasks)), strict=True)
    ]


def tune(
    graphs: list[Path],
    out_dir: Path,
    settings: TuningSettings,
    threads: int,
    measure: Callable[[Path, Path | None, dict], dict] | None = None,
    measure_graphs: list[Path] | None = None,
) -> dict[str, Any]:
    """Tune every task of ``graphs`` (one model's static-batch graphs) into ``out_dir``.

    Writes the MetaSchedule database, the target and the tuning facts (``tuning.json``: tasks,
    trials, the latency curves, where the records came from) there, and returns the facts.
    With ``measure``, also what tuning bought: ``measure(graph, database folder or None,
    target)`` for ``measure_graphs``.
    """
    import tvm
    from tvm.s_tir import meta_schedule as ms

    out_dir = Path(out_dir)
    target_spec = host_target(threads)
    target = tvm.target.Target(target_spec)
    seed_records = []
    if settings.seed_database:
        seed_records = read_database(Path(settings.seed_database), target_spec)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / TARGET_FILE).write_text(json.dumps(target_spec, sort_keys=True))

    modules = {Path(g): load_prepared(Path(g), target_spec) for g in graphs}
    extracted = [
        t for mod in modules.values() for t in ms.relax_integration.extract_tasks(mod, target)
    ]
    tasks, weights = _dedupe(extracted)
    database = ms.database.JSONDatabase(work_dir=str(out_dir))
    # Seed records go into our own database, so compile needs nothing outside this folder.
    seeded = _import_seed(database, seed_records)
    seeded_trials = [seeded.get(_workload_key(t.dispatched[0]), 0) for t in tasks]
    to_tune = [i for i, count in enumerate(seeded_trials) if count < settings.trials_per_task]
    log.info(
        "tuning %d graph(s): %d tasks extracted, %d distinct, %d already tuned in the seed "
        "database, %d trials per task, cap %s",
        len(modules),
        len(extracted),
        len(tasks),
        len(tasks) - len(to_tune),
        settings.trials_per_task,
        f"{settings.max_minutes} min" if settings.max_minutes else "none",
    )
    progress = TuningProgress(weights=[weights[i] for i in to_tune])
    if settings.max_minutes:
        progress.deadline = progress.started + settings.max_minutes * 60
    if settings.trials_per_task and to_tune:
        strategy = ms.search_strategy.EvolutionarySearch(
            population_size=settings.population_size,
            genetic_num_iters=settings.genetic_iterations,
            init_min_unmeasured=min(50, settings.population_size),
        )
        contexts = _tune_contexts([tasks[i] for i in to_tune], strategy, threads)
        builder = _pooled_builder(threads)
        try:
            ms.tune_tasks(
                tasks=contexts,
                task_weights=[float(weights[i]) for i in to_tune],
                work_dir=str(out_dir),
                max_trials_global=settings.trials_per_task * len(to_tune),
                max_trials_per_task=settings.trials_per_task,
                num_trials_per_iter=min(settings.trials_per_round, settings.trials_per_task),
                builder=builder,
                runner=ms.runner.LocalRunner(timeout_sec=RUN_TIMEOUT_S),
                database=database,
                # Every task its budget, in turns: results are joined after each task's round,
                # so the progress log and the wall-clock cap act within one round (the
                # gradient scheduler joins nothing until every task had its first round).
                task_scheduler="round-robin",
                measure_callbacks=[
                    *ms.measure_callback.MeasureCallback.create("default"),
                    _measure_callback(progress),
                ],
            )
        finally:
            builder.shutdown()
    tuned_seconds = time.perf_counter() - progress.started
    # the scheduler numbers the tasks it tuned 0.. in the order of to_tune
    scheduler_id = {task: number for number, task in enumerate(to_tune)}
    task_rows = [
        {
            "name": task.task_name,
            "weight": weights[i],
            "seed_records": seeded_trials[i],
            "trials": len(progress.history.get(scheduler_id.get(i), [])),
            "best_ms": progress.best_ms(scheduler_id.get(i)),
            "failed_trials": progress.failed(scheduler_id.get(i)),
        }
        for i, task in enumerate(tasks)
    ]
    facts: dict[str, Any] = {
        "target": target_spec,
        "graphs": [str(g) for g in graphs],
        "tasks_extracted": len(extracted),
        "settings": settings.params(),
        "tasks": task_rows,
        "trials": progress.trials,
        "tuning_seconds": round(tuned_seconds, 1),
        "hit_wall_clock_cap": progress.hit_cap,
        "seed_records_imported": sum(seeded.values()),
        "tasks_from_seed": sum(1 for i, c in enumerate(seeded_trials) if c and i not in to_tune),
        "curve": progress.curve,
        "budget_curve": progress.budget_curve(),
    }
    if measure is not None:
        facts["measured"] = {
            str(graph): {
                "untuned": measure(graph, None, target_spec),
                "tuned": measure(graph, out_dir, target_spec),
            }
            for graph in (measure_graphs or graphs)
        }
    facts["status"] = "ok"
    write_json(out_dir / TUNING_RECORD, facts)
    return facts


def _workload_key(mod) -> str:
    import tvm_ffi

    return str(tvm_ffi.structural_hash(mod))


def _import_seed(database, records) -> dict[str, int]:
    """Copy the seed's records into ``database``; how many each workload brought."""
    from tvm.s_tir.meta_schedule.database import TuningRecord

    counts: dict[str, int] = {}
    for record in records:
        mod = record.workload.mod
        workload = database.commit_workload(mod)
        database.commit_tuning_record(
            TuningRecord(
                record.trace,
                workload,
                record.run_secs,
                record.target,
                record.args_info,
            )
        )
        key = _workload_key(mod)
        counts[key] = counts.get(key, 0) + 1
    return counts


# ---------------------------------------------------------------- compile and run


def build_library(
    graph: Path, tuning_dir: Path | None, target_spec: dict[str, Any], opt_level: int = 3
):
    """The compiled Relax executable: the database's schedules where it has them."""
    import tvm

    mod = load_prepared(graph, target_spec)
    if tuning_dir is not None:
        mod = pack_weights(apply_database(mod, tuning_dir, target_spec))
    with tvm.transform.PassContext(opt_level=opt_level):
        return tvm.compile(mod, target=tvm.target.Target(target_spec))


def apply_database(mod, tuning_dir: Path, target_spec: dict[str, Any]):
    """Replace every fused function the database holds a schedule for by the best one."""
    import tvm
    from tvm import relax
    from tvm.s_tir import meta_schedule as ms

    database = ms.database.JSONDatabase(work_dir=str(tuning_dir))
    with tvm.target.Target(target_spec), database:
        return relax.transform.MetaScheduleApplyDatabase(enable_warning=False)(mod)


def scheduled_functions(mod) -> int:
    """How many TIR functions of ``mod`` carry a schedule (MetaSchedule marks them)."""
    return sum(
        1
        for _, function in mod.functions.items()
        if function.attrs is not None and bool(function.attrs.get("tirx.is_scheduled", False))
    )


def set_threads(threads: int) -> int:
    """Size TVM's thread pool; returns the count the runtime reports.

    TVM sizes a thread's pool once, when first used, from TVM_NUM_THREADS (default: what it
    counts as physical cores, 1 on some VMs): a pool can shrink later, never grow. Runners live
    in fresh processes, so this is set before the pool exists. TVM_BIND_THREADS=0: by default
    TVM pins the calling thread to one core when it creates the pool, and every process started
    from it afterwards inherits that one-core mask; the other backends leave placement to the
    OS, and so does this one.
    """
    import tvm

    os.environ["TVM_NUM_THREADS"] = str(threads)
    os.environ["TVM_BIND_THREADS"] = "0"
    reported = int(tvm.get_global_func("runtime.NumThreads")())
    if reported != threads:
        raise RuntimeError(
            f"TVM runs {reported} threads, not {threads}: its thread pool was created earlier "
            "in this process (load TVM runners in a fresh process)"
        )
    return reported


def time_library(lib, feeds: list[np.ndarray], threads: int, iterations: int) -> dict[str, Any]:
    """Median and spread of ``iterations`` whole-model runs (plus one warm-up); ``feeds``: the
    graph's inputs in its order."""
    import tvm
    from tvm import relax

    set_threads(threads)
    vm = relax.VirtualMachine(lib, tvm.cpu())
    data = [tvm.runtime.tensor(np.ascontiguousarray(value), tvm.cpu()) for value in feeds]
    vm["main"](*data)
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        vm["main"](*data)
        samples.append((time.perf_counter() - start) * 1e3)
    return {
        "median_ms": float(np.median(samples)),
        "min_ms": float(np.min(samples)),
        "max_ms": float(np.max(samples)),
        "iterations": iterations,
        "batch": int(feeds[0].shape[0]),
    }


class TvmRunner(Runner):
    def __init__(
        self,
        library: Path,
        threads: int,
        target: dict[str, Any],
        output_names: list[str],
        input_names: list[str],
    ) -> None:
        super().__init__()
        import tvm
        from tvm import relax

        reported = set_threads(threads)
        self._device = tvm.cpu()
        self._vm = relax.VirtualMachine(tvm.runtime.load_module(str(library)), self._device)
        self._main = self._vm["main"]
        # resolved once, not in the timed call
        self._to_device, self._single = tvm.runtime.tensor, tvm.runtime.Tensor
        self._output_names = output_names
        self._input_names = input_names
        self.execution_info = {"threads": reported, "target": target}

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        arrays = in_order(feeds, self._input_names, "the compiled TVM library")
        result = self._main(
            *(self._to_device(np.ascontiguousarray(value), self._device) for value in arrays)
        )
        outputs = [result] if isinstance(result, self._single) else list(result)
        return {
            name: value.numpy() for name, value in zip(self._output_names, outputs, strict=True)
        }

    def close(self) -> None:
        self._main = None
        self._vm = None


class TvmBackend(Backend):
    name = "tvm"
    precisions = ("fp32",)
    declined_precisions = {"int8": INT8_REASON}
    shapes = ("static",)
    # psutil, cloudpickle and xgboost: MetaSchedule imports them lazily, minutes into tuning.
    packages = ("tvm", "psutil", "cloudpickle", "xgboost")
    distributions = ("apache-tvm", "apache-tvm-ffi")
    extra = "tvm"
    needs_tuning = True
    shape_reason = "MetaSchedule tunes static shapes only; the free-batch graph is not offered"
    Options = TvmOptions

    @classmethod
    def tune(cls, graphs, out_dir, settings, threads, **measuring) -> dict[str, Any]:
        return tune(graphs, out_dir, settings, threads, **measuring)

    def _compile(self, source: Path, out_dir: Path, calibration) -> dict[str, Any]:
        tuning_dir = self.tuning_dir
        target_spec = json.loads((tuning_dir / TARGET_FILE).read_text())
        tuning = json.loads((tuning_dir / TUNING_RECORD).read_text())
        lib = build_library(source, tuning_dir, target_spec, self.options.opt_level)
        lib.export_library(str(out_dir / LIBRARY_FILE))
        (out_dir / TARGET_FILE).write_text(json.dumps(target_spec, sort_keys=True))
        # the VM returns outputs by position: keep the graph's names beside the library
        (out_dir / OUTPUTS_FILE).write_text(json.dumps(graph_output_names(source)))
        (out_dir / INPUTS_FILE).write_text(json.dumps(graph_input_names(source)))
        tuned = [t for t in tuning["tasks"] if t["trials"] or t["seed_records"]]
        return {
            "target": target_spec,
            "trials_per_task": tuning["settings"]["trials_per_task"],
            "tasks_tuned": f"{len(tuned)}/{len(tuning['tasks'])}",
            "opt_level": self.options.opt_level,
        }

    def _load(self, artifact_dir: Path) -> Runner:
        target = json.loads((artifact_dir / TARGET_FILE).read_text())
        names = json.loads((artifact_dir / OUTPUTS_FILE).read_text())
        inputs = artifact_dir / INPUTS_FILE
        if not inputs.is_file():
            raise InputFileError(f"{inputs} is missing (an older artifact): recompile it")
        return TvmRunner(
            artifact_dir / LIBRARY_FILE, self.threads, target, names, json.loads(inputs.read_text())
        )
