"""Time one configuration at one batch size, and cross-check with the vendor's own tool."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..backends import Backend, Runner
from ..backends.registry import get_backend
from ..errors import first_line
from ..feeds import cycled, feed_count, first_shape, load_feeds
from ..isolation import phase
from ..placement import where
from ..records import TimingRecord, VendorCheck
from ..specs import ConfigKey, LimitSettings, TimingSettings
from ..timing import measure, time_runner
from .common import bind_backend, compile_failure, isolated_record, stage_limits

log = logging.getLogger("deploybench")


def time_inference(
    artifact_dir: str,
    inputs_npz: str,
    key: dict,
    batch: int,
    threads: int,
    timing: TimingSettings,
    options: dict,
    crosscheck: dict | None,
    limits: LimitSettings,
    out_json: str,
) -> None:
    """Time in a supervised child: the child loads and measures, this process only waits."""
    config = ConfigKey(**key)
    fields = {"batch": batch, "threads": threads}
    failure = compile_failure(artifact_dir)
    if failure:
        TimingRecord.skipped(config, failure, **fields).write(out_json)
        return
    work = functools.partial(
        _measure_configuration,
        config,
        bind_backend(config, threads, options),
        Path(artifact_dir),
        cycled(load_feeds(inputs_npz), batch),
        timing,
        crosscheck,
        fields,
    )
    record = isolated_record(TimingRecord, config, work, stage_limits(limits, "timing"), **fields)
    for name, value in where(with_gpu=get_backend(config.backend).device == "cuda").items():
        setattr(record, name, value)
    record.write(out_json)


def _measure_configuration(
    config: ConfigKey,
    backend: Backend,
    artifact_dir: Path,
    data,
    settings: TimingSettings,
    crosscheck: dict | None,
    fields: dict[str, Any],
) -> TimingRecord:
    phase("load")
    start = time.perf_counter()
    with backend.load(artifact_dir) as runner:
        load_seconds = time.perf_counter() - start
        phase("timing")
        log.info("loaded in %.2f s; timing", load_seconds)
        # Device work only: outputs may stay on the device (parity asks for host copies).
        result = time_runner(
            functools.partial(runner.run, data), settings, device_ms=runner.device_clock()
        )
        stats = result["stats"]
        log.info(
            "median %.3f ms (95%% CI %.3f-%.3f), CV %.3f, n=%d%s",
            stats.median_ms,
            stats.median_ci_low_ms,
            stats.median_ci_high_ms,
            stats.cv,
            stats.n,
            " NOISY: " + "; ".join(result["noise"]) if result["noisy"] else "",
        )
        record = TimingRecord.ok(
            config,
            load_seconds=load_seconds,
            throughput_per_s=feed_count(data) / (stats.median_ms / 1e3),
            execution=runner.execution_info,
            execution_precision=runner.execution_info.get("execution_precision"),
            **fields,
            **result,
        )
        if backend.device != "cpu":
            host = measure(functools.partial(runner.infer, data), settings).stats
            record.host_median_ms, record.host_p99_ms = host.median_ms, host.p99_ms
        if crosscheck and backend.vendor_tool:
            phase(f"the vendor tool ({backend.vendor_tool})")
            record.vendor = vendor_crosscheck(
                functools.partial(
                    backend.vendor_benchmark, artifact_dir, first_shape(data), crosscheck["seconds"]
                ),
                before_ms=stats.median_ms,
                measure_again=functools.partial(_median_ms, runner, data, settings),
                tool=backend.vendor_tool,
            )
    return record


def _median_ms(runner: Runner, data, settings: TimingSettings) -> float:
    return measure(
        functools.partial(runner.run, data), settings, runner.device_clock()
    ).stats.median_ms


def vendor_crosscheck(
    run_tool: Callable[[], VendorCheck | None],
    before_ms: float,
    measure_again: Callable[[], float],
    tool: str,
) -> VendorCheck | None:
    """The vendor tool's median for the same artifact and settings, bracketed by ours.

    This machine's speed drifts by tens of percent over seconds, so the tool's run is compared
    with the mean of our medians just before and just after it, and that drift is recorded.
    """
    try:
        vendor = run_tool()
    except Exception as exc:
        log.exception("vendor benchmark failed")
        return VendorCheck(tool=tool, error=first_line(exc))
    if vendor is None:
        return None
    after_ms = measure_again()
    vendor.ours_before_ms = before_ms
    vendor.ours_after_ms = after_ms
    vendor.drift = after_ms / before_ms
    vendor.ratio = (before_ms + after_ms) / 2 / vendor.median_ms
    log.info(
        "%s median %.3f ms; ours %.3f before, %.3f after: ours / theirs = %.3f",
        vendor.tool,
        vendor.median_ms,
        before_ms,
        after_ms,
        vendor.ratio,
    )
    return vendor
