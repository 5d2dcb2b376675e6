"""The child processes that :mod:`deploybench.isolation` supervises.

``python -m deploybench.worker JOB RESULT``: unpickle the work from JOB, run it, pickle
``("ok", value)`` or ``("hard", error)`` (a user's error the parent re-raises) to RESULT.
Its stdout and stderr are the job's log.

``python -m deploybench.worker --serve``: read a setup callable, then calls, from stdin; say
it started once the setup is unpickled, build the server with the setup, answer each call
with one pickled ``(outcome, value)`` on the original stdout. What libraries print goes to
stderr, the job's log.
"""

from __future__ import annotations

import logging
import os
import pickle
import sys
from pathlib import Path

from .entry import configure_logging
from .errors import first_line
from .io import atomic_path
from .isolation import started
from .records import HARD_ERRORS


def main(job_path: str, result_path: str) -> None:
    configure_logging(None)  # to stderr, which is the job's log
    logging.getLogger("deploybench").info("worker pid %d started", os.getpid())
    work = pickle.loads(Path(job_path).read_bytes())
    started()
    try:
        outcome = ("ok", work())
    except HARD_ERRORS as exc:
        outcome = ("hard", exc)
    with atomic_path(result_path) as tmp:
        tmp.write_bytes(pickle.dumps(outcome))


def serve() -> None:
    configure_logging(None)
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a library that prints must not corrupt the replies
    requests = sys.stdin.buffer
    logging.getLogger("deploybench").info("worker pid %d serving", os.getpid())
    server = None
    while True:
        try:
            message = pickle.load(requests)
        except EOFError:
            return
        if message is None:
            return
        if server is None:
            started()  # the setup is unpickled, its modules imported
        try:
            if server is None:
                server, value = message(), None
            else:
                method, args = message
                value = getattr(server, method)(*args)
            outcome = ("ok", value)
        except HARD_ERRORS as exc:
            outcome = ("hard", exc)
        except Exception as exc:
            logging.getLogger("deploybench").exception("call failed")
            outcome = ("error", first_line(exc))
        pickle.dump(outcome, replies)
        replies.flush()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve()
    else:
        main(*sys.argv[1:3])
