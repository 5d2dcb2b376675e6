"""What the backend-running stages share: binding a backend, and turning its errors into records."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ..backends import Backend, get_backend
from ..records import ARTIFACT_RECORD, HARD_ERRORS, CompileRecord, Record
from ..specs import ConfigKey

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
