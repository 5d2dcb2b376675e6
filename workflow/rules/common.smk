# What the rules share: the validated config, the plan of combinations, wildcard constraints,
# input and param functions, and the target lists.
import json
import re
import sys
from operator import attrgetter
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))

from deploybench import hardware
from deploybench.backends import get_backend
from deploybench.backends.registry import device_of
from deploybench.errors import ConfigError
from deploybench.gpu import compute_capability, gpu_facts, gpu_present
from deploybench.inputs import data_files
from deploybench.models import model_source_files
from deploybench.placement import slurm_unreachable
from deploybench.plan import plan, selection_note
from deploybench.settings import describe_validation_error, parse_config
from deploybench.tasks import task_for

try:
    validate(config, "../../config/schema.yaml")
except WorkflowError as exc:
    raise ConfigError(describe_validation_error(exc)) from None

SETTINGS = parse_config(config)
HAS_GPU = gpu_present(SETTINGS.gpu)
HOST = hardware.HostFacts(
    cpu_flags=hardware.cpu_flags(),
    has_gpu=HAS_GPU,
    # None on a submit host planning for a GPU partition: the GPU jobs find out themselves
    gpu_compute_capability=compute_capability(gpu_facts()) if HAS_GPU else None,
)
# checked here, so a missing checkpoint or factory is one line before any job runs
MODEL_FILES = {name: model_source_files(spec) for name, spec in SETTINGS.models.items()}
# the user's image folders, checked here: one line before any job runs
EVALUATION_FILES, CALIBRATION_FILES = {}, {}
for _name, _spec in SETTINGS.models.items():
    EVALUATION_FILES[_name], CALIBRATION_FILES[_name] = data_files(_spec)
# An ONNX file is imported, not fetched and exported: each rule takes only its models.
TORCH_MODELS = [name for name, spec in SETTINGS.models.items() if spec.has_torch_model]
ONNX_MODELS = [
    name for name, spec in SETTINGS.models.items() if not spec.has_torch_model
]
PLAN = plan(SETTINGS, HOST)
PLANNED = [row for row in PLAN if row.planned]
SKIPPED = [row.skip_record().to_json() for row in PLAN if not row.planned]
SHAPES = list(dict.fromkeys(row.shape for row in PLAN))


def _timing_threads():
    """Every backend is timed with the same thread count: the config's; else, on a cluster, the
    cores the profile gives a timing job (set-threads); else the cores of this run."""
    if SETTINGS.timing.threads:
        return SETTINGS.timing.threads
    allocated = workflow.resource_settings.overwrite_threads.get("time_inference")
    if allocated is not None:
        return int(getattr(allocated, "value", allocated))
    return min(workflow.cores or 1, hardware.available_cores())


TIMING_THREADS = _timing_threads()


def _alternatives(values):
    return "|".join(re.escape(str(v)) for v in values) or "(?!)"


wildcard_constraints:
    model=_alternatives(SETTINGS.models),
    backend=_alternatives(SETTINGS.backends),
    precision=_alternatives(SETTINGS.precisions),
    shape=_alternatives(SHAPES),
    batch=r"\d+",
    device="cpu|cuda",


# ---------------------------------------------------------------- params
# Params are compared by their text: keys are sorted so that reordering a config file reruns
# nothing.


def canonical(value):
    return json.loads(json.dumps(value, sort_keys=True))


TIMING_SETTINGS = SETTINGS.timing.params()
COMPARISON_SETTINGS = SETTINGS.comparison.params()


def model_spec(wildcards):
    return SETTINGS.models[wildcards.model].as_dict()


def calibration_spec(wildcards):
    return SETTINGS.models[wildcards.model].as_dict(calibration=True)


def model_files(wildcards):
    """The checkpoint and the factory's module a model is built from: inputs, so replacing
    either reruns its chain."""
    return MODEL_FILES[wildcards.model]


def onnx_file(wildcards):
    return MODEL_FILES[wildcards.model]["onnx"]


def evaluation_sources(wildcards):
    """What the evaluation samples come from: the whole model for a part, the imported graph
    for an ONNX file, and the user's labelled images and their labels where given."""
    return {
        **model_the_samples_come_through(wildcards),
        **EVALUATION_FILES[wildcards.model],
    }


def calibration_sources(wildcards):
    """What int8 calibration draws from: the whole model for a part, and the user's image
    folder where the model names one (adding or removing images reruns it)."""
    return {
        **model_the_samples_come_through(wildcards),
        **CALIBRATION_FILES[wildcards.model],
    }


def model_the_samples_come_through(wildcards):
    """A deployed part's inputs are captured from the whole model: its weights. An ONNX file's
    data is named after its graph's inputs: the imported graph, checked. Else nothing.
    """
    spec = SETTINGS.models[wildcards.model]
    if not spec.has_torch_model:
        return {"graph": f"results/onnx/{wildcards.model}/exported.onnx"}
    if spec.module is None:
        return {}
    return {"weights": f"results/models/{wildcards.model}/model.pt"}


def reference_model(wildcards):
    """What the parity reference runs: the PyTorch model, or for an ONNX file (no PyTorch
    model) the imported graph, on ONNX Runtime fp32."""
    if SETTINGS.models[wildcards.model].has_torch_model:
        return {"weights": f"results/models/{wildcards.model}/model.pt"}
    return {"graph": f"results/onnx/{wildcards.model}/exported.onnx"}


def backend_options(wildcards):
    return canonical(SETTINGS.backend_options.get(wildcards.backend, {}))


def backend_version(wildcards):
    # A new backend release reruns that backend's chain (params trigger), nothing else.
    return get_backend(wildcards.backend).version()


def crosscheck_settings(wildcards):
    """The vendor-tool cross-check for this timing job, or None: a backend without a vendor
    tool never reruns for a cross-check setting."""
    settings = SETTINGS.crosscheck
    wanted = settings.batch_sizes
    if (
        not settings.enabled
        or get_backend(wildcards.backend).vendor_tool is None
        or (wanted is not None and int(wildcards.batch) not in wanted)
    ):
        return None
    return {"seconds": settings.seconds}


def parity_tolerance(wildcards):
    """The keys of this precision's tolerance the model's task judges by (no others: changing
    a segmentation key reruns no classifier's parity)."""
    task = task_for(SETTINGS.models[wildcards.model])
    return canonical(task.tolerance(SETTINGS.tolerances[wildcards.precision].params()))


def config_key(wildcards):
    return {
        "model": wildcards.model,
        "backend": wildcards.backend,
        "precision": wildcards.precision,
        "shape": wildcards.shape,
    }


def _compared(wildcards):
    """The planned configurations of this model at this batch size on this device (each device
    is compared against its own baseline), in a fixed order."""
    batch = int(wildcards.batch)
    rows = [
        r
        for r in PLANNED
        if r.model == wildcards.model
        and r.batch == batch
        and device_of(r.backend) == wildcards.device
    ]
    return sorted(rows, key=attrgetter("backend", "precision", "shape"))


def comparison_configs(wildcards):
    # each configuration's options and version: a change reruns the comparisons it is in
    return [
        {
            "key": canonical(r.key.as_dict()),
            "options": canonical(SETTINGS.backend_options.get(r.backend, {})),
            "version": get_backend(r.backend).version(),
        }
        for r in _compared(wildcards)
    ]


def comparison_artifacts(wildcards):
    return [
        f"results/compiled/{r.model}/{r.backend}/{r.precision}/{r.shape}"
        for r in _compared(wildcards)
    ]


# ---------------------------------------------------------------- inputs


def compile_source(wildcards):
    """The checkpoint for eager PyTorch, the simplified ONNX for every other backend."""
    if get_backend(wildcards.backend).source == "torch":
        return f"results/models/{wildcards.model}/model.pt"
    return f"results/onnx/{wildcards.model}/{wildcards.shape}/model.onnx"


def backend_env(wildcards):
    """envs/<the backend's extra>.yaml for --sdm conda (the GPU backends share envs/gpu.yaml); a
    backend registered from outside without one runs in the workflow's environment (its
    packages must be installed there)."""
    backend = get_backend(wildcards.backend)
    own = Path(workflow.basedir) / "envs" / f"{backend.extra or backend.name}.yaml"
    return str(
        own if own.exists() else Path(workflow.basedir) / "envs" / "workflow.yaml"
    )


def compare_env(wildcards):
    """Every CPU backend's packages for a CPU comparison, the GPU environment for a GPU one."""
    name = "gpu" if wildcards.device == "cuda" else "compare"
    return str(Path(workflow.basedir) / "envs" / f"{name}.yaml")


def compile_tuning(wildcards):
    """The tuning stage's folder, for a backend that compiles from one (TVM)."""
    if get_backend(wildcards.backend).needs_tuning:
        return f"results/tuning/{wildcards.model}/{wildcards.backend}"
    return []


def tuning_graphs(wildcards):
    """The static-batch graphs of this model that TVM compiles: all of them are tuned at once."""
    shapes = sorted(
        {r.shape for r in PLANNED if r.model == wildcards.model and r.backend == "tvm"}
    )
    return [f"results/onnx/{wildcards.model}/{shape}/model.onnx" for shape in shapes]


def tvm_tuning_settings(wildcards):
    # this model's budget only: another model's override never re-tunes it
    return SETTINGS.tuning(wildcards.model).params()


def tvm_version(wildcards):
    return get_backend("tvm").versions()


def gpu_jobs(wildcards):
    """1 for a job that runs on the GPU (a CUDA backend's compile, timing and parity, and the
    GPU comparisons), 0 otherwise: the executor routes on it (--gpus on SLURM)."""
    if "backend" in wildcards.keys():
        return int(device_of(wildcards.backend) == "cuda")
    return int(wildcards.device == "cuda")


def partition(wildcards):
    """The SLURM partition (profiles/slurm): the GPU one for a GPU job, else the CPU one."""
    keys = wildcards.keys()
    on_gpu = ("backend" in keys or "device" in keys) and gpu_jobs(wildcards)
    return SETTINGS.partitions["gpu" if on_gpu else "cpu"]


# A measuring job must not share its node: another job's load makes its latencies meaningless.
# Locally the timing_slot resource and all cores do this; on SLURM, --exclusive.
EXCLUSIVE_NODE = "--exclusive"


def compile_calibration(wildcards):
    if wildcards.precision in get_backend(wildcards.backend).needs_calibration:
        return f"results/inputs/{wildcards.model}/calibration.npz"
    return []


# ---------------------------------------------------------------- targets


def _unique(paths):
    return list(dict.fromkeys(paths))


def timing_targets():
    return _unique(
        f"results/timings/{r.model}/{r.backend}/{r.precision}/{r.shape}/b{r.batch}.json"
        for r in PLANNED
    )


def parity_targets():
    return _unique(
        f"results/parity/{r.model}/{r.backend}/{r.precision}/{r.shape}.json"
        for r in PLANNED
    )


def compile_targets():
    return _unique(
        f"results/compiled/{r.model}/{r.backend}/{r.precision}/{r.shape}"
        for r in PLANNED
    )


def tuning_targets():
    return _unique(
        f"results/tuning/{r.model}/{r.backend}"
        for r in PLANNED
        if get_backend(r.backend).needs_tuning
    )


def comparison_targets():
    return _unique(
        f"results/comparisons/{r.model}/{device_of(r.backend)}/b{r.batch}.json"
        for r in PLANNED
    )


def onnx_fact_targets():
    used = {
        (r.model, r.shape) for r in PLANNED if get_backend(r.backend).source == "onnx"
    }
    exports = [
        f"results/onnx/{model}/export.json" for model in sorted({m for m, _ in used})
    ]
    return exports + [
        f"results/onnx/{model}/{shape}/simplify.json" for model, shape in sorted(used)
    ]


def model_fact_targets():
    return [f"results/models/{model}/model.json" for model in SETTINGS.models]


# Submitting through SLURM: a missing sbatch or a dead controller is one line before any job
# (the executor would otherwise fail every job with a confusing error, or wait).
onstart:
    if getattr(workflow.executor_plugin, "name", None) == "slurm":
        unreachable = slurm_unreachable()
        if unreachable:
            raise WorkflowError(unreachable)
