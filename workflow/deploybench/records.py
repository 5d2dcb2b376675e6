"""Result records: every job says ok, failed (with the error's first line) or skipped (why)."""

from __future__ import annotations

import platform
import traceback
from typing import Any

from .errors import ConfigError, InputFileError

OK, FAILED, SKIPPED = "ok", "failed", "skipped"
# Errors the user must fix before anything can run: they stop the job instead of being recorded.
HARD_ERRORS = (ConfigError, InputFileError)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


def base_record(**keys: Any) -> dict[str, Any]:
    return {**keys, "python": platform.python_version()}


def failed(exc: BaseException, **keys: Any) -> dict[str, Any]:
    return {
        **base_record(**keys),
        "status": FAILED,
        "reason": first_line(exc),
        "traceback": traceback.format_exception(exc)[-3:],
    }


def skipped(reason: str, **keys: Any) -> dict[str, Any]:
    return {**base_record(**keys), "status": SKIPPED, "reason": reason}
