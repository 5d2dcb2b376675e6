"""How a Snakemake script job runs a library function: log to the job's log, fail in one line."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import DeploybenchError


def configure_logging(log_path: str | None) -> None:
    handlers: list[logging.Handler] = [] if log_path else [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        Path(log_path).write_text("")
        # append mode: the supervised child process appends to the same file
        handlers.append(logging.FileHandler(log_path, mode="a"))
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        handlers=handlers,
        force=True,
    )


def run_job(log_path: str | None, function: Callable[..., Any], **kwargs: Any) -> None:
    """Call ``function(**kwargs)``; any error ends the job with one line and exit status 1.

    The full traceback goes to the job's log; the console gets one line naming the problem.
    """
    configure_logging(log_path)
    # Snakemake stops jobs with SIGTERM: unwind so the supervisors kill their children.
    signal.signal(signal.SIGTERM, _terminated)
    log_file = open(log_path, "a") if log_path else sys.stderr  # noqa: SIM115
    try:
        # Libraries print to stdout/stderr (exporters, quantizers): keep that in the job's log.
        with contextlib.redirect_stdout(log_file), contextlib.redirect_stderr(log_file):
            function(**kwargs)
    except DeploybenchError as exc:
        _fail(f"deploybench: error: {exc}", log_path)
    except Exception as exc:
        logging.getLogger("deploybench").exception("job failed")
        first = (str(exc).strip().splitlines() or [""])[0]
        _fail(
            f"deploybench: unexpected {type(exc).__name__}: {first} (traceback in {log_path})",
            log_path,
        )
    finally:
        if log_file is not sys.stderr:
            log_file.close()


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _fail(message: str, log_path: str | None) -> None:
    if log_path:
        with open(log_path, "a") as handle:
            print(message, file=handle)
    print(message, file=sys.__stderr__, flush=True)
    raise SystemExit(1)
