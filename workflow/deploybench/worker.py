"""The child process that :func:`deploybench.isolation.run_isolated` supervises.

``python -m deploybench.worker JOB RESULT``: unpickle the work from JOB, run it, pickle
``("ok", value)`` or ``("hard", error)`` (a user's error the parent re-raises) to RESULT.
Its stdout and stderr are the job's log.
"""

from __future__ import annotations

import logging
import os
import pickle
import sys
from pathlib import Path

from .entry import configure_logging
from .io import atomic_path
from .records import HARD_ERRORS


def main(job_path: str, result_path: str) -> None:
    configure_logging(None)  # to stderr, which is the job's log
    logging.getLogger("deploybench").info("worker pid %d started", os.getpid())
    work = pickle.loads(Path(job_path).read_bytes())
    try:
        outcome = ("ok", work())
    except HARD_ERRORS as exc:
        outcome = ("hard", exc)
    with atomic_path(result_path) as tmp:
        tmp.write_bytes(pickle.dumps(outcome))


if __name__ == "__main__":
    main(*sys.argv[1:3])
