"""Work that fails the way native backends do; run in the supervised child by the tests."""

from __future__ import annotations

import ctypes
import os
import sys
import time

from deploybench.backends.onnxruntime import OnnxRuntimeBackend
from deploybench.errors import ConfigError
from deploybench.isolation import phase


def answer() -> int:
    phase("run")
    return 42


def segfault() -> None:
    phase("load")
    ctypes.string_at(0)  # reads address 0: SIGSEGV


def abort() -> None:
    phase("the builder")
    print("fatal: builder ran out of tactics", file=sys.stderr, flush=True)
    os.abort()


def hang() -> None:
    phase("run")
    time.sleep(3600)


def allocate(step_mb: int = 50, total_mb: int = 4000) -> None:
    phase("run")
    kept = []
    for _ in range(total_mb // step_mb):
        kept.append(bytearray(os.urandom(1)) * (step_mb * 2**20))  # really resident
        time.sleep(0.05)


def exit_silently() -> None:
    phase("run")
    os._exit(0)


def user_error() -> None:
    raise ConfigError("backend_options.x: bad option: fix it in your config")


def bug() -> None:
    raise RuntimeError("an unexpected bug in our own code")


def broken_backend_environment() -> str:
    return "broken=faults:BrokenBackend"


class BrokenBackend(OnnxRuntimeBackend):
    """A backend whose compile always raises, as a converter does on an op it lacks."""

    name = "broken"

    def _compile(self, source, out_dir, calibration):
        raise RuntimeError("Unsupported op 'FancyConv'\nmore detail")
