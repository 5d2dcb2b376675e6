"""Compile one configuration's artifact; a backend error is recorded in artifact.json."""

from __future__ import annotations

import dataclasses
import functools
import logging
import shutil
from pathlib import Path

from ..feeds import load_feeds
from ..io import atomic_dir
from ..isolation import phase
from ..records import ARTIFACT_RECORD, CompileRecord
from ..specs import ConfigKey, LimitSettings
from .common import bind_backend, isolated_record, stage_limits
from .onnx import graph_failure
from .tune import tuning_failure

log = logging.getLogger("deploybench")


def compile_model(
    source: str,
    calibration_npz: str | None,
    key: dict,
    options: dict,
    limits: LimitSettings,
    out_dir: str,
    tuning_dir: str | None = None,
) -> None:
    """Build the artifact in a supervised child; a failure leaves only its record."""
    config = ConfigKey(**key)
    with atomic_dir(out_dir) as tmp:
        work = functools.partial(
            _build,
            config,
            bind_backend(config, 1, options),
            Path(source),
            calibration_npz,
            tmp,
            tuning_dir,
        )
        record = isolated_record(CompileRecord, config, work, stage_limits(limits, "compile"))
        if not record.is_ok:  # what a crashed or failed build left is not an artifact
            for leftover in tmp.iterdir():
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
        record.write(tmp / ARTIFACT_RECORD)


def _build(
    config, backend, source: Path, calibration_npz: str | None, out_dir: Path, tuning_dir=None
):
    failure = graph_failure(source)
    if failure:
        raise RuntimeError(failure)
    calibration = load_feeds(calibration_npz) if calibration_npz else None
    if tuning_dir is not None:
        failure = tuning_failure(tuning_dir)
        if failure:
            raise RuntimeError(failure)
    phase("compile")
    facts = backend.compile(source, out_dir, calibration, tuning=tuning_dir)
    log.info("compiled in %.1f s, %d bytes", facts.seconds, facts.artifact_bytes)
    return CompileRecord.ok(config, **dataclasses.asdict(facts))
