"""The validated config as typed objects.

Snakemake's ``validate()`` checks the config against ``config/schema.yaml`` and fills in the
defaults (they live only there); :func:`parse_config` adds the checks a schema cannot express
(known backends, the options each backend accepts, model-spec consistency) and returns one
frozen settings tree. The DAG is built from it, and each job is handed its sections as params
(``section.params()``) and rebuilds them typed (``Section.from_validated``) without checking
them again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .backends.registry import backend_names, get_backend
from .errors import ConfigError
from .specs import (
    ComparisonSettings,
    CrosscheckSettings,
    ExportSettings,
    InputSettings,
    LimitSettings,
    ModelSpec,
    TimingSettings,
    Tolerance,
    TuningSettings,
)
from .tasks import task_for


@dataclass(frozen=True)
class Settings:
    """What the DAG is built from, and every section a job is handed."""

    models: dict[str, ModelSpec]
    backends: tuple[str, ...]
    precisions: tuple[str, ...]
    shapes: tuple[str, ...]
    batch_sizes: tuple[int, ...]
    gpu: str | bool
    timing: TimingSettings
    comparison: ComparisonSettings
    limits: LimitSettings
    crosscheck: CrosscheckSettings
    export: ExportSettings
    inputs: InputSettings
    tolerances: dict[str, Tolerance]
    #: Each backend's options as the config gives them (its dataclass accepted them).
    backend_options: dict[str, dict[str, Any]]
    partitions: dict[str, str]
    tvm_tuning: dict[str, Any]
    #: Patterns of the configurations to run instead of the whole cross product (None: all),
    #: and of those to leave out; each a dict of some of model, backend, precision, shape, batch.
    configurations: tuple[dict[str, Any], ...] | None = None
    exclude: tuple[dict[str, Any], ...] = ()

    @property
    def selects(self) -> bool:
        """Whether the config picks configurations rather than running the cross product."""
        return self.configurations is not None or bool(self.exclude)

    def tuning(self, model: str) -> TuningSettings:
        """One model's TVM tuning budget: ``tuning.tvm`` with that model's override applied."""
        return TuningSettings.for_model(self.tvm_tuning, model)


def parse_config(config: dict[str, Any]) -> Settings:
    """Typed settings from a config that Snakemake's validate() already checked and defaulted,
    plus the checks a schema cannot express."""
    models = {name: ModelSpec.from_config(name, raw) for name, raw in config["models"].items()}
    for spec in models.values():
        # an unknown task, or inputs the task cannot use, fails here in one line
        task = task_for(spec)
        task.check(spec)
        if spec.calibration_images is not None and not task.image_folders:
            raise ConfigError(
                f"models.{spec.name}: calibration_images is for image tasks; task "
                f"{task.name} makes its own calibration data: drop it"
            )
        if spec.evaluation_images is not None and not (task.image_folders and task.class_scores):
            raise ConfigError(
                f"models.{spec.name}: evaluation_images (labelled, for accuracy) is for task "
                f"classification, not {task.name}: drop it"
            )
        if spec.labels is not None and spec.evaluation_images is None:
            raise ConfigError(
                f"models.{spec.name}: labels names the classes of evaluation_images: set that too"
            )

    backends = tuple(config["backends"])
    options = config["backend_options"]
    known = backend_names()
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(
            f"backend_options: unknown backend(s) {', '.join(unknown)}; "
            f"choose from {', '.join(known)}"
        )
    for name in dict.fromkeys([*backends, *options]):
        # an unknown backend name, or an option its dataclass refuses, fails here in one line
        get_backend(name).make_options(options.get(name))
    tolerances = {p: Tolerance(**raw) for p, raw in config["parity"]["tolerances"].items()}
    tvm_tuning = config["tuning"]["tvm"]
    strays = sorted(set(tvm_tuning["models"]) - set(models))
    if strays:
        raise ConfigError(
            f"tuning.tvm.models: {', '.join(strays)} is not a configured model; "
            f"choose from {', '.join(models)}"
        )

    configurations = config.get("configurations")
    exclude = tuple(config.get("exclude") or ())
    for key, patterns in (("configurations", configurations or ()), ("exclude", exclude)):
        _check_patterns(key, patterns, models)
    precisions = tuple(config["precisions"])
    shapes = tuple(config["shapes"])
    batch_sizes = tuple(config["batch_sizes"])
    if configurations is not None:
        # what an explicit configuration names need not be listed again; the baseline each
        # comparison divides by is always there
        baselines = _baseline_backends(models, configurations)
        backends = _extended(backends, [*baselines, *(p.get("backend") for p in configurations)])
        precisions = _extended(precisions, ["fp32", *(p.get("precision") for p in configurations)])
        # an ONNX file's baseline is its dynamic graph, or its static one where it fixes the batch
        graphs = (
            ["dynamic", "static"] if not all(m.has_torch_model for m in models.values()) else []
        )
        shapes = _extended(shapes, [*graphs, *(p.get("shape") for p in configurations)])
        batch_sizes = _extended(batch_sizes, [p.get("batch") for p in configurations])

    return Settings(
        models=models,
        backends=backends,
        precisions=precisions,
        shapes=shapes,
        batch_sizes=tuple(sorted(batch_sizes)),
        configurations=None if configurations is None else tuple(configurations),
        exclude=exclude,
        gpu=config["gpu"],
        timing=TimingSettings(**config["timing"]),
        comparison=ComparisonSettings(**config["comparison"]),
        limits=LimitSettings(**config["limits"]),
        crosscheck=CrosscheckSettings(**config["crosscheck"]),
        export=ExportSettings(**config["export"]),
        inputs=InputSettings(**config["inputs"]),
        tolerances=tolerances,
        backend_options=options,
        partitions=config["partitions"],
        tvm_tuning=tvm_tuning,
    )


def _check_patterns(key: str, patterns, models: dict[str, ModelSpec]) -> None:
    for index, pattern in enumerate(patterns):
        where = f"{key}[{index}]"
        if "model" in pattern and pattern["model"] not in models:
            raise ConfigError(
                f"{where}: model {pattern['model']!r} is not configured; "
                f"choose from {', '.join(models)}"
            )
        if "backend" in pattern:
            try:
                get_backend(pattern["backend"])
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc}") from None


def _baseline_backends(models: dict[str, ModelSpec], patterns) -> list[str]:
    """The backends that give each device's baseline for the configurations asked for."""
    from .backends.registry import baseline_backend, device_of, onnx_reference_backend

    devices = {"cpu"} | {device_of(p["backend"]) for p in patterns if "backend" in p}
    found = []
    for device in sorted(devices):
        if any(spec.has_torch_model for spec in models.values()):
            found.append(baseline_backend(device))
        if not all(spec.has_torch_model for spec in models.values()):
            found.append(onnx_reference_backend(device))
    return found


def _extended(values: tuple, more) -> tuple:
    return tuple(dict.fromkeys([*values, *(v for v in more if v is not None)]))


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
