"""Run backend code in a child process the job supervises, the way Polygraphy and
optimum-benchmark isolate their runners.

Native crashes, aborts, hangs and the kernel's OOM killer are the common failure of deployment
backends. The child runs the work and writes its result (or the user's hard error) to a file;
the parent only waits. A child that dies by a signal, exits without a result, runs past its time
limit or above its memory cap becomes a :class:`ChildDied` with a one-line cause, and the job
records it like any other failure.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# How often the parent wakes while it waits: to check the deadline and the child's memory.
POLL_SECONDS = 1.0
# ... and while the child starts, to begin the work's time limit when the work does.
START_POLL_SECONDS = 0.05
# The child's own start-up (the interpreter, unpickling the work and importing its modules) is
# not the work: it is bounded apart, so that a time limit means the same on a loaded host,
# where starting Python with numpy and a backend module takes seconds, as on a quiet one.
STARTUP_SECONDS = 300.0
STARTUP = "start-up"
_PHASE_FILE = "DEPLOYBENCH_PHASE_FILE"
PR_SET_PDEATHSIG = 1  # linux/prctl.h
# cgroup v2 counter of the kernel's OOM kills in this container, where the kernel exposes it.
OOM_EVENTS = Path("/sys/fs/cgroup/memory.events")
# Our own log lines (entry.configure_logging's format) at INFO: progress, not a cause.
_PROGRESS = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ INFO ")


class ChildDied(Exception):
    """The child ended without a result; the message names the cause in one line."""


@dataclass(frozen=True)
class Limits:
    seconds: float | None = None
    memory_mb: float | None = None


def _die_with_parent() -> None:
    """Runs in the child before exec: the kernel kills it when the job process dies, however
    the job is stopped (Snakemake may SIGKILL it, which leaves no chance to clean up)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _start_child(arguments: list[str], phase_file: Path, stdin, stdout, stderr):
    """``python -m deploybench.worker <arguments>``, supervised: its own process group (a
    timeout kills the vendor tools it started too), dying with this process, importing what
    this process imports from the same places."""
    env = {
        **os.environ,
        _PHASE_FILE: str(phase_file),
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "deploybench.worker", *arguments],
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        env=env,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )


def phase(name: str) -> None:
    """Say what the child is doing now ("load", "run", ...): a crash report names it."""
    path = os.environ.get(_PHASE_FILE)
    if path:
        Path(path).write_text(name)


def started() -> None:
    """Said by the child once its work is unpickled, its modules imported: the time limit
    starts now (no phase named yet)."""
    phase("")


def _oom_kills() -> int | None:
    try:
        for line in OOM_EVENTS.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == "oom_kill":
                return int(value)
    except (OSError, ValueError):
        pass
    return None


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _last_lines(path: Path, start: int, count: int = 5) -> list[str]:
    """The child's last lines of output, leaving out our own progress messages."""
    try:
        with path.open("rb") as handle:
            handle.seek(start)
            text = handle.read().decode(errors="replace")
    except OSError:
        return []
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return [line for line in lines if not _PROGRESS.match(line)][-count:]


def describe_death(
    returncode: int,
    phase_name: str,
    last_lines: list[str],
    *,
    timed_out_after: float | None = None,
    memory_cap_mb: float | None = None,
    peak_rss_mb: float | None = None,
    oom_killed: bool = False,
) -> str:
    """One line naming why a child ended without a result."""
    during = f" during {phase_name}" if phase_name else ""
    peak = f"; peak RSS {peak_rss_mb:.0f} MB" if peak_rss_mb else ""
    last = f": {last_lines[-1][:200]}" if last_lines else ""
    if timed_out_after is not None:
        return f"no result after {timed_out_after:.0f} s{during}: timed out (killed)"
    if memory_cap_mb is not None:
        return f"killed{during}: memory above the {memory_cap_mb:.0f} MB cap{peak}"
    if oom_killed:
        return f"killed by the kernel (out of memory){during}{peak}"
    if returncode < 0:
        name = _signal_name(-returncode)
        if name == "SIGABRT":
            return f"aborted (SIGABRT){during}{last}"
        # a SIGKILL nobody here sent: its size tells whether memory was the likely cause
        return f"killed by {name}{during}{peak if name == 'SIGKILL' else ''}"
    if returncode == 0:
        return f"exited without a result{during}{last}"
    return f"exited with status {returncode} without a result{during}{last}"


def run_isolated(
    work: Callable[[], Any],
    limits: Limits,
    log_path: str | None,
    on_start: Callable[[int], None] | None = None,
) -> Any:
    """``work()`` in a child process; its return value, or its hard error re-raised here.

    The child's stdout and stderr go to ``log_path`` (the job's log), so its last lines stay
    there after a crash. Raises :class:`ChildDied` when the child ends without a result.
    """
    with tempfile.TemporaryDirectory(prefix="deploybench-child-") as folder:
        job = Path(folder) / "job.pickle"
        result = Path(folder) / "result.pickle"
        phase_file = Path(folder) / "phase"
        job.write_bytes(pickle.dumps(work))
        log = Path(log_path) if log_path else Path(folder) / "child.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        start_offset = log.stat().st_size if log.exists() else 0
        oom_before = _oom_kills()
        with log.open("ab") as output:
            child = _start_child(
                [str(job), str(result)], phase_file, subprocess.DEVNULL, output, subprocess.STDOUT
            )
        if on_start is not None:
            on_start(child.pid)
        returncode, timed_out_after, over_cap, peak = _wait(child, limits, phase_file)
        if result.exists():
            outcome, value = pickle.loads(result.read_bytes())
            if outcome == "hard":
                raise value
            return value
        oom_after = _oom_kills()
        raise ChildDied(
            describe_death(
                returncode,
                phase_file.read_text() if phase_file.exists() else STARTUP,
                _last_lines(log, start_offset),
                timed_out_after=timed_out_after,
                memory_cap_mb=limits.memory_mb if over_cap else None,
                peak_rss_mb=peak,
                oom_killed=None not in (oom_before, oom_after) and oom_after > oom_before,
            )
        )


def _wait(
    child: subprocess.Popen, limits: Limits, phase_file: Path
) -> tuple[int, float | None, bool, float | None]:
    """Wait for the child; kill its process group past a deadline or the memory cap.

    Returns the exit status, the limit it was killed at (None if it was not timed out), whether
    it went over the memory cap, and its peak RSS. The work's time limit starts when the child
    has started (its phase file exists); until then the start-up limit applies.
    """
    deadline = time.monotonic() + STARTUP_SECONDS
    limit: float | None = STARTUP_SECONDS
    running = False
    peak: float | None = None
    timed_out_after: float | None = None
    over_cap = False
    try:
        pidfd = os.pidfd_open(child.pid)
    except (AttributeError, OSError):
        pidfd = None  # no pidfd (old kernel): Popen.wait polls instead
    try:
        while True:
            interval = POLL_SECONDS if running else START_POLL_SECONDS
            if pidfd is not None:
                # sleeps in the kernel until the child ends or the poll interval passes
                select.select([pidfd], [], [], interval)
                if child.poll() is not None:
                    return child.returncode, timed_out_after, over_cap, peak
            else:
                try:
                    return child.wait(timeout=interval), timed_out_after, over_cap, peak
                except subprocess.TimeoutExpired:
                    pass
            if not running and phase_file.exists():
                running = True
                limit = limits.seconds
                deadline = None if limit is None else time.monotonic() + limit
            rss = _rss_mb(child.pid)
            if rss is not None:
                peak = max(peak or 0.0, rss)
            if limits.memory_mb is not None and rss is not None and rss > limits.memory_mb:
                over_cap = True
                _kill_group(child)
            elif deadline is not None and time.monotonic() > deadline and timed_out_after is None:
                timed_out_after = limit
                _kill_group(child)
    finally:
        if pidfd is not None:
            os.close(pidfd)
        if child.poll() is None:  # interrupted (Ctrl-C): never leave the child running
            _kill_group(child)
            child.wait()


def _kill_group(child: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)


class Worker:
    """A long-lived supervised child that serves calls: built once by ``setup`` in the child,
    then its methods run on request. Idle, it blocks reading its pipe and uses no CPU.

    A call that crashes the child, or outlasts ``limits.seconds``, raises :class:`ChildDied`;
    a Python error inside a call raises :class:`CallFailed` and the worker stays usable.
    """

    def __init__(self, setup: Callable[[], Any], limits: Limits, log_path: str | None) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="deploybench-worker-")
        folder = Path(self._folder.name)
        self._phase_file = folder / "phase"
        self._limits = limits
        self._log = Path(log_path) if log_path else folder / "worker.log"
        self._log.parent.mkdir(parents=True, exist_ok=True)
        self._start_offset = self._log.stat().st_size if self._log.exists() else 0
        with self._log.open("ab") as output:
            self._child = _start_child(
                ["--serve"], self._phase_file, subprocess.PIPE, subprocess.PIPE, output
            )
        self.pid = self._child.pid
        try:
            self._send(setup)
            self._receive(self._limits.seconds, starting=True)
        except BaseException:
            self.close()
            raise

    def call(self, method: str, *args: Any) -> Any:
        self._send((method, args))
        return self._receive(self._limits.seconds)

    def close(self) -> None:
        if self._child.poll() is None:
            try:
                self._send(None)
                self._child.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired, ChildDied):
                pass
            if self._child.poll() is None:
                _kill_group(self._child)
                self._child.wait()
        for stream in (self._child.stdin, self._child.stdout):
            with contextlib.suppress(OSError):
                stream.close()
        self._folder.cleanup()

    def _send(self, message: Any) -> None:
        try:
            pickle.dump(message, self._child.stdin)
            self._child.stdin.flush()
        except (BrokenPipeError, OSError):
            self._died()

    def _receive(self, seconds: float | None, starting: bool = False) -> Any:
        """The child's reply within ``seconds``; while ``starting``, the limit begins only when
        the child has said it started (its phase file exists), bounded by the start-up limit."""
        now = time.monotonic()
        start_deadline = now + STARTUP_SECONDS
        deadline = None if starting or seconds is None else now + seconds
        while True:
            interval = START_POLL_SECONDS if starting else POLL_SECONDS
            wait = interval if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self._child.stdout], [], [], min(wait, interval))
            if ready:
                break
            if self._child.poll() is not None:
                self._died()
            rss = _rss_mb(self._child.pid)
            cap = self._limits.memory_mb
            if rss is not None and cap is not None and rss > cap:
                _kill_group(self._child)
                self._child.wait()
                self._died(peak_rss_mb=rss)
            if starting and self._phase_file.exists():
                starting = False
                deadline = None if seconds is None else time.monotonic() + seconds
            elif starting and time.monotonic() >= start_deadline:
                _kill_group(self._child)
                self._child.wait()
                self._died(timed_out_after=STARTUP_SECONDS)
            elif deadline is not None and time.monotonic() >= deadline:
                _kill_group(self._child)
                self._child.wait()
                self._died(timed_out_after=seconds)
        try:
            outcome, value = pickle.load(self._child.stdout)
        except (EOFError, pickle.UnpicklingError, OSError):
            self._child.wait()
            self._died()
        if outcome == "hard":
            raise value
        if outcome == "error":
            raise CallFailed(value)
        return value

    def _died(self, timed_out_after: float | None = None, peak_rss_mb: float | None = None) -> None:
        returncode = self._child.wait()
        # no phase file yet: the child had not started
        phase_name = self._phase_file.read_text() if self._phase_file.exists() else STARTUP
        raise ChildDied(
            describe_death(
                returncode,
                phase_name,
                _last_lines(self._log, self._start_offset),
                timed_out_after=timed_out_after,
                memory_cap_mb=self._limits.memory_mb if peak_rss_mb is not None else None,
                peak_rss_mb=peak_rss_mb,
            )
        )

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class CallFailed(Exception):
    """A call raised inside the worker; the message is the error's first line."""
