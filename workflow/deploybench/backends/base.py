"""The one protocol every backend implements (v2).

A backend class declares what it is (name, device, precisions, shapes, packages, pip extra,
vendor tool, whether it is the baseline). An instance is bound once to a precision, a thread
count and its options; it compiles a source (an ONNX file, or the checkpoint folder for eager
PyTorch) into an artifact folder and loads that folder into a :class:`Runner`, whose ``run``
takes one batch of named inputs (feeds, :mod:`deploybench.feeds`) and returns every output keyed
by name, possibly still on the device. The
public methods here do the checks every backend shares; a backend writes only its own part.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import importlib.util
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import BackendUnavailable, ConfigError, InputFileError
from ..feeds import Feeds, feed_count, take
from ..gpu import native_cuda_precision_support
from ..hardware import HostFacts, native_precision_support
from ..records import ARTIFACT_RECORD, VendorCheck
from ..specs import PRECISIONS


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """For backends that take no options."""


@dataclasses.dataclass(frozen=True)
class CompileFacts:
    """What a compile produced; becomes the fields of the compile record."""

    seconds: float
    artifact_bytes: int
    files: list[str]
    details: dict[str, Any]


@functools.cache
def installed_version(distribution: str) -> str | None:
    # Asked once per job when Snakemake builds the DAG (the params trigger): ~0.5 ms a lookup.
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


class Runner(ABC):
    """A loaded model. Use as a context manager.

    ``run`` executes one batch of named inputs (``{input name: array}``, batch on axis 0, in the
    model's input order) to completion and returns its outputs keyed by name; a device
    backend may leave them on the device (the timing harness then measures device work only).
    ``to_host`` copies outputs to numpy; the harness asks for it only where it needs host data.
    """

    #: What the backend reports it really executes (e.g. OpenVINO's chosen precision, streams).
    execution_info: dict[str, Any]
    #: Whether :meth:`last_device_ms` reads the device's own clock for the last ``run``.
    device_timer: ClassVar[bool] = False

    def __init__(self) -> None:
        self.execution_info = {}

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what loading acquired."""

    @abstractmethod
    def run(self, feeds: Mapping[str, np.ndarray]) -> Mapping[str, Any]:
        """Run one batch to completion; every output keyed by its name."""

    def to_host(self, outputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Host (numpy) copies of ``outputs``; device backends override this."""
        return {name: np.asarray(value) for name, value in outputs.items()}

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``run`` and copy the outputs to the host: what parity compares."""
        return self.to_host(self.run(feeds))

    def last_device_ms(self) -> float:
        """The device's own time for the last ``run`` (CUDA events), where ``device_timer``."""
        raise NotImplementedError(f"{type(self).__name__} has no device timer")

    def device_clock(self):
        """What the timing harness reads each latency from: the device timer, or None (host)."""
        return self.last_device_ms if self.device_timer else None


class Backend(ABC):
    name: ClassVar[str]
    #: "cpu" or "cuda": where the runner executes.
    device: ClassVar[str] = "cpu"
    #: What ``compile`` consumes: "onnx" (the simplified ONNX) or "torch" (the checkpoint folder).
    source: ClassVar[str] = "onnx"
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    #: "static" (batch fixed in the graph) and/or "dynamic" (batch axis free).
    shapes: ClassVar[tuple[str, ...]] = ("static", "dynamic")
    #: Import names that must be installed for the backend to work at all.
    packages: ClassVar[tuple[str, ...]] = ()
    #: More import names a precision needs (e.g. NNCF for OpenVINO int8).
    precision_packages: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    #: Distributions whose versions the records and the report show; the first is the backend's.
    distributions: ClassVar[tuple[str, ...]] = ()
    #: The pip extra that installs it: ``pip install 'deploybench[<extra>]'``.
    extra: ClassVar[str] = ""
    #: Precisions whose compile step needs calibration data.
    needs_calibration: ClassVar[tuple[str, ...]] = ()
    #: Precisions the device must execute natively (no silent emulation in fp32 or bf16).
    native_precisions: ClassVar[tuple[str, ...]] = ()
    #: Precisions the backend's library accepts but would not really execute, and why (a
    #: finding, e.g. int8 that runs as fp32 arithmetic): skipped with that reason.
    declined_precisions: ClassVar[Mapping[str, str]] = {}
    #: The reference every speedup on this device is measured against (its fp32).
    baseline: ClassVar[bool] = False
    #: For a model that is an ONNX file (no PyTorch model): the baseline and parity reference
    #: on its device instead, at fp32.
    onnx_reference: ClassVar[bool] = False
    #: The vendor's own benchmark tool that :meth:`vendor_benchmark` runs, if any.
    vendor_tool: ClassVar[str | None] = None
    #: Whether ``compile`` needs the output of a tuning stage (``tuning=``), e.g. TVM's database.
    needs_tuning: ClassVar[bool] = False
    #: Whether the runner computes on a host thread pool that the thread count sizes (an engine
    #: that only launches GPU work has none: the thread-count test does not apply).
    host_threads: ClassVar[bool] = True
    #: Why the shapes this backend does not take are skipped (shown in the report).
    shape_reason: ClassVar[str] = ""
    #: The input dtypes it takes; ``None``: any. A model fed others is skipped with the reason.
    input_dtypes: ClassVar[frozenset[str] | None] = None
    Options: ClassVar[type] = NoOptions

    def __init__(self, precision: str, threads: int, options: Any = None) -> None:
        if precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {precision!r}: choose from {PRECISIONS}")
        if precision not in self.precisions:
            raise ConfigError(f"{self.name} does not offer {precision}")
        if threads < 1:
            raise ConfigError(f"threads must be >= 1, got {threads}")
        self.precision = precision
        self.threads = threads
        #: the tuning stage's folder, set by ``compile`` for a backend with ``needs_tuning``
        self.tuning_dir: Path | None = None
        self.options = options if isinstance(options, self.Options) else self.make_options(options)

    # ---- declared facts, answered without importing the backend's package ----
    @classmethod
    def install_hint(cls) -> str:
        return f"pip install 'deploybench[{cls.extra or cls.name}]'"

    @classmethod
    def _missing_package(cls, packages: tuple[str, ...]) -> str | None:
        return next((p for p in packages if importlib.util.find_spec(p) is None), None)

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        absent = cls._missing_package(cls.packages)
        if absent is not None:
            return False, f"{absent} not installed ({cls.install_hint()})"
        return True, "available"

    @classmethod
    def version(cls) -> str | None:
        return installed_version(cls.distributions[0]) if cls.distributions else None

    @classmethod
    def versions(cls) -> dict[str, str | None]:
        return {name: installed_version(name) for name in cls.distributions}

    @classmethod
    def precision_support(cls, precision: str, host: HostFacts) -> tuple[bool, str]:
        """Whether ``precision`` can run on this host; the reason says why not."""
        if precision in cls.declined_precisions:
            return False, cls.declined_precisions[precision]
        if precision not in cls.precisions:
            return False, f"{cls.name} does not offer {precision}"
        # the hardware first: a package would not help a device that lacks the precision
        if precision in cls.native_precisions:
            native, why_not = (
                native_cuda_precision_support(precision, host.gpu_compute_capability)
                if cls.device == "cuda"
                else native_precision_support(precision, host.cpu_flags)
            )
            if not native:
                return False, why_not
        absent = cls._missing_package(cls.precision_packages.get(precision, ()))
        if absent is not None:
            return False, f"{absent} not installed ({cls.name} {precision} needs it)"
        return True, "supported"

    @classmethod
    def dtype_reason(cls, inputs: Mapping[str, str]) -> str:
        """Why a model with these named input dtypes cannot run here; empty when it can."""
        if cls.input_dtypes is None:
            return ""
        refused = {name: dtype for name, dtype in inputs.items() if dtype not in cls.input_dtypes}
        if not refused:
            return ""
        listed = ", ".join(f"{name} ({dtype})" for name, dtype in refused.items())
        return f"{cls.name} takes no {'/'.join(sorted(set(refused.values())))} inputs: {listed}"

    @classmethod
    def make_options(cls, raw: dict[str, Any] | None) -> Any:
        fields = {f.name for f in dataclasses.fields(cls.Options)}
        unknown = sorted(set(raw or {}) - fields)
        if unknown:
            raise ConfigError(
                f"backend_options.{cls.name}: unknown option(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(fields)) or 'none'}"
            )
        try:
            return cls.Options(**(raw or {}))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"backend_options.{cls.name}: {exc}") from exc

    # ---- the shared checks around each backend's own work ----
    def require_available(self) -> None:
        ok, reason = self.availability()
        if not ok:
            raise BackendUnavailable(f"{self.name}: {reason}")

    def compile(
        self,
        source: Path,
        out_dir: Path,
        calibration: Feeds | None = None,
        tuning: Path | None = None,
    ) -> CompileFacts:
        """Build the artifact in ``out_dir`` (from the tuning stage's folder, if it has one)."""
        self.require_available()
        if self.needs_tuning:
            if tuning is None or not Path(tuning).is_dir():
                raise InputFileError(
                    f"{self.name} compiles from its tuning stage's output, and {tuning} is not "
                    "there: rerun the tuning stage"
                )
            self.tuning_dir = Path(tuning)
        if self.precision in self.needs_calibration and (
            calibration is None or feed_count(calibration) == 0
        ):
            raise ConfigError(
                f"{self.name} {self.precision} needs calibration data: "
                "set inputs.calibration_size > 0"
            )
        source = Path(source)
        if not source.exists():
            raise InputFileError(f"{source} is missing: rerun the stage that writes it")
        if self.source == "onnx":
            from ..onnx_tools import graph_input_dtypes, load_onnx

            graph = load_onnx(source)  # a corrupt file is the user's to fix, not a backend's
            # the plan skips what it knows of; a part's inputs are known only once captured
            refused = self.dtype_reason(graph_input_dtypes(graph))
            if refused:
                raise BackendUnavailable(refused)
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        details = self._compile(source, out_dir, calibration) or {}
        seconds = time.perf_counter() - start
        files = sorted(p for p in out_dir.rglob("*") if p.is_file() and p.name != ARTIFACT_RECORD)
        return CompileFacts(
            seconds=seconds,
            artifact_bytes=sum(p.stat().st_size for p in files),
            files=[str(p.relative_to(out_dir)) for p in files],
            details=details,
        )

    @classmethod
    def tune(
        cls, graphs: list[Path], out_dir: Path, settings: Any, threads: int, **measuring: Any
    ) -> dict[str, Any]:
        """The tuning stage of a backend with ``needs_tuning``: its compile reads ``out_dir``."""
        raise NotImplementedError(f"{cls.name} has no tuning stage")

    def load(self, artifact_dir: Path) -> Runner:
        self.require_available()
        return self._load(Path(artifact_dir))

    def vendor_benchmark(
        self, artifact_dir: Path, batch_shape: tuple[int, ...], seconds: float
    ) -> VendorCheck | None:
        """Time the artifact with :attr:`vendor_tool` under the same settings; None if none."""
        return None

    @abstractmethod
    def _compile(
        self, source: Path, out_dir: Path, calibration: Feeds | None
    ) -> dict[str, Any] | None: ...

    @abstractmethod
    def _load(self, artifact_dir: Path) -> Runner: ...


def calibration_batches(calibration: Feeds, batch: int | None) -> list[Feeds]:
    """Split the calibration set into batches the graph accepts (a static graph: its batch)."""
    size = batch or 1
    total = feed_count(calibration)
    usable = (total // size) * size
    if usable == 0:
        raise ConfigError(
            f"calibration set of {total} samples is smaller than batch {size}: "
            "raise inputs.calibration_size"
        )
    return [take(calibration, slice(i, i + size)) for i in range(0, usable, size)]
