"""Backend code runs in a supervised child: each way a native library dies becomes one line."""

import functools
import os
import signal
import threading
import time

import faults
import pytest
import slow_import
from deploybench import isolation
from deploybench.errors import ConfigError
from deploybench.isolation import (
    CallFailed,
    ChildDied,
    Limits,
    Worker,
    describe_death,
    run_isolated,
)

NO_LIMITS = Limits()


def test_a_result_comes_back(tmp_path):
    assert run_isolated(faults.answer, NO_LIMITS, str(tmp_path / "job.log")) == 42


def test_a_segfault_is_named_with_the_phase(tmp_path):
    with pytest.raises(ChildDied, match="^killed by SIGSEGV during load$"):
        run_isolated(faults.segfault, NO_LIMITS, str(tmp_path / "job.log"))


def test_an_abort_keeps_the_last_stderr_line(tmp_path):
    log = tmp_path / "job.log"
    with pytest.raises(ChildDied) as info:
        run_isolated(faults.abort, NO_LIMITS, str(log))
    assert str(info.value) == (
        "aborted (SIGABRT) during the builder: fatal: builder ran out of tactics"
    )
    assert "builder ran out of tactics" in log.read_text()  # the child's stderr is in the log


def test_a_hang_is_killed_at_the_time_limit(tmp_path):
    with pytest.raises(ChildDied, match=r"^no result after 2 s during run: timed out"):
        run_isolated(faults.hang, Limits(seconds=2), str(tmp_path / "job.log"))


def test_memory_above_the_cap_is_killed_with_its_peak(tmp_path):
    with pytest.raises(ChildDied, match=r"killed during run: memory above the 300 MB cap; peak"):
        run_isolated(faults.allocate, Limits(memory_mb=300), str(tmp_path / "job.log"))


def test_exiting_without_a_result_is_named(tmp_path):
    with pytest.raises(ChildDied, match="^exited without a result during run$"):
        run_isolated(faults.exit_silently, NO_LIMITS, str(tmp_path / "job.log"))


def test_a_crash_of_our_own_code_names_the_exception(tmp_path):
    with pytest.raises(ChildDied, match="exited with status 1 .*RuntimeError: an unexpected bug"):
        run_isolated(faults.bug, NO_LIMITS, str(tmp_path / "job.log"))


def test_a_users_error_still_stops_the_job(tmp_path):
    with pytest.raises(ConfigError, match="fix it in your config"):
        run_isolated(faults.user_error, NO_LIMITS, str(tmp_path / "job.log"))


def test_a_real_sigsegv_sent_to_the_running_child(tmp_path):
    # The signal is sent once the child says it is running (a named pipe), never after a timer:
    # on a loaded host the child's start-up alone can outlast any fixed delay.
    fifo = tmp_path / "running"
    os.mkfifo(fifo)

    def send_segv_once_running(pid: int) -> None:
        def wait_then_kill() -> None:
            with open(fifo) as pipe:  # blocks until the child has written and closed its end
                if pipe.read() == "running":
                    os.kill(pid, signal.SIGSEGV)

        threading.Thread(target=wait_then_kill, daemon=True).start()

    with pytest.raises(ChildDied, match="^killed by SIGSEGV during run$"):
        run_isolated(
            functools.partial(faults.hang_after_saying_so, str(fifo)),
            Limits(seconds=600),
            str(tmp_path / "job.log"),
            send_segv_once_running,
        )


def test_the_time_limit_starts_when_the_childs_start_up_is_over(tmp_path):
    # importing the work's module takes longer than the limit; the work itself takes no time
    started = time.monotonic()
    assert run_isolated(slow_import.answer, Limits(seconds=2), str(tmp_path / "job.log")) == 42
    # the child really spent its start-up importing slowly (past the limit), and was not killed
    assert time.monotonic() - started >= slow_import.IMPORT_SECONDS


def test_a_child_that_never_starts_is_killed_at_the_start_up_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(isolation, "STARTUP_SECONDS", 0.0)
    monkeypatch.setattr(isolation, "START_POLL_SECONDS", 0.0)
    with pytest.raises(ChildDied, match=r"^no result after 0 s during start-up: timed out"):
        run_isolated(faults.answer, NO_LIMITS, str(tmp_path / "job.log"))


def test_the_kernels_oom_killer_is_told_apart_from_other_kills():
    assert describe_death(-9, "run", [], oom_killed=True, peak_rss_mb=2048) == (
        "killed by the kernel (out of memory) during run; peak RSS 2048 MB"
    )
    assert describe_death(-9, "run", [], peak_rss_mb=None) == "killed by SIGKILL during run"


def test_a_worker_keeps_its_state_between_calls_and_survives_an_error(tmp_path):
    log = tmp_path / "job.log"
    with Worker(faults.Tally, NO_LIMITS, str(log)) as worker:
        assert worker.call("add", 2) == 2
        with pytest.raises(CallFailed, match="RuntimeError: unsupported op"):
            worker.call("fail")
        assert worker.call("add", 3) == 5
    assert "printed by a library" in log.read_text()


def test_a_worker_that_crashes_in_a_call_is_named_and_gone(tmp_path):
    worker = Worker(faults.Tally, NO_LIMITS, str(tmp_path / "job.log"))
    with pytest.raises(ChildDied, match="^killed by SIGSEGV during burst$"):
        worker.call("crash")
    worker.close()


def test_a_worker_call_past_the_time_limit_is_killed(tmp_path):
    worker = Worker(faults.Tally, Limits(seconds=1), str(tmp_path / "job.log"))
    with pytest.raises(ChildDied, match="^no result after 1 s"):
        worker.call("hang")
    worker.close()


def test_a_workers_start_up_does_not_count_against_its_time_limit(tmp_path):
    started = time.monotonic()
    with Worker(slow_import.Ready, Limits(seconds=2), str(tmp_path / "job.log")) as worker:
        assert worker.call("echo", 7) == 7
        # its start-up really outlasted the limit (the slow import ran in the child)
        assert time.monotonic() - started >= slow_import.IMPORT_SECONDS


def test_a_worker_that_never_starts_is_killed_at_the_start_up_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(isolation, "STARTUP_SECONDS", 0.0)
    with pytest.raises(ChildDied, match=r"^no result after 0 s during start-up: timed out"):
        Worker(faults.Tally, NO_LIMITS, str(tmp_path / "job.log"))


def test_a_worker_above_the_memory_cap_is_killed(tmp_path):
    worker = Worker(faults.Tally, Limits(memory_mb=300), str(tmp_path / "job.log"))
    with pytest.raises(ChildDied, match="memory above the 300 MB cap; peak RSS"):
        worker.call("grow")
    worker.close()
