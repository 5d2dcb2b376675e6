"""What the backend-running stages share: binding a backend, and turning its errors into records."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ..backends import Backend, get_backend
from ..isolation import ChildDied, Limits, run_isolated
from ..records import ARTIFACT_RECORD, HARD_ERRORS, CompileRecord, Record, Status
from ..specs import ConfigKey, LimitSettings

log = logging.getLogger("deploybench")
R = TypeVar("R", bound=Record)


def bind_backend(key: ConfigKey, threads: int, options: dict[str, Any]) -> Backend:
    """The configuration's backend, bound to its precision, thread count and options."""
    return get_backend(key.backend)(key.precision, threads, options)


def record_or_failure(
    record_type: type[R], key: ConfigKey, work: Callable[[], R], **fields: Any
) -> R:
    """``work()``'s record; a backend error becomes a failed record, a user's error is raised.

    Either way the record carries the backend's version.
    """
    try:
        record = work()
    except HARD_ERRORS:
        raise
    except Exception as exc:
        log.exception("%s %s failed", key.backend, record_type.KIND)
        record = record_type.failed(key, exc, **fields)
    record.version = get_backend(key.backend).version()
    return record


def compile_failure(artifact_dir: str | Path) -> str | None:
    """Why the artifact failed to build, or None when it built."""
    artifact = CompileRecord.read(Path(artifact_dir) / ARTIFACT_RECORD)
    return None if artifact.is_ok else f"compile failed: {artifact.reason}"


def isolated_record(
    record_type: type[R],
    key: ConfigKey,
    work: Callable[[], R],
    limits: Limits,
    **fields: Any,
) -> R:
    """``work()``'s record, computed in a supervised child process.

    A backend's exception becomes a failed record in the child; a child that crashes, hangs
    past ``limits.seconds``, grows past ``limits.memory_mb`` or exits without a result becomes
    a failed record naming the cause; a user's error is raised here, as in-process.
    """
    guarded = functools.partial(record_or_failure, record_type, key, work, **fields)
    try:
        return run_isolated(guarded, limits, job_log_path(), on_start=_announce)
    except ChildDied as death:
        log.error("%s %s: %s", key.backend, record_type.KIND, death)
        record = record_type(**key.as_dict(), status=Status.FAILED, reason=str(death), **fields)
        record.version = get_backend(key.backend).version()
        return record


def _announce(pid: int) -> None:
    log.info("backend work runs in child process %d", pid)


def job_log_path() -> str | None:
    """The job's log file, where the child's output goes (the entry sets up logging)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            return handler.baseFilename
    return None


def stage_limits(limits: LimitSettings, stage: str) -> Limits:
    return Limits(seconds=limits.seconds(stage), memory_mb=limits.memory_mb)
