"""Work that fails the way native backends do; run in the supervised child by the tests."""

from __future__ import annotations

import ctypes
import os
import sys
import time

from deploybench.backends import Backend, Runner
from deploybench.backends.onnxruntime import OnnxRuntimeBackend
from deploybench.errors import ConfigError
from deploybench.isolation import phase
from deploybench.onnx_tools import input_batch


# The faults themselves, as a native library would die.
def crash_segfault() -> None:
    ctypes.string_at(0)  # reads address 0: SIGSEGV


def crash_abort() -> None:
    print("fatal: builder ran out of tactics", file=sys.stderr, flush=True)
    os.abort()


def crash_hang() -> None:
    time.sleep(3600)


def crash_allocate(step_mb: int = 50, total_mb: int = 4000) -> None:
    kept = []
    for _ in range(total_mb // step_mb):
        kept.append(bytearray(os.urandom(1)) * (step_mb * 2**20))  # really resident
        time.sleep(0.05)


def crash_exit_silently() -> None:
    os._exit(0)


# Work for run_isolated: say a phase, then die.
def answer() -> int:
    phase("run")
    return 42


def segfault() -> None:
    phase("load")
    crash_segfault()


def abort() -> None:
    phase("the builder")
    crash_abort()


def hang_after_saying_so(fifo: str) -> None:
    """Hang in phase "run", after telling the test (through a named pipe) that it is there."""
    phase("run")
    with open(fifo, "w") as pipe:
        pipe.write("running")
    crash_hang()


def hang() -> None:
    phase("run")
    crash_hang()


def allocate() -> None:
    phase("run")
    crash_allocate()


def exit_silently() -> None:
    phase("run")
    crash_exit_silently()


def user_error() -> None:
    raise ConfigError("backend_options.x: bad option: fix it in your config")


def bug() -> None:
    raise RuntimeError("an unexpected bug in our own code")


def broken_backend_environment() -> str:
    return "broken=faults:BrokenBackend"


FAULTY_ENVIRONMENT = "faulty=faults:FaultyBackend"


class BrokenBackend(OnnxRuntimeBackend):
    """A backend whose compile always raises, as a converter does on an op it lacks."""

    name = "broken"

    def _compile(self, source, out_dir, calibration):
        raise RuntimeError("Unsupported op 'FancyConv'\nmore detail")


# Which fault each configuration of the faulty backend injects, and when.
FAULTS = {
    ("fp32", "dynamic"): ("run", crash_segfault),
    ("fp32", "static_b1"): ("run", crash_allocate),
    ("fp16", "dynamic"): ("compile", crash_abort),
    ("bf16", "dynamic"): ("load", crash_hang),
    ("int8", "dynamic"): ("run", crash_exit_silently),
}


class FaultyRunner(Runner):
    def __init__(self, fault) -> None:
        super().__init__()
        self._fault = fault
        self.execution_info = {"threads": 1}

    def run(self, feeds):
        if self._fault is not None:
            self._fault()
        batch = next(iter(feeds.values()))
        return {"logits": batch.reshape(len(batch), -1)[:, :10]}


class FaultyBackend(Backend):
    """Dies the way native backends do, one fault per precision (and shape for fp32)."""

    name = "faulty"
    precisions = ("fp32", "fp16", "bf16", "int8")
    packages = ("onnx",)
    distributions = ("onnx",)
    extra = "dev"

    def _fault(self, when: str, shape: str):
        planned_when, fault = FAULTS.get((self.precision, shape), (None, None))
        return fault if planned_when == when else None

    def _compile(self, source, out_dir, calibration):
        shape = "dynamic" if input_batch(source) is None else f"static_b{input_batch(source)}"
        (out_dir / "shape").write_text(shape)
        if fault := self._fault("compile", shape):
            fault()
        return {}

    def _load(self, artifact_dir):
        shape = (artifact_dir / "shape").read_text()
        if fault := self._fault("load", shape):
            fault()
        return FaultyRunner(self._fault("run", shape))


class Tally:
    """A server for a long-lived worker: state kept between calls, and ways to fail."""

    def __init__(self) -> None:
        self.total = 0

    def add(self, amount: int) -> int:
        print("printed by a library", flush=True)  # must not corrupt the replies
        self.total += amount
        return self.total

    def fail(self) -> None:
        raise RuntimeError("unsupported op")

    def crash(self) -> None:
        phase("burst")
        crash_segfault()

    def hang(self) -> None:
        crash_hang()

    def grow(self) -> None:
        crash_allocate()
