"""Every configuration of one model at one batch size, timed side by side.

Separate timing jobs minutes apart drift by tens of percent on shared machines, so the
speedups and the recommendation come from here: each configuration is loaded in its own worker
process (a crash or a library's thread pool cannot disturb the others; idle workers block and
use no CPU), then R rounds run; in each round every configuration runs one short burst (its own
brief warm-up, then a minimum count and duration) in a freshly shuffled order, each after an
idle gap so the previous configuration's threads have stopped spinning. No library's threading
policy is changed. Speedups are paired per round, so drift that hits a round hits both sides.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import logging
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..backends import Backend
from ..feeds import cycled, load_feeds
from ..isolation import CallFailed, ChildDied, Worker, phase
from ..placement import where
from ..plan import choose_baseline
from ..records import ComparedConfig, ComparisonRecord, Status
from ..specs import (
    ComparisonSettings,
    ConfigKey,
    LimitSettings,
    TimingSettings,
    names_configuration,
)
from ..stats import paired_ratio
from ..timing import measure
from .common import bind_backend, compile_failure, job_log_path, stage_limits

log = logging.getLogger("deploybench")


class BurstServer:
    """What a comparison worker serves: one loaded configuration, timed in bursts."""

    def __init__(self, backend: Backend, artifact_dir: Path, data: np.ndarray) -> None:
        phase("load")
        self._runner = backend.load(artifact_dir)
        self._step = functools.partial(self._runner.run, data)

    def burst(self, settings: TimingSettings) -> tuple[list[float], float | None]:
        phase("a burst")
        attempt = measure(self._step, settings, self._runner.device_clock())
        return attempt.latencies_ms, attempt.foreign_cpu


def burst_settings(comparison: ComparisonSettings, warmup: bool = False) -> TimingSettings:
    """The timing policy of one burst (or of the first, longer warm-up)."""
    return TimingSettings(
        threads=None,
        warmup_iterations=comparison.burst_warmup_iterations,
        warmup_seconds=comparison.warmup_seconds if warmup else comparison.burst_warmup_seconds,
        min_iterations=comparison.burst_min_iterations,
        min_seconds=comparison.burst_seconds,
        max_seconds=max(comparison.burst_max_seconds, comparison.burst_seconds),
        max_cv=float("inf"),
        max_foreign_cpu=float("inf"),
        retries_if_noisy=0,
    )


@dataclasses.dataclass
class _Contender:
    entry: ComparedConfig
    workers: list[Worker] = dataclasses.field(default_factory=list)
    # every latency measured in each worker process (by its index), for the process spread
    by_process: dict[int, list[float]] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(list)
    )

    @property
    def alive(self) -> bool:
        return bool(self.workers)

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
        self.workers = []


def compare_configs(
    artifact_dirs: list[str],
    inputs_npz: str,
    model: str,
    configs: list[dict[str, Any]],
    device: str,
    batch: int,
    threads: int,
    comparison: ComparisonSettings,
    limits: LimitSettings,
    out_json: str,
) -> None:
    """``configs``: each ``{"key": ..., "options": ...}``, in the order of ``artifact_dirs``."""
    data = cycled(load_feeds(inputs_npz), batch)
    baseline = choose_baseline([ConfigKey(**c["key"]) for c in configs], device)
    contenders = [
        _contender(ConfigKey(**c["key"]), d) for c, d in zip(configs, artifact_dirs, strict=True)
    ]
    try:
        _start_workers(
            contenders, configs, artifact_dirs, data, threads, limits, comparison.processes
        )
        _run_rounds(contenders, comparison, baseline)
    finally:
        for contender in contenders:
            contender.close()
    for contender in contenders:
        contender.entry.process_medians_ms = [
            float(np.median(contender.by_process[p])) for p in sorted(contender.by_process)
        ]
    entries = [c.entry for c in contenders]
    note = _add_speedups(entries, baseline)
    placed = where(with_gpu=device == "cuda")
    for entry in entries:
        entry.hardware_id, entry.hardware = placed["hardware_id"], placed["hardware"]
        entry.exclusive = placed["exclusive"]
    ComparisonRecord(
        model=model,
        batch=batch,
        threads=threads,
        rounds=comparison.rounds,
        settings=comparison.params(),
        baseline=baseline,
        configs=entries,
        note=note,
        machine=placed["machine"],
        allocation=placed["allocation"],
    ).write(out_json)


def _contender(key: ConfigKey, artifact_dir: str) -> _Contender:
    entry = ComparedConfig(
        backend=key.backend, precision=key.precision, shape=key.shape, status=Status.OK
    )
    failure = compile_failure(artifact_dir)
    if failure:
        entry.status, entry.reason = Status.SKIPPED, failure
    return _Contender(entry)


def _fail(contender: _Contender, reason: str) -> None:
    log.error("%s: %s", " ".join(contender.entry.key), reason)
    contender.entry.status, contender.entry.reason = Status.FAILED, reason
    contender.close()


def _start_workers(
    contenders, configs, artifact_dirs, data, threads, limits, processes: int
) -> None:
    for contender, config, artifact_dir in zip(contenders, configs, artifact_dirs, strict=True):
        if contender.entry.status is not Status.OK:
            continue
        key = ConfigKey(**config["key"])
        setup = functools.partial(
            BurstServer, bind_backend(key, threads, config["options"]), Path(artifact_dir), data
        )
        try:
            for _ in range(processes):
                worker = Worker(setup, stage_limits(limits, "timing"), job_log_path())
                contender.workers.append(worker)
                log.info("%s loaded in worker %d", " ".join(contender.entry.key), worker.pid)
        except (ChildDied, CallFailed) as exc:
            _fail(contender, str(exc))


def _call_burst(contender: _Contender, settings: TimingSettings, process: int):
    try:
        return contender.workers[process].call("burst", settings)
    except (ChildDied, CallFailed) as exc:
        _fail(contender, str(exc))
        return None


def _run_rounds(
    contenders: list[_Contender], comparison: ComparisonSettings, baseline: str
) -> None:
    """R rounds; in each, every configuration one burst (the baseline ``baseline_bursts``) in
    a freshly shuffled order, its bursts taking turns among its worker processes. A
    configuration's round median pools all its latencies of that round.

    Every speedup divides by the baseline's round median, so its noise is in all of them: a
    second baseline burst per round halves that share for one extra burst. And one process can
    run a configuration persistently faster or slower than another (memory layout, thread
    placement; seen here up to 20%: eager PyTorch at 58 and 70 ms in two processes of one
    job), which no number of rounds in a single process reveals: turns among processes average
    it and put it into the spread between rounds, where the CI sees it.
    """
    for contender in contenders:  # the first warm-up, longer than a burst's own
        for process in range(len(contender.workers)):
            if contender.alive:
                _call_burst(contender, burst_settings(comparison, warmup=True), process)
    order_rng = random.Random(0)
    burst = burst_settings(comparison)
    rounds = comparison.rounds
    for contender in contenders:
        contender.entry.round_medians_ms = [None] * rounds
        if contender.alive:
            contender.entry.latencies_ms = [[] for _ in range(rounds)]
    for number in range(rounds):
        order = []
        for contender in contenders:
            if contender.alive:
                bursts = comparison.baseline_bursts if _is_baseline(contender, baseline) else 1
                # burst k of round r goes to process (r * bursts + k) mod P: turn by turn
                order += [
                    (contender, (number * bursts + k) % len(contender.workers))
                    for k in range(bursts)
                ]
        order_rng.shuffle(order)
        for contender, process in order:
            if not contender.alive:  # crashed earlier in this round
                continue
            # let the previous configuration's threads stop spinning before this burst
            time.sleep(comparison.gap_seconds)
            result = _call_burst(contender, burst, process)
            if result is None:
                continue
            latencies, foreign = result
            entry = contender.entry
            entry.latencies_ms[number].extend(latencies)
            contender.by_process[process].extend(latencies)
            if foreign is not None:
                entry.foreign_cpu_max = max(entry.foreign_cpu_max or 0.0, foreign)
        for contender in contenders:
            entry = contender.entry
            if entry.latencies_ms and entry.latencies_ms[number]:
                entry.round_medians_ms[number] = float(np.median(entry.latencies_ms[number]))
                entry.rounds += 1
        log.info("round %d/%d done", number + 1, rounds)


def _is_baseline(contender: _Contender, baseline: str) -> bool:
    return names_configuration(baseline, *contender.entry.key)


def _round_medians(entry: ComparedConfig) -> np.ndarray:
    return np.array([np.nan if m is None else m for m in entry.round_medians_ms], dtype=float)


def _add_speedups(entries: list[ComparedConfig], baseline: str) -> str:
    """Each configuration's median of round medians and paired speedup over the baseline."""
    base = next(
        (
            e
            for e in entries
            if names_configuration(baseline, *e.key) and e.status is Status.OK and e.rounds
        ),
        None,
    )
    for entry in entries:
        if entry.status is Status.OK and entry.rounds:
            entry.median_ms = float(np.nanmedian(_round_medians(entry)))
        elif entry.status is Status.OK:
            entry.status, entry.reason = Status.FAILED, "measured in no round"
    if base is None:
        return f"no speedups: the baseline ({baseline}) was not measured"
    others = [e for e in entries if e.status is Status.OK and e is not base]
    if not others:
        return "nothing to compare: only the baseline ran"
    for entry in [base, *others]:
        estimate = paired_ratio(_round_medians(base), _round_medians(entry))
        entry.speedup = estimate.ratio
        entry.speedup_ci_low, entry.speedup_ci_high = estimate.ci_low, estimate.ci_high
        entry.baseline = baseline
    return ""
