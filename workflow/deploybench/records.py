"""Typed result records: every job writes one, whose status is ok, failed (with the error's
first line) or skipped (why).

One dataclass per kind, with ``to_json``/``from_json``. The summary table's columns are derived
from these fields (:func:`summary_columns`), so no other module lists them; a missing value is
recognised by :func:`missing` alone.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import platform
import traceback
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

from .errors import ConfigError, InputFileError, first_line
from .io import read_json, write_json
from .parity import OutputParity
from .specs import ConfigKey
from .stats import LatencyStats

# Errors the user must fix before anything can run: they stop the job instead of being recorded.
HARD_ERRORS = (ConfigError, InputFileError)
ARTIFACT_RECORD = "artifact.json"
# What a tuning stage wrote beside its database: its facts, or why it failed.
TUNING_RECORD = "tuning.json"
KEYS = ("model", "backend", "precision", "shape", "batch")

# Field metadata: kept in the JSON record, left out of the summary table.
DETAIL = {"summary": False}
# Field metadata for a list of records: the summary shows its first element.
FIRST = {"summary": "first"}


class Status(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


def missing(value: Any) -> bool:
    """True for None and NaN (what pandas reads from an empty cell): the one test for it."""
    if value is None:
        return True
    try:
        return math.isnan(value)
    except (TypeError, ValueError):
        return False


@dataclass
class VendorCheck:
    """The vendor's own benchmark tool on the same artifact and settings, bracketed by ours."""

    tool: str
    command: str = ""
    median_ms: float | None = None
    first_ms: float | None = None
    iterations: int | None = None
    ours_before_ms: float | None = None
    ours_after_ms: float | None = None
    drift: float | None = None  # ours after / ours before
    ratio: float | None = None  # mean(ours before, after) / theirs
    error: str = ""


class JsonRecord:
    """``to_json``/``from_json`` for a record dataclass; ``KIND`` names it in the file."""

    KIND: ClassVar[str] = ""

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.KIND, **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any], origin: str = "record") -> Self:
        data = dict(data)
        kind = data.pop("kind", None)
        if kind != cls.KIND:
            raise InputFileError(f"{origin} is a {kind!r} record, not {cls.KIND!r}: rerun its job")
        try:
            return _decode(cls, data)
        except (TypeError, ValueError, KeyError) as exc:
            raise InputFileError(
                f"{origin} does not match this deploybench's {cls.KIND} record ({exc}): "
                "delete it and rerun"
            ) from exc

    def write(self, path: str | Path) -> None:
        write_json(path, self.to_json())

    @classmethod
    def read(cls, path: str | Path) -> Self:
        return cls.from_json(read_json(path), origin=str(path))


@dataclass(kw_only=True)
class Record(JsonRecord):
    """What every configuration's record holds: which configuration, its status and why."""

    model: str
    backend: str
    precision: str
    shape: str
    status: Status
    reason: str = ""
    version: str | None = None  # the backend's package version
    python: str = field(default_factory=platform.python_version, metadata=DETAIL)
    traceback: list[str] = field(default_factory=list, metadata=DETAIL)

    # ---- constructors for the three outcomes
    @classmethod
    def ok(cls, key: ConfigKey, **fields: Any) -> Self:
        return cls(**key.as_dict(), status=Status.OK, **fields)

    @classmethod
    def failed(cls, key: ConfigKey, exc: BaseException, **fields: Any) -> Self:
        return cls(
            **key.as_dict(),
            status=Status.FAILED,
            reason=first_line(exc),
            traceback=traceback.format_exception(exc)[-3:],
            **fields,
        )

    @classmethod
    def skipped(cls, key: ConfigKey, reason: str, **fields: Any) -> Self:
        return cls(**key.as_dict(), status=Status.SKIPPED, reason=reason, **fields)

    @property
    def key(self) -> ConfigKey:
        return ConfigKey(self.model, self.backend, self.precision, self.shape)

    @property
    def is_ok(self) -> bool:
        return self.status is Status.OK

    # ---- the summary table
    def summary(self, prefix: str = "", with_keys: bool = True) -> dict[str, Any]:
        row = _flatten(self, prefix)
        if not with_keys:
            for key in (*KEYS, "python"):
                row.pop(prefix + key, None)
        return row

    @classmethod
    def columns(cls, prefix: str = "", with_keys: bool = True) -> list[str]:
        names = _column_names(cls, prefix)
        if not with_keys:
            names = [n for n in names if n.removeprefix(prefix) not in KEYS]
        return names


@dataclass(kw_only=True)
class CompileRecord(Record):
    KIND: ClassVar[str] = "compile"
    seconds: float | None = None
    artifact_bytes: int | None = None
    files: list[str] = field(default_factory=list, metadata=DETAIL)
    details: dict[str, Any] = field(default_factory=dict, metadata=DETAIL)


@dataclass(kw_only=True)
class TimingRecord(Record):
    KIND: ClassVar[str] = "timing"
    batch: int
    threads: int | None = None
    # Device work only for backends whose outputs stay on the device; host latency is below.
    stats: LatencyStats | None = field(default=None, metadata={"prefix": ""})
    throughput_per_s: float | None = None
    cold_ms: float | None = None
    load_seconds: float | None = None
    # Backends that keep outputs on a device: latency including the copies to the host.
    host_median_ms: float | None = None
    host_p99_ms: float | None = None
    noisy: bool | None = None
    noise: list[str] = field(default_factory=list)
    foreign_cpu: float | None = None
    hit_time_limit: bool | None = None
    load_average_before: float | None = None
    load_average_after: float | None = None
    cpu_mhz_before: float | None = None
    cpu_mhz_after: float | None = None
    execution_precision: str | None = None
    execution: dict[str, Any] = field(default_factory=dict, metadata=DETAIL)
    vendor: VendorCheck | None = None
    # where it ran (deploybench.placement): speedups only against the same hardware_id
    hardware_id: str | None = None
    hardware: str | None = None
    exclusive: bool | None = None  # None: a local run, where nothing allocates the machine
    machine: dict[str, Any] = field(default_factory=dict, metadata=DETAIL)
    allocation: dict[str, Any] = field(default_factory=dict, metadata=DETAIL)
    latencies_ms: list[float] = field(default_factory=list, metadata=DETAIL)
    attempts: list[dict[str, Any]] = field(default_factory=list, metadata=DETAIL)


@dataclass(kw_only=True)
class SkipRecord(Record):
    """A combination the plan left out (backend not installed, precision not offered...)."""

    KIND: ClassVar[str] = "skip"
    batch: int


@dataclass(kw_only=True)
class LabelledAccuracy:
    """Accuracy on the user's labelled images (``evaluation_images``): this configuration's,
    the reference's on the same images, and the change, each with its 95% interval."""

    images: int
    top1: float
    top1_low: float
    top1_high: float
    top5: float
    reference_top1: float
    reference_top5: float
    change: float  # top-1, this configuration minus the reference
    change_low: float
    change_high: float
    # images one side classified right and the other wrong: all the change rests on these
    discordant: int
    # how many images would tell a change of this size from none (5%, 80% power)
    images_needed: int | None = None


@dataclass(kw_only=True)
class ParityRecord(Record):
    KIND: ClassVar[str] = "parity"
    verdict: str = "not run"  # pass | fail | inconclusive | not run
    degenerate_reference: bool | None = None
    images: int | None = None
    outputs: list[OutputParity] = field(default_factory=list, metadata=FIRST)
    # the task's own, after its post-processing: {"miou": 0.97, ...}
    measures: dict[str, float] = field(default_factory=dict)
    accuracy: LabelledAccuracy | None = None
    output_names: list[str] = field(default_factory=list, metadata=DETAIL)
    tolerance: dict[str, Any] = field(default_factory=dict, metadata=DETAIL)
    execution: dict[str, Any] = field(default_factory=dict, metadata=DETAIL)


@dataclass(kw_only=True)
class ComparedConfig:
    """One configuration in an interleaved comparison: its rounds and its paired speedup."""

    backend: str
    precision: str
    shape: str
    status: Status
    reason: str = ""
    rounds: int = 0  # rounds it was measured in
    median_ms: float | None = None  # median of its per-round medians
    speedup: float | None = None  # median of the per-round baseline / this ratios
    speedup_ci_low: float | None = None  # bootstrap 95% CI over rounds
    speedup_ci_high: float | None = None
    baseline: str | None = None
    foreign_cpu_max: float | None = None  # most cores other processes used during a burst
    # where the comparison ran (the same for every configuration in it): deploybench.placement
    hardware_id: str | None = None
    hardware: str | None = None
    exclusive: bool | None = None
    round_medians_ms: list[float | None] = field(default_factory=list, metadata=DETAIL)
    latencies_ms: list[list[float]] = field(default_factory=list, metadata=DETAIL)
    # the median of everything each of its worker processes measured
    process_medians_ms: list[float] = field(default_factory=list, metadata=DETAIL)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.backend, self.precision, self.shape)

    @property
    def key_fields(self) -> dict[str, str]:
        return {"backend": self.backend, "precision": self.precision, "shape": self.shape}


@dataclass(kw_only=True)
class ComparisonRecord(JsonRecord):
    """Every configuration of one model at one batch size, timed side by side in shuffled,
    interleaved rounds (the source of the speedups and the recommendation)."""

    KIND: ClassVar[str] = "comparison"
    model: str
    batch: int
    threads: int
    rounds: int
    settings: dict[str, Any] = field(default_factory=dict)
    baseline: str | None = None
    configs: list[ComparedConfig] = field(default_factory=list)
    note: str = ""
    machine: dict[str, Any] = field(default_factory=dict)
    allocation: dict[str, Any] = field(default_factory=dict)


# How the summary row is put together: a timing (or skip) row, then its parity, compile and
# comparison records under a prefix.
PARITY_PREFIX, COMPILE_PREFIX, COMPARISON_PREFIX = "parity_", "compile_", "cmp_"
_CONFIG_KEYS = ("backend", "precision", "shape")


def comparison_summary(config: ComparedConfig) -> dict[str, Any]:
    row = _flatten(config, COMPARISON_PREFIX)
    for key in _CONFIG_KEYS:
        row.pop(COMPARISON_PREFIX + key)
    return row


def summary_columns() -> list[str]:
    comparison = [
        c
        for c in _column_names(ComparedConfig, COMPARISON_PREFIX)
        if c.removeprefix(COMPARISON_PREFIX) not in _CONFIG_KEYS
    ]
    columns = [
        *TimingRecord.columns(),
        *ParityRecord.columns(PARITY_PREFIX, with_keys=False),
        *CompileRecord.columns(COMPILE_PREFIX, with_keys=False),
        *comparison,
    ]
    return list(dict.fromkeys(columns))


# ---------------------------------------------------------------- field walking


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _dataclass_in(tp: Any) -> type | None:
    """The dataclass inside ``X``, ``X | None`` or ``list[X]``, if any."""
    if dataclasses.is_dataclass(tp):
        return tp
    for arg in typing.get_args(tp):
        if dataclasses.is_dataclass(arg):
            return arg
    return None


def _decode(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _decode(inner[0], value) if len(inner) == 1 else value
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        return [_decode(item, v) for v in value]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(value)
    if dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        names = {f.name for f in dataclasses.fields(tp)}
        unknown = sorted(set(value) - names)
        if unknown:
            raise KeyError(f"unknown field(s) {', '.join(unknown)}")
        return tp(**{k: _decode(hints[k], v) for k, v in value.items()})
    return value


def _column_names(cls: type, prefix: str) -> list[str]:
    hints = _hints(cls)
    names: list[str] = []
    for f in dataclasses.fields(cls):
        if f.metadata.get("summary") is False:
            continue
        nested = _dataclass_in(hints[f.name])
        if nested is not None:
            inner_prefix = prefix + f.metadata.get("prefix", f"{f.name}_")
            if f.metadata.get("summary") == "first":
                inner_prefix = prefix
            names += _column_names(nested, inner_prefix)
        else:
            names.append(prefix + f.name)
    return names


def _flatten(obj: Any, prefix: str) -> dict[str, Any]:
    hints = _hints(type(obj))
    row: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        if f.metadata.get("summary") is False:
            continue
        value = getattr(obj, f.name)
        nested = _dataclass_in(hints[f.name])
        if nested is not None:
            if f.metadata.get("summary") == "first":
                value, inner_prefix = (value[0] if value else None), prefix
            else:
                inner_prefix = prefix + f.metadata.get("prefix", f"{f.name}_")
            if value is None:
                row.update(dict.fromkeys(_column_names(nested, inner_prefix)))
            else:
                row.update(_flatten(value, inner_prefix))
        elif isinstance(value, list):
            row[prefix + f.name] = "; ".join(map(str, value))
        elif isinstance(value, dict):
            row[prefix + f.name] = "; ".join(
                f"{k.replace('_', ' ')} {v:.4g}" for k, v in value.items()
            )
        elif isinstance(value, enum.Enum):
            row[prefix + f.name] = value.value
        else:
            row[prefix + f.name] = value
    return row
