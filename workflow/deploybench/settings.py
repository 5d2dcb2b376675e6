"""The validated config as typed objects.

Snakemake's ``validate()`` checks the config against ``config/schema.yaml`` and fills in the
defaults (they live only there); :func:`parse_config` adds the checks a schema cannot express
(known backends, the options each backend accepts, model-spec consistency) and returns the
frozen settings the DAG is built from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .backends.registry import backend_names, get_backend
from .errors import ConfigError
from .specs import ModelSpec, TimingSettings, Tolerance
from .tasks import task_for


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
    gpu: str | bool
    timing: TimingSettings


def parse_config(config: dict[str, Any]) -> Settings:
    """Typed settings from a config that Snakemake's validate() already checked and defaulted,
    plus the checks a schema cannot express."""
    models = {name: ModelSpec.from_config(name, raw) for name, raw in config["models"].items()}
    for spec in models.values():
        # an unknown task, or inputs the task cannot use, fails here in one line
        task_for(spec).check(spec)

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
    for raw in config["parity"]["tolerances"].values():
        Tolerance(**raw)
    tvm_tuning = config["tuning"]["tvm"]
    strays = sorted(set(tvm_tuning["models"]) - set(models))
    if strays:
        raise ConfigError(
            f"tuning.tvm.models: {', '.join(strays)} is not a configured model; "
            f"choose from {', '.join(models)}"
        )

    return Settings(
        models=models,
        backends=backends,
        precisions=tuple(config["precisions"]),
        shapes=tuple(config["shapes"]),
        batch_sizes=tuple(sorted(config["batch_sizes"])),
        gpu=config["gpu"],
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
