"""How a Snakemake script job runs a library function: log to the job's log, fail in one line."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import Any

from .errors import DeploybenchError
from .pipeline import configure_logging


def run_job(log_path: str | None, function: Callable[..., Any], **kwargs: Any) -> None:
    """Call ``function(**kwargs)``; a user-fixable error becomes one line and exit status 1."""
    configure_logging(log_path)
    log_file = open(log_path, "a") if log_path else sys.stderr  # noqa: SIM115
    try:
        # Libraries print to stdout/stderr (exporters, quantizers): keep that in the job's log.
        with contextlib.redirect_stdout(log_file), contextlib.redirect_stderr(log_file):
            function(**kwargs)
    except DeploybenchError as exc:
        message = f"deploybench: error: {exc}"
        print(message, file=log_file, flush=True)
        print(message, file=sys.__stderr__, flush=True)
        raise SystemExit(1) from None
    finally:
        if log_file is not sys.stderr:
            log_file.close()
