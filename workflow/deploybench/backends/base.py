"""The one protocol every backend implements.

A backend turns a source model (an ONNX file, or the PyTorch checkpoint for the eager baseline)
into an artifact folder, and loads that folder into a runner that executes one batch at a time.
The public methods here do the checks every backend shares; a backend writes only its own part.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import importlib.util
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import BackendUnavailable, ConfigError, InputFileError

PRECISIONS = ("fp32", "fp16", "bf16", "int8")
ARTIFACT_RECORD = "artifact.json"


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """For backends that take no options."""


@functools.cache
def _installed_version(distribution: str) -> str | None:
    # Asked once per job when Snakemake builds the DAG (the params trigger): ~0.5 ms a lookup.
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


class Runner(ABC):
    """A loaded model. Use as a context manager; ``run`` takes one batch, returns all outputs."""

    #: What the backend reports it really executes (e.g. OpenVINO's chosen precision, streams).
    execution_info: dict[str, Any]

    def __init__(self) -> None:
        self.execution_info = {}

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what ``load`` acquired."""

    @abstractmethod
    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """Run one batch to completion and return every output as a numpy array."""


class Backend(ABC):
    name: ClassVar[str]
    device: ClassVar[str] = "cpu"
    #: What ``compile`` consumes: "onnx" (the simplified ONNX) or "torch" (the checkpoint folder).
    source: ClassVar[str] = "onnx"
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    #: "static" (batch fixed in the graph) and/or "dynamic" (batch axis free).
    shapes: ClassVar[tuple[str, ...]] = ("static", "dynamic")
    #: Import names that must be installed, and the distribution whose version is recorded.
    packages: ClassVar[tuple[str, ...]] = ()
    distribution: ClassVar[str | None] = None
    #: Precisions whose compile step needs calibration data.
    needs_calibration: ClassVar[tuple[str, ...]] = ()
    Options: ClassVar[type] = NoOptions

    # ---- declared facts, answered without importing the backend's package ----
    @classmethod
    def availability(cls) -> tuple[bool, str]:
        for package in cls.packages:
            if importlib.util.find_spec(package) is None:
                return False, f"{cls.distribution or package} not installed"
        return True, "available"

    @classmethod
    def version(cls) -> str | None:
        return None if cls.distribution is None else _installed_version(cls.distribution)

    @classmethod
    def precision_support(cls, precision: str, cpu_flags: frozenset[str]) -> tuple[bool, str]:
        """Whether ``precision`` can run on this host; the reason says why not."""
        if precision not in cls.precisions:
            return False, f"{cls.name} does not offer {precision}"
        return True, "supported"

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
            raise BackendUnavailable(f"{self.name}: {reason}: pip install deploybench[{self.name}]")

    def compile(
        self,
        source: Path,
        out_dir: Path,
        precision: str,
        calibration: np.ndarray | None,
        options: Any,
    ) -> dict[str, Any]:
        """Build the artifact in ``out_dir``; return facts about it (files, sizes, details)."""
        self.require_available()
        if precision not in self.precisions:
            raise ConfigError(f"{self.name} does not offer {precision}")
        if precision in self.needs_calibration and (calibration is None or len(calibration) == 0):
            raise ConfigError(
                f"{self.name} {precision} needs calibration data: set inputs.calibration_size > 0"
            )
        source = Path(source)
        if not source.exists():
            raise InputFileError(f"{source} is missing: rerun the stage that writes it")
        if self.source == "onnx":
            from ..onnx_tools import load_onnx

            load_onnx(source)  # a corrupt file is the user's to fix, not a backend failure
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        details = self._compile(source, out_dir, precision, calibration, options) or {}
        seconds = time.perf_counter() - start
        files = sorted(p for p in out_dir.rglob("*") if p.is_file() and p.name != ARTIFACT_RECORD)
        return {
            "compile_seconds": seconds,
            "artifact_bytes": sum(p.stat().st_size for p in files),
            "files": [str(p.relative_to(out_dir)) for p in files],
            "details": details,
        }

    def load(self, artifact_dir: Path, precision: str, threads: int, options: Any) -> Runner:
        self.require_available()
        if threads < 1:
            raise ConfigError(f"threads must be >= 1, got {threads}")
        return self._load(Path(artifact_dir), precision, threads, options)

    def vendor_benchmark(
        self,
        artifact_dir: Path,
        precision: str,
        threads: int,
        batch_shape: tuple[int, ...],
        seconds: float,
        options: Any,
    ) -> dict[str, Any] | None:
        """Time the artifact with the vendor's own tool, same settings; None if there is none."""
        return None

    @abstractmethod
    def _compile(
        self,
        source: Path,
        out_dir: Path,
        precision: str,
        calibration: np.ndarray | None,
        options: Any,
    ) -> dict[str, Any] | None: ...

    @abstractmethod
    def _load(self, artifact_dir: Path, precision: str, threads: int, options: Any) -> Runner: ...


def calibration_batches(calibration: np.ndarray, batch: int | None) -> list[np.ndarray]:
    """Split the calibration set into batches the graph accepts (a static graph: its batch)."""
    size = batch or 1
    usable = (len(calibration) // size) * size
    if usable == 0:
        raise ConfigError(
            f"calibration set of {len(calibration)} images is smaller than batch {size}: "
            "raise inputs.calibration_size"
        )
    return [calibration[i : i + size] for i in range(0, usable, size)]
