"""Compile one configuration's artifact; a backend error is recorded in artifact.json."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from ..io import atomic_dir, load_npz
from ..records import ARTIFACT_RECORD, CompileRecord
from ..specs import ConfigKey
from .common import bind_backend, record_or_failure

log = logging.getLogger("deploybench")


def compile_model(
    source: str, calibration_npz: str | None, key: dict, options: dict, out_dir: str
) -> None:
    config = ConfigKey(**key)
    with atomic_dir(out_dir) as tmp:

        def build() -> CompileRecord:
            backend = bind_backend(config, 1, options)
            calibration = load_npz(calibration_npz)["calibration"] if calibration_npz else None
            facts = backend.compile(Path(source), tmp, calibration)
            log.info("compiled in %.1f s, %d bytes", facts.seconds, facts.artifact_bytes)
            return CompileRecord.ok(config, **dataclasses.asdict(facts))

        record = record_or_failure(CompileRecord, config, build)
        record.write(tmp / ARTIFACT_RECORD)
