"""The validated config as typed objects, and the plan of which combinations run.

Snakemake's ``validate()`` checks the config against ``config/schema.yaml`` and fills in the
defaults; :func:`parse_config` then adds the checks a schema cannot express (known backends,
options each backend accepts) and returns frozen dataclasses the rules read from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .backends.registry import backend_names, get_backend
from .errors import ConfigError
from .parity import Tolerance

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# EfficientNet-Lite was trained on (x - 127) / 128 with x in 0..255.
TF_MEAN = (127.0 / 255.0,) * 3
TF_STD = (128.0 / 255.0,) * 3


@dataclass(frozen=True)
class ModelSpec:
    name: str
    source: str
    architecture: str | None = None
    weights: str = "random"
    checkpoint: str | None = None
    seed: int = 0
    input_size: int = 224
    resize: int | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        where = f"models.{self.name}"
        if self.source in ("torchvision", "checkpoint") and not self.architecture:
            raise ConfigError(f"{where}: source {self.source} needs 'architecture' (e.g. resnet18)")
        if self.source == "checkpoint" and not self.checkpoint:
            raise ConfigError(f"{where}: source checkpoint needs 'checkpoint: path/to/weights.pt'")
        if self.source != "checkpoint" and self.checkpoint:
            raise ConfigError(f"{where}: 'checkpoint' is only read with source: checkpoint")
        if self.source == "efficientnet_lite0" and self.architecture:
            raise ConfigError(f"{where}: source efficientnet_lite0 takes no 'architecture'")
        if self.resize is not None and self.resize < self.input_size:
            raise ConfigError(f"{where}: resize {self.resize} is smaller than input_size")
        if self.mean is None:
            default = TF_MEAN if self.source == "efficientnet_lite0" else IMAGENET_MEAN
            object.__setattr__(self, "mean", default)
        if self.std is None:
            default = TF_STD if self.source == "efficientnet_lite0" else IMAGENET_STD
            object.__setattr__(self, "std", default)
        if self.resize is None:
            object.__setattr__(self, "resize", round(self.input_size * 8 / 7))
        object.__setattr__(self, "mean", tuple(self.mean))
        object.__setattr__(self, "std", tuple(self.std))

    @property
    def pretrained(self) -> bool:
        return (
            self.source == "efficientnet_lite0"
            or self.source == "checkpoint"
            or (self.weights == "DEFAULT")
        )

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TimingSettings:
    threads: int | None = None
    warmup_iterations: int = 10
    warmup_seconds: float = 1.0
    min_iterations: int = 30
    min_seconds: float = 2.0
    max_seconds: float = 60.0
    max_cv: float = 0.15
    max_foreign_cpu: float = 0.25
    retries_if_noisy: int = 1

    def __post_init__(self) -> None:
        if self.max_seconds < self.min_seconds:
            raise ConfigError("timing.max_seconds must be >= timing.min_seconds")


@dataclass(frozen=True)
class Settings:
    """What the DAG is built from. The per-stage values (export, inputs, tolerances, backend
    options) reach the jobs as params straight from the validated config; they are only checked
    here."""

    models: dict[str, ModelSpec]
    backends: tuple[str, ...]
    precisions: tuple[str, ...]
    shapes: tuple[str, ...]
    batch_sizes: tuple[int, ...]
    gpu: str | bool = "auto"
    timing: TimingSettings = field(default_factory=TimingSettings)


def parse_config(config: dict[str, Any]) -> Settings:
    """Typed settings from a config that Snakemake's validate() already checked and defaulted,
    plus the checks a schema cannot express."""
    models = {}
    for name, raw in config["models"].items():
        try:
            models[name] = ModelSpec(name=name, **raw)
        except TypeError as exc:
            raise ConfigError(f"models.{name}: {exc}") from exc

    backends = tuple(config["backends"])
    options = config.get("backend_options", {})
    unknown = sorted(set(options) - set(backend_names()))
    if unknown:
        raise ConfigError(
            f"backend_options: unknown backend(s) {', '.join(unknown)}; "
            f"choose from {', '.join(backend_names())}"
        )
    for name in dict.fromkeys([*backends, *options]):
        # an unknown backend name, or an option its dataclass refuses, fails here in one line
        get_backend(name).make_options(options.get(name))
    for raw in config["parity"]["tolerances"].values():
        Tolerance(**raw)

    return Settings(
        models=models,
        backends=backends,
        precisions=tuple(config["precisions"]),
        shapes=tuple(config["shapes"]),
        batch_sizes=tuple(sorted(config["batch_sizes"])),
        gpu=config.get("gpu", "auto"),
        timing=TimingSettings(**config["timing"]),
    )


def describe_validation_error(error: BaseException) -> str:
    """One line from the jsonschema error inside Snakemake's WorkflowError."""
    import jsonschema

    # Snakemake wraps the jsonschema error: it is an argument, or the exception's context.
    candidates = [error, *getattr(error, "args", ()), error.__cause__, error.__context__]
    inner = next((c for c in candidates if isinstance(c, jsonschema.ValidationError)), None)
    if inner is None:
        return str(error).splitlines()[0]
    best = jsonschema.exceptions.best_match([inner]) or inner
    location = "/".join(str(p) for p in best.absolute_path) or "(top level)"
    return f"invalid config at {location}: {best.message}: fix it in your config file"


# ---------------------------------------------------------------- the plan of combinations


@dataclass(frozen=True)
class Combination:
    model: str
    backend: str
    precision: str
    shape: str  # "dynamic" or "static_b<N>"
    batch: int | None  # None: a compile/parity combination, no batch
    status: str  # "planned" or "skipped"
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
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


def static_batch(shape: str) -> int | None:
    return None if shape == "dynamic" else int(shape.removeprefix("static_b"))


def batches_for(shape: str, batch_sizes: tuple[int, ...]) -> list[int]:
    fixed = static_batch(shape)
    return list(batch_sizes) if fixed is None else [fixed]


@dataclass(frozen=True)
class HostFacts:
    cpu_flags: frozenset[str]
    has_gpu: bool


def plan(settings: Settings, host: HostFacts) -> list[Combination]:
    """Every model × backend × precision × shape × batch, each planned or skipped with a reason."""
    rows: list[Combination] = []
    shapes = shape_names(settings.shapes, settings.batch_sizes)
    for backend_name in settings.backends:
        backend = get_backend(backend_name)
        available, why_not = backend.availability()
        if available and backend.device == "cuda" and not host.has_gpu:
            available, why_not = False, "no CUDA device on the host that built the DAG"
        for precision in settings.precisions:
            supported, why_unsupported = backend.precision_support(precision, host.cpu_flags)
            if backend.source == "onnx":
                usable = [s for s in shapes if shape_kind(s) in backend.shapes]
            else:
                # `shapes` describes ONNX graphs; an eager model takes any batch, always.
                usable = ["dynamic"]
            for model in settings.models:
                # A backend that fits none of the configured shapes still shows up, as skipped.
                for shape in usable or shapes:
                    if not available:
                        status, reason = "skipped", why_not
                    elif not supported:
                        status, reason = "skipped", why_unsupported
                    elif not usable:
                        status, reason = (
                            "skipped",
                            f"{backend_name} runs only {'/'.join(backend.shapes)} shapes",
                        )
                    else:
                        status, reason = "planned", ""
                    for batch in batches_for(shape, settings.batch_sizes):
                        rows.append(
                            Combination(
                                model, backend_name, precision, shape, batch, status, reason
                            )
                        )
    return rows
