"""Result records: every job says ok, failed (with the error's first line) or skipped (why)."""

from __future__ import annotations

import platform
import re
import traceback
from typing import Any

from .errors import ConfigError, InputFileError

OK, FAILED, SKIPPED = "ok", "failed", "skipped"
# Errors the user must fix before anything can run: they stop the job instead of being recorded.
HARD_ERRORS = (ConfigError, InputFileError)


# Lines that say where in a library's C++ an error was raised, not what went wrong.
_LOCATION_ONLY = re.compile(r"^(Check '.*' failed at \S+|Exception from \S+:\d+:|Summary:)$")


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The error's type and its first few meaningful lines, on one line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    meaningful = [ln.lstrip("- ") for ln in lines if not _LOCATION_ONLY.match(ln)][:3]
    text = " ".join(meaningful)[:limit]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def base_record(**keys: Any) -> dict[str, Any]:
    return {**keys, "python": platform.python_version()}


def ok(keys: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**base_record(**keys), "status": OK, "reason": "", **fields}


def failed(exc: BaseException, **keys: Any) -> dict[str, Any]:
    return {
        **base_record(**keys),
        "status": FAILED,
        "reason": first_line(exc),
        "traceback": traceback.format_exception(exc)[-3:],
    }


def skipped(reason: str, **keys: Any) -> dict[str, Any]:
    return {**base_record(**keys), "status": SKIPPED, "reason": reason}
