"""Errors that reach the user as one line naming the fix."""


class DeploybenchError(Exception):
    """A problem the user can fix; its message is shown as-is, on one line."""


class ConfigError(DeploybenchError):
    """The config is malformed or names something unknown."""


class InputFileError(DeploybenchError):
    """A checkpoint, ONNX or data file is missing or corrupt."""


class BackendUnavailable(DeploybenchError):
    """A backend's package or device is missing."""
