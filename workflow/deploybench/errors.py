"""Errors that reach the user as one line naming the fix."""

import re


class DeploybenchError(Exception):
    """A problem the user can fix; its message is shown as-is, on one line."""


class ConfigError(DeploybenchError):
    """The config is malformed or names something unknown."""


class InputFileError(DeploybenchError):
    """A checkpoint, ONNX or data file is missing or corrupt."""


class BackendUnavailable(DeploybenchError):
    """A backend's package or device is missing."""


# Lines that say where in a library's C++ an error was raised, not what went wrong.
_LOCATION_ONLY = re.compile(r"^(Check '.*' failed at \S+|Exception from \S+:\d+:|Summary:)$")


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The error's type and its first few meaningful lines, on one line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    meaningful = [ln.lstrip("- ") for ln in lines if not _LOCATION_ONLY.match(ln)][:3]
    text = " ".join(meaningful)[:limit]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
