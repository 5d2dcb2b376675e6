"""The typed vocabulary every layer shares: model specs, timing policy, tolerances, the key of a
configuration and the names of graph shapes.

A leaf module: it imports nothing of ours but the errors. Defaults live in
``config/schema.yaml`` only; these classes are built from a config Snakemake already validated
and defaulted (or from a record that was).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from .errors import ConfigError

PRECISIONS = ("fp32", "fp16", "bf16", "int8")
#: Sources whose weights may come from a checkpoint file (a DAG input: replacing it reruns).
CHECKPOINT_SOURCES = ("checkpoint", "python")
#: ModelSpec fields added after results existed (see ``ModelSpec.as_dict``).
ADDED_KEYS = ("factory", "onnx", "calibration_images", "evaluation_images", "labels")
#: ModelSpec fields only the calibration job reads.
CALIBRATION_KEYS = ("calibration_images",)
# The ONNX graph's input and first output, as the exporter names them and every runner keys them.
INPUT_NAME = "input"
OUTPUT_NAME = "logits"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# EfficientNet-Lite was trained on (x - 127) / 128 with x in 0..255.
TF_MEAN = (127.0 / 255.0,) * 3
TF_STD = (128.0 / 255.0,) * 3


class Section:
    """A typed config section: validated once, when the DAG is built, then handed to the jobs
    as params (:meth:`params`, its canonical text what Snakemake's rerun trigger compares) and
    rebuilt there as it was (:meth:`from_validated`, no check run twice)."""

    def params(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self), sort_keys=True))

    @classmethod
    def from_validated(cls, data: Mapping[str, Any]) -> Self:
        """The section from what its job was handed: checked already, so checked no more."""
        section = object.__new__(cls)
        for item in dataclasses.fields(cls):
            # a key a job was not handed (an unjudged tolerance) keeps the field's default
            has_default = item.default is not dataclasses.MISSING
            value = data.get(item.name, item.default) if has_default else data[item.name]
            object.__setattr__(section, item.name, value)
        return section


def output_names(count: int) -> list[str]:
    """Names for a model's outputs, in order, as the ONNX export gives them."""
    return [OUTPUT_NAME, *(f"output_{i}" for i in range(1, count))]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    source: str
    architecture: str | None
    weights: str
    checkpoint: str | None
    seed: int
    input_size: int
    resize: int | None
    mean: tuple[float, float, float] | None
    std: tuple[float, float, float] | None
    #: The model family (a registered task): what its inputs and outputs are.
    task: str
    #: Named inputs, in call order, for tasks that take them from the config (``tensors``).
    inputs: dict[str, dict[str, Any]] | None
    #: Sizes of the symbolic axes the inputs name, other than the batch.
    axes: dict[str, int]
    #: Random weights only: BatchNorm statistics set from the task's data, so outputs carry a
    #: signal parity can judge (weights stay random; speed is unchanged).
    recalibrate_batchnorm: bool
    #: A dotted path into the model: only that part is deployed (its inputs captured).
    module: str | None
    #: Keyword arguments of the builder: torchvision's (num_classes, a detector's min_size) or
    #: the user's factory.
    builder_options: dict[str, Any]
    #: source python: the user's factory, ``package.module:function`` or
    #: ``path/to/file.py:function``.
    factory: str | None = None
    #: source onnx: the ONNX file deployed as it is (no PyTorch model).
    onnx: str | None = None
    #: A folder of the user's own images that int8 calibration draws from (image tasks).
    calibration_images: str | None = None
    #: The user's labelled images (one folder per class) that every configuration is judged
    #: on, accuracy included; ``labels``: the class names in output order, one per line.
    evaluation_images: str | None = None
    labels: str | None = None

    def __post_init__(self) -> None:
        where = f"models.{self.name}"
        if self.source in ("torchvision", "checkpoint") and not self.architecture:
            raise ConfigError(f"{where}: source {self.source} needs 'architecture' (e.g. resnet18)")
        if self.source == "checkpoint" and not self.checkpoint:
            raise ConfigError(f"{where}: source checkpoint needs 'checkpoint: path/to/weights.pt'")
        if self.source not in CHECKPOINT_SOURCES and self.checkpoint:
            raise ConfigError(
                f"{where}: 'checkpoint' is only read with source checkpoint or python"
            )
        if self.source == "python":
            if not self.factory or ":" not in self.factory:
                raise ConfigError(
                    f"{where}: source python needs 'factory: my_package.models:build' "
                    "(or path/to/file.py:build)"
                )
            if self.architecture:
                raise ConfigError(
                    f"{where}: source python takes no 'architecture': your factory builds it"
                )
        elif self.factory:
            raise ConfigError(f"{where}: 'factory' is only read with source: python")
        if self.source == "onnx":
            if not self.onnx:
                raise ConfigError(f"{where}: source onnx needs 'onnx: path/to/model.onnx'")
            torch_only = {
                "architecture": self.architecture,
                "builder_options": self.builder_options,
                "module": self.module,
                "recalibrate_batchnorm": self.recalibrate_batchnorm,
            }
            given = [key for key, value in torch_only.items() if value]
            if given:
                raise ConfigError(
                    f"{where}: source onnx deploys the file as it is; drop {', '.join(given)}"
                )
        elif self.onnx:
            raise ConfigError(f"{where}: 'onnx' is only read with source: onnx")
        if self.source == "efficientnet_lite0" and self.architecture:
            raise ConfigError(f"{where}: source efficientnet_lite0 takes no 'architecture'")
        if self.recalibrate_batchnorm and self.pretrained:
            raise ConfigError(
                f"{where}: recalibrate_batchnorm is for random weights; pretrained statistics "
                "are the model's own: drop it"
            )
        if self.recalibrate_batchnorm and self.module:
            raise ConfigError(
                f"{where}: recalibrate_batchnorm sets the whole model's statistics; it does not "
                "combine with module: drop one"
            )
        if self.builder_options and self.source not in ("torchvision", "checkpoint", "python"):
            raise ConfigError(
                f"{where}: builder_options are for torchvision architectures and factories"
            )
        if self.resize is not None and self.resize < self.input_size:
            raise ConfigError(f"{where}: resize {self.resize} is smaller than input_size")
        # Not schema defaults: they follow from the source (EfficientNet-Lite is TF-normalised).
        tf_style = self.source == "efficientnet_lite0"
        mean = self.mean if self.mean is not None else (TF_MEAN if tf_style else IMAGENET_MEAN)
        std = self.std if self.std is not None else (TF_STD if tf_style else IMAGENET_STD)
        object.__setattr__(self, "mean", tuple(mean))
        object.__setattr__(self, "std", tuple(std))
        if self.resize is None:
            object.__setattr__(self, "resize", round(self.input_size * 8 / 7))

    @classmethod
    def from_config(cls, name: str, raw: dict[str, Any]) -> ModelSpec:
        known = {f.name for f in dataclasses.fields(cls)} - {"name"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"models.{name}: unknown key(s) {', '.join(unknown)}")
        values = {key: raw.get(key) for key in known}
        return cls(name=name, **values)

    @property
    def pretrained(self) -> bool:
        """Trained weights: shipped, from a checkpoint, or (``weights: DEFAULT``) torchvision's
        published ones or those a factory loads itself."""
        return (
            self.source in ("efficientnet_lite0", "onnx")
            or self.checkpoint is not None
            or self.weights == "DEFAULT"
        )

    @property
    def has_torch_model(self) -> bool:
        """False for an ONNX file: no eager baseline, and the reference is ONNX Runtime fp32."""
        return self.source != "onnx"

    def as_dict(self, calibration: bool = False) -> dict[str, Any]:
        """The spec as a job's params. Only the calibration job is handed what only it reads
        (``calibration=True``): a new calibration folder reruns the int8 chain, nothing else."""
        spec = dataclasses.asdict(self)
        # Keys added since results were first made, left out while unset: a job's params (its
        # rerun trigger) stay as they were, so upgrading refetches no model for them.
        for key in ADDED_KEYS:
            if spec[key] is None or (key in CALIBRATION_KEYS and not calibration):
                del spec[key]
        return spec


@dataclass(frozen=True)
class TimingSettings(Section):
    threads: int | None
    warmup_iterations: int
    warmup_seconds: float
    min_iterations: int
    min_seconds: float
    max_seconds: float
    max_cv: float
    max_foreign_cpu: float
    retries_if_noisy: int

    def __post_init__(self) -> None:
        if self.max_seconds < self.min_seconds:
            raise ConfigError("timing.max_seconds must be >= timing.min_seconds")


@dataclass(frozen=True)
class Tolerance(Section):
    """Pass criteria for one precision; ``None`` leaves a metric unchecked. The raw-output
    metrics apply to every task; the others to the tasks that measure them after their own
    post-processing (segmentation: pixel agreement and mIoU; detection: matched boxes)."""

    max_rel: float | None = None
    min_cosine: float | None = None
    min_top1: float | None = None
    min_top5: float | None = None
    min_pixel_agreement: float | None = None
    min_miou: float | None = None
    min_box_agreement: float | None = None
    min_class_agreement: float | None = None
    max_score_error: float | None = None

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            low, high = (0.0, float("inf")) if item.name.startswith("max_") else (0.0, 1.0)
            if item.name == "min_cosine":
                low = -1.0
            if value is not None and not low <= value <= high:
                raise ConfigError(f"tolerance {item.name}={value} is out of range")


@dataclass(frozen=True)
class ComparisonSettings(Section):
    """The side-by-side comparison (``comparison`` in the schema, which documents each key)."""

    rounds: int
    warmup_seconds: float
    burst_warmup_iterations: int
    burst_warmup_seconds: float
    burst_min_iterations: int
    burst_seconds: float
    burst_max_seconds: float
    processes: int
    baseline_bursts: int
    gap_seconds: float


@dataclass(frozen=True)
class LimitSettings(Section):
    """What a backend's child process may use per stage (``limits``)."""

    compile_seconds: float
    timing_seconds: float
    parity_seconds: float
    memory_mb: float | None

    def seconds(self, stage: str) -> float:
        return getattr(self, f"{stage}_seconds")


@dataclass(frozen=True)
class CrosscheckSettings(Section):
    enabled: bool
    seconds: int
    batch_sizes: tuple[int, ...] | None


@dataclass(frozen=True)
class ExportSettings(Section):
    exporter: str
    opset: int
    simplifier: str


@dataclass(frozen=True)
class InputSettings(Section):
    calibration_size: int
    seed: int


@dataclass(frozen=True)
class ConfigKey:
    """Which configuration a job works on: model × backend × precision × graph shape."""

    model: str
    backend: str
    precision: str
    shape: str  # "dynamic" or "static_b<N>"

    def as_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


def shape_names(shapes: tuple[str, ...], batch_sizes: tuple[int, ...]) -> list[str]:
    names = []
    if "static" in shapes:
        names += [f"static_b{b}" for b in batch_sizes]
    if "dynamic" in shapes:
        names.append("dynamic")
    return names


def shape_kind(shape: str) -> str:
    return "dynamic" if shape == "dynamic" else "static"


def names_configuration(baseline: str, backend: str, precision: str, shape: str) -> bool:
    """Whether a comparison's baseline ("pytorch fp32", or with its graph "onnxruntime fp32
    dynamic") is this configuration."""
    parts = baseline.split()
    return [backend, precision, shape][: len(parts)] == parts


def static_batch(shape: str) -> int | None:
    return None if shape == "dynamic" else int(shape.removeprefix("static_b"))


def batches_for(shape: str, batch_sizes: tuple[int, ...]) -> list[int]:
    fixed = static_batch(shape)
    return list(batch_sizes) if fixed is None else [fixed]


@dataclass(frozen=True)
class TuningSettings(Section):
    """One model's TVM tuning budget: ``tuning.tvm`` with that model's override applied.
    The schema checks every field (the overrides too); nothing is left to check here."""

    trials_per_task: int
    max_minutes: float | None
    #: An existing MetaSchedule database folder to start from (records reused, never modified).
    seed_database: str | None
    #: Trials measured per round of the task scheduler.
    trials_per_round: int
    #: Evolutionary search: candidates kept per generation and generations per round.
    population_size: int
    genetic_iterations: int

    @classmethod
    def for_model(cls, tuning: dict[str, Any], model: str) -> TuningSettings:
        """From the validated ``tuning.tvm`` section, with ``models.<model>`` applied."""
        general = {k: v for k, v in tuning.items() if k != "models"}
        return cls(**{**general, **tuning.get("models", {}).get(model, {})})
