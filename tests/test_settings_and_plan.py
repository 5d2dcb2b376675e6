"""The validated config as typed settings, and the plan of combinations built from it."""

from pathlib import Path

import pytest
from deploybench.errors import ConfigError
from deploybench.hardware import HostFacts
from deploybench.plan import NO_GPU_REASON, plan
from deploybench.settings import describe_validation_error, parse_config
from deploybench.specs import shape_names
from helpers import SCHEMA, validated
from helpers import default_config as load_default_config
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

ZEN4 = HostFacts(cpu_flags=frozenset({"avx512f", "avx512_bf16"}), has_gpu=False)
OLD_CPU = HostFacts(cpu_flags=frozenset({"avx2"}), has_gpu=False)
SCHEMA = str(SCHEMA)


@pytest.fixture
def default_config():
    return load_default_config()


def test_default_config_validates_and_gets_schema_defaults(default_config):
    import yaml

    config = validated(default_config)
    timing_schema = yaml.safe_load(Path(SCHEMA).read_text())["properties"]["timing"]["properties"]
    assert "timing" not in default_config  # so every timing value below came from the schema
    assert config["timing"]["min_iterations"] == timing_schema["min_iterations"]["default"]
    assert config["parity"]["tolerances"]["fp32"]["max_rel"] == 1e-4
    assert config["export"]["simplifier"] == "onnxsim"
    settings = parse_config(config)
    assert set(settings.models) == {"resnet18", "mobilenet_v3_small", "efficientnet_lite0"}
    assert settings.models["efficientnet_lite0"].pretrained
    assert not settings.models["resnet18"].pretrained
    assert settings.models["resnet18"].resize == 256


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"batch_sizes": [-1]}, "batch_sizes/0"),
        ({"batch_sizes": "8"}, "batch_sizes"),
        ({"precisions": ["fp8"]}, "precisions/0"),
        ({"timing": {"min_iterations": "many"}}, "timing/min_iterations"),
        ({"models": {"m": {"source": "hub"}}}, "models/m/source"),
        ({"typo_key": 1}, "(top level)"),
    ],
)
def test_malformed_config_fails_with_one_line_naming_the_place(default_config, change, where):
    config = {**default_config, **change}
    with pytest.raises(WorkflowError) as info:
        validate(config, SCHEMA)
    message = describe_validation_error(info.value)
    assert "\n" not in message
    assert where in message
    assert "fix it in your config" in message


def test_unknown_backend_and_options_are_refused(default_config):
    with pytest.raises(ConfigError, match="unknown backend 'tflite'"):
        parse_config(validated({**default_config, "backends": ["pytorch", "tflite"]}))
    with pytest.raises(ConfigError, match="unknown backend"):
        parse_config(validated({**default_config, "backend_options": {"tflite": {}}}))
    with pytest.raises(ConfigError, match="unknown option"):
        parse_config(
            validated({**default_config, "backend_options": {"onnxruntime": {"turbo": True}}})
        )


def test_model_spec_consistency_checks(default_config):
    bad = {"models": {"m": {"source": "checkpoint", "architecture": "resnet18"}}}
    with pytest.raises(ConfigError, match="checkpoint"):
        parse_config(validated({**default_config, **bad}))
    bad = {"models": {"m": {"source": "torchvision"}}}
    with pytest.raises(ConfigError, match="architecture"):
        parse_config(validated({**default_config, **bad}))


def test_shape_names_expand_static_per_batch():
    assert shape_names(("static", "dynamic"), (1, 8)) == ["static_b1", "static_b8", "dynamic"]
    assert shape_names(("dynamic",), (1, 8)) == ["dynamic"]


def test_plan_covers_every_combination_with_a_status(default_config):
    settings = parse_config(validated(default_config))
    rows = plan(settings, ZEN4)
    statuses = {(r.model, r.backend, r.precision, r.shape, r.batch): r for r in rows}
    assert statuses[("resnet18", "onnxruntime", "int8", "static_b8", 8)].planned
    assert statuses[("resnet18", "onnxruntime", "fp32", "dynamic", 1)].planned
    assert statuses[("resnet18", "onnxruntime", "fp32", "dynamic", 8)].planned
    skipped = statuses[("resnet18", "onnxruntime", "bf16", "dynamic", 1)]
    assert not skipped.planned and "does not offer bf16" in skipped.reason
    # eager PyTorch has no static graphs: it is planned once per batch, as dynamic
    assert ("resnet18", "pytorch", "fp32", "static_b1", 1) not in statuses
    assert statuses[("resnet18", "pytorch", "bf16", "dynamic", 8)].planned
    # every model x backend x precision appears
    triples = {(r.model, r.backend, r.precision) for r in rows}
    assert triples == {
        (m, b, p) for m in settings.models for b in settings.backends for p in settings.precisions
    }
    # this host has no GPU: every GPU combination is there, skipped for that reason
    on_gpu = [r for r in rows if r.backend in ("pytorch_cuda", "onnxruntime_cuda", "tensorrt")]
    assert on_gpu and {(r.planned, r.reason) for r in on_gpu} == {(False, NO_GPU_REASON)}


def test_eager_baseline_runs_whatever_graph_shapes_are_configured(default_config):
    settings = parse_config(validated({**default_config, "shapes": ["static"]}))
    rows = plan(settings, ZEN4)
    eager = [r for r in rows if r.backend == "pytorch" and r.precision == "fp32"]
    assert {(r.shape, r.batch, r.planned) for r in eager if r.model == "resnet18"} == {
        ("dynamic", 1, True),
        ("dynamic", 8, True),
    }
    onnx_rows = [r for r in rows if r.backend == "onnxruntime" and r.planned]
    assert {r.shape for r in onnx_rows} == {"static_b1", "static_b8"}


def test_bf16_is_skipped_on_a_cpu_without_it(default_config):
    settings = parse_config(validated(default_config))
    rows = [r for r in plan(settings, OLD_CPU) if r.precision == "bf16"]
    by_backend = {r.backend: r for r in rows}
    assert not by_backend["pytorch"].planned
    assert "lacks native bf16" in by_backend["pytorch"].reason
    assert "lacks native bf16" in by_backend["openvino"].reason


def test_missing_package_skips_only_that_backend(default_config, monkeypatch):
    from deploybench.backends import get_backend

    backend = get_backend("openvino")
    monkeypatch.setattr(
        backend, "availability", classmethod(lambda cls: (False, "openvino not installed"))
    )
    settings = parse_config(validated(default_config))
    rows = plan(settings, ZEN4)
    assert not any(r.planned for r in rows if r.backend == "openvino")
    assert {r.reason for r in rows if r.backend == "openvino"} == {"openvino not installed"}
    assert any(r.planned for r in rows if r.backend == "onnxruntime")


def test_shapes_a_backend_does_not_take_are_skipped_with_its_reason(default_config):
    settings = parse_config(validated({**default_config, "backends": ["pytorch", "tvm"]}))
    rows = {(r.model, r.backend, r.precision, r.shape, r.batch): r for r in plan(settings, ZEN4)}
    free = rows[("resnet18", "tvm", "fp32", "dynamic", 8)]
    assert not free.planned and "static shapes only" in free.reason
    if rows[("resnet18", "tvm", "fp32", "static_b8", 8)].planned:  # tvm installed
        # int8 is declined with the finding, not "does not offer"
        assert "convolves in fp32" in rows[("resnet18", "tvm", "int8", "static_b1", 1)].reason
    # a precision the backend does not support wins over the shape: the first reason shown
    assert "does not offer bf16" in rows[("resnet18", "tvm", "bf16", "dynamic", 1)].reason


def test_a_tuning_override_for_a_model_not_in_the_experiment_is_refused(default_config):
    config = {**default_config, "tuning": {"tvm": {"models": {"resnet81": {"trials_per_task": 4}}}}}
    with pytest.raises(ConfigError, match="tuning.tvm.models: resnet81 is not a configured model"):
        parse_config(validated(config))


def planned_shapes(rows, model, backend, precision):
    return sorted(
        (r.shape, r.batch)
        for r in rows
        if (r.model, r.backend, r.precision) == (model, backend, precision)
    )


def test_a_static_graph_is_planned_only_at_its_own_batch_size(default_config):
    config = {**default_config, "backends": ["pytorch", "onnxruntime"], "precisions": ["fp32"]}
    settings = parse_config(validated({**config, "batch_sizes": [1, 4, 8]}))
    rows = plan(settings, ZEN4)
    assert planned_shapes(rows, "resnet18", "onnxruntime", "fp32") == [
        ("dynamic", 1),
        ("dynamic", 4),
        ("dynamic", 8),
        ("static_b1", 1),
        ("static_b4", 4),
        ("static_b8", 8),
    ]
    # eager PyTorch takes any batch: one dynamic row per batch size, no static graph
    assert planned_shapes(rows, "resnet18", "pytorch", "fp32") == [
        ("dynamic", 1),
        ("dynamic", 4),
        ("dynamic", 8),
    ]
    keys = [(r.model, r.backend, r.precision, r.shape, r.batch) for r in rows]
    assert len(keys) == len(set(keys)) == len(settings.models) * (6 + 3)
    assert all(r.planned for r in rows)

    only_static = parse_config(validated({**config, "shapes": ["static"], "batch_sizes": [2]}))
    assert planned_shapes(plan(only_static, ZEN4), "resnet18", "onnxruntime", "fp32") == [
        ("static_b2", 2)
    ]


def test_gpu_backends_are_planned_on_a_host_with_a_gpu(default_config, monkeypatch):
    from deploybench.backends import get_backend

    # what this test environment has installed must not matter: availability is set here
    for name, answer in (("pytorch_cuda", (True, "available")), ("tensorrt", (False, "no trt"))):
        monkeypatch.setattr(get_backend(name), "availability", classmethod(lambda cls, a=answer: a))
    config = {**default_config, "backends": ["pytorch_cuda", "tensorrt"], "precisions": ["fp32"]}
    settings = parse_config(validated(config))
    gpu_host = HostFacts(cpu_flags=frozenset({"avx2"}), has_gpu=True)
    rows = plan(settings, gpu_host)
    eager = [r for r in rows if r.backend == "pytorch_cuda"]
    assert eager and all(r.planned and r.reason == "" for r in eager)
    assert {r.reason for r in rows if r.backend == "tensorrt"} == {"no trt"}
    # the same settings on a host without a GPU: every CUDA row skipped for that reason
    assert {r.reason for r in plan(settings, OLD_CPU)} == {NO_GPU_REASON}


def test_a_skipped_combination_keeps_its_own_key_reason_and_batch(default_config):
    settings = parse_config(validated(default_config))
    rows = {(r.model, r.backend, r.precision, r.shape, r.batch): r for r in plan(settings, OLD_CPU)}
    skipped = rows[("resnet18", "onnxruntime", "bf16", "static_b8", 8)]
    assert skipped.key.as_dict() == {
        "model": "resnet18",
        "backend": "onnxruntime",
        "precision": "bf16",
        "shape": "static_b8",
    }
    record = skipped.skip_record()
    assert (record.model, record.backend, record.precision, record.shape, record.batch) == (
        "resnet18",
        "onnxruntime",
        "bf16",
        "static_b8",
        8,
    )
    assert record.status == "skipped" and "does not offer bf16" in record.reason
    assert record.reason == skipped.reason


# ---------------------------------------------------------------- gpu: true plans for other hosts
# A login node that builds the DAG for GPU nodes has neither onnxruntime-gpu nor TensorRT (the
# README's cluster install is [cpu,slurm]); the GPU jobs run in the [gpu] extra's environment
# (envs/gpu.yaml). Issue 19, item 10.

GPU_BACKENDS = ("pytorch_cuda", "onnxruntime_cuda", "tensorrt")
# what common.smk builds for `gpu: true` where nvidia-smi sees nothing: capability unknown
LOGIN_NODE = HostFacts(cpu_flags=frozenset({"avx2"}), has_gpu=True)
TURING_NODE = HostFacts(cpu_flags=frozenset({"avx2"}), has_gpu=True, gpu_compute_capability=(7, 5))


@pytest.fixture
def login_node(monkeypatch):
    """This host lacks TensorRT, onnxruntime-gpu, onnxconverter-common and OpenVINO, whatever
    the test environment has installed."""
    from deploybench.backends import get_backend
    from deploybench.backends.base import Backend

    missing = {
        "tensorrt": "tensorrt not installed (pip install 'deploybench[gpu]')",
        "onnxruntime_cuda": "onnxruntime-gpu not installed (the CPU build of onnxruntime ...)",
        "openvino": "openvino not installed (pip install 'deploybench[openvino]')",
    }
    for name, reason in missing.items():
        monkeypatch.setattr(
            get_backend(name), "availability", classmethod(lambda cls, r=reason: (False, r))
        )
    absent = {"onnxconverter_common", "nncf"}
    here = Backend._missing_package.__func__
    monkeypatch.setattr(
        Backend,
        "_missing_package",
        classmethod(lambda cls, ps: next((p for p in ps if p in absent), None) or here(cls, ps)),
    )
    return missing


def gpu_rows(default_config, host, gpu):
    config = {**default_config, "precisions": ["fp32", "fp16", "bf16", "int8"], "gpu": gpu}
    rows = plan(parse_config(validated(config)), host)
    return {(r.backend, r.precision): r for r in rows if r.model == "resnet18" and r.batch == 1}


def test_gpu_true_judges_gpu_backends_as_in_the_gpu_environment(default_config, login_node):
    from deploybench.backends import get_backend

    rows = gpu_rows(default_config, LOGIN_NODE, True)
    for name in GPU_BACKENDS:
        for precision in get_backend(name).precisions:
            assert rows[(name, precision)].planned, rows[(name, precision)]
    # what no environment changes stays skipped with its reason
    assert "does not offer int8" in rows[("pytorch_cuda", "int8")].reason
    assert "does not offer bf16" in rows[("tensorrt", "bf16")].reason
    # the CPU backends: judged by this host's packages, as before
    assert rows[("openvino", "fp32")].reason == login_node["openvino"]
    assert rows[("onnxruntime", "fp32")].planned


def test_gpu_true_still_skips_what_a_known_gpu_lacks(default_config, login_node):
    rows = gpu_rows(default_config, TURING_NODE, True)
    assert "too old for native bf16" in rows[("pytorch_cuda", "bf16")].reason
    assert rows[("tensorrt", "int8")].planned and rows[("onnxruntime_cuda", "fp16")].planned


def test_gpu_auto_and_false_still_judge_by_this_host(default_config, login_node):
    # gpu: auto that found a GPU here: the jobs run here, so this host's packages decide
    gpu_host = HostFacts(cpu_flags=frozenset({"avx2"}), has_gpu=True)
    rows = gpu_rows(default_config, gpu_host, "auto")
    assert rows[("tensorrt", "fp32")].reason == login_node["tensorrt"]
    assert rows[("onnxruntime_cuda", "int8")].reason == login_node["onnxruntime_cuda"]
    assert rows[("pytorch_cuda", "fp16")].planned
    rows = gpu_rows(default_config, OLD_CPU, False)
    assert {r.reason for k, r in rows.items() if k[0] in GPU_BACKENDS} == {NO_GPU_REASON}


def test_gpu_true_judges_a_gpu_backend_outside_the_gpu_extra_by_this_host(
    default_config, monkeypatch
):
    # a GPU backend from another package, installed beside the workflow: no [gpu] environment
    # holds its packages, so the planning host's answer stands
    from deploybench.backends import get_backend

    monkeypatch.setenv("DEPLOYBENCH_BACKENDS", "toy_cuda=toy_backend:FakeGpuBackend")
    backend = get_backend("toy_cuda")
    monkeypatch.setattr(backend, "availability", classmethod(lambda cls: (False, "toy missing")))
    config = {**default_config, "backends": ["toy_cuda"], "precisions": ["fp32"], "gpu": True}
    rows = plan(parse_config(validated(config)), LOGIN_NODE)
    assert {(r.planned, r.reason) for r in rows} == {(False, "toy missing")}
    # the extra is what decides: the same CUDA backend in the [gpu] extra is judged as there
    monkeypatch.setattr(backend, "extra", "gpu")
    rows = plan(parse_config(validated(config)), LOGIN_NODE)
    assert rows and all(r.planned for r in rows), rows


def test_every_section_a_job_is_handed_round_trips_typed_through_its_params(default_config):
    """One settings tree, built once: each section reaches its job as params (a canonical
    dict, whose text is Snakemake's rerun trigger) and is rebuilt there equal to the tree's."""
    import json

    settings = parse_config(validated(default_config))
    sections = [
        settings.timing,
        settings.comparison,
        settings.limits,
        settings.crosscheck,
        settings.export,
        settings.inputs,
        settings.tuning("resnet18"),
        *settings.tolerances.values(),
    ]
    for section in sections:
        params = section.params()
        assert json.loads(json.dumps(params)) == params  # plain JSON: what a job can be handed
        assert type(section).from_validated(params) == section
    assert settings.limits.seconds("parity") == settings.limits.parity_seconds
    # a reordered config gives the same params text: nothing reruns
    reordered = validated({key: default_config[key] for key in reversed(list(default_config))})
    again = parse_config(reordered)
    assert json.dumps(again.comparison.params()) == json.dumps(settings.comparison.params())


def test_a_job_handed_only_its_tasks_tolerance_keys_rebuilds_the_rest_unset(default_config):
    from deploybench.specs import Tolerance

    tolerance = Tolerance.from_validated({"max_rel": 1e-4, "min_cosine": 0.99})
    assert (tolerance.max_rel, tolerance.min_cosine, tolerance.min_miou) == (1e-4, 0.99, None)


def test_a_backend_that_takes_no_integer_inputs_skips_a_text_model_with_the_reason(
    default_config, monkeypatch
):
    from deploybench.backends import get_backend

    monkeypatch.setattr(get_backend("onnxruntime"), "input_dtypes", frozenset({"float32"}))
    text = {
        "source": "text_encoder",
        "architecture": "tiny",
        "task": "text-encoder",
        "axes": {"sequence": 16},
    }
    config = {
        **default_config,
        "models": {"resnet18": default_config["models"]["resnet18"], "encoder": text},
        "backends": ["pytorch", "onnxruntime"],
        "precisions": ["fp32"],
    }
    rows = plan(parse_config(validated(config)), ZEN4)
    refused = {r.reason for r in rows if (r.model, r.backend) == ("encoder", "onnxruntime")}
    assert refused == {
        "onnxruntime takes no int64 inputs: input_ids (int64), attention_mask (int64)"
    }
    # the image model on the same backend, and the text model elsewhere, are planned
    assert all(r.planned for r in rows if r.model == "resnet18" or r.backend == "pytorch")


def _planned(rows):
    return sorted((r.model, r.backend, r.precision, r.shape, r.batch) for r in rows if r.planned)


def test_explicit_configurations_replace_the_cross_product_and_keep_the_baseline(
    default_config,
):
    config = {
        **default_config,
        "backends": ["onnxruntime"],
        "precisions": ["fp32"],
        "batch_sizes": [1],
        "configurations": [
            {
                "model": "resnet18",
                "backend": "openvino",
                "precision": "int8",
                "shape": "static",
                "batch": 32,
            },
            {
                "model": "resnet18",
                "backend": "onnxruntime",
                "precision": "fp32",
                "shape": "dynamic",
                "batch": 32,
            },
        ],
    }
    settings = parse_config(validated(config))
    # what the configurations name is added to the lists, with the baseline
    assert {"openvino", "pytorch"} <= set(settings.backends) and 32 in settings.batch_sizes
    assert _planned(plan(settings, ZEN4)) == [
        ("resnet18", "onnxruntime", "fp32", "dynamic", 32),
        ("resnet18", "openvino", "int8", "static_b32", 32),
        ("resnet18", "pytorch", "fp32", "dynamic", 32),  # the baseline, added
    ]


def test_exclude_leaves_out_what_it_matches_but_never_the_baseline(default_config):
    config = {
        **default_config,
        "backends": ["pytorch", "onnxruntime", "openvino"],
        "precisions": ["fp32", "int8"],
        "shapes": ["dynamic"],
        "batch_sizes": [1, 8],
        "exclude": [
            {"backend": "openvino", "precision": "int8"},
            {"model": "efficientnet_lite0"},
            {"batch": 8, "backend": "onnxruntime"},
            {"backend": "pytorch"},  # the baseline: kept all the same
        ],
    }
    rows = _planned(plan(parse_config(validated(config)), ZEN4))
    assert not any(m == "efficientnet_lite0" for m, *_ in rows)
    assert not any((b, p) == ("openvino", "int8") for _, b, p, *_ in rows)
    assert not any((b, n) == ("onnxruntime", 8) for _, b, _, _, n in rows)
    for model in ("resnet18", "mobilenet_v3_small"):
        for batch in (1, 8):
            assert (model, "pytorch", "fp32", "dynamic", batch) in rows
        assert (model, "onnxruntime", "int8", "dynamic", 1) in rows
        assert (model, "openvino", "fp32", "dynamic", 8) in rows


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ({"backend": "tflite"}, r"configurations\[0\]: unknown backend 'tflite'"),
        ({"model": "resnet19"}, r"configurations\[0\]: model 'resnet19' is not configured"),
    ],
)
def test_a_configuration_naming_what_does_not_exist_fails_when_the_dag_is_built(
    default_config, pattern, message
):
    with pytest.raises(ConfigError, match=message):
        parse_config(validated({**default_config, "configurations": [pattern]}))


def test_the_report_says_when_the_config_picked_its_configurations(default_config):
    from deploybench.plan import selection_note

    assert selection_note(parse_config(validated(default_config))) == ""
    picked = parse_config(validated({**default_config, "exclude": [{"precision": "bf16"}]}))
    assert "less the 1 under exclude" in selection_note(picked)
    assert "baseline" in selection_note(picked)
