"""Your model as you have it: your own factory, a fine-tuned torchvision checkpoint with its own
head, and the files they come from as inputs of the DAG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deploybench.errors import ConfigError, InputFileError  # noqa: E402
from deploybench.models import load_model, model_source_files  # noqa: E402
from helpers import fetch, model_spec, small_cnn_onnx, two_input_graph  # noqa: E402

USER_CODE = Path(__file__).parent / "data" / "user_code"
FACTORY_FILE = USER_CODE / "small_cnn.py"


def factory_spec(function="build", **fields):
    return model_spec(
        "mine",
        source="python",
        factory=f"{FACTORY_FILE}:{function}",
        input_size=32,
        **fields,
    )


def test_a_factory_in_a_file_builds_the_model_with_the_configs_keyword_arguments(tmp_path):
    spec = factory_spec(builder_options={"num_classes": 7, "width": 4})
    facts = fetch(spec, tmp_path)
    assert facts["pretrained"] is False and "speed only" in facts["weights_note"]
    model, loaded_spec = load_model(tmp_path)
    assert type(model).__name__ == "SmallCNN" and model.head.out_features == 7
    assert model.features[0].out_channels == 4
    assert loaded_spec.factory == spec.factory
    x = torch.rand(2, 3, 32, 32)
    with torch.inference_mode():
        again, _ = load_model(tmp_path)
        assert torch.equal(model(x), again(x))  # rebuilt by the factory, weights from model.pt


def test_a_factory_by_module_name_is_imported_from_the_working_directory(tmp_path, monkeypatch):
    package = tmp_path / "my_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(FACTORY_FILE.read_text())
    import sys

    monkeypatch.chdir(tmp_path)
    # the library puts the working directory on the path itself; this copy is restored after
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    spec = model_spec("mine", source="python", factory="my_pkg.models:build", input_size=32)
    try:
        assert model_source_files(spec) == {"factory": str(package / "models.py")}
        facts = fetch(spec, tmp_path / "out")
    finally:
        for name in [m for m in sys.modules if m == "my_pkg" or m.startswith("my_pkg.")]:
            del sys.modules[name]
    assert facts["parameters"] > 0


@pytest.mark.parametrize(
    ("function", "message"),
    [
        (
            "broken",
            "factory .*small_cnn.py:broken failed: RuntimeError: weights server unreachable",
        ),
        ("not_a_module", "returned str, not a torch.nn.Module"),
        ("absent", "has no function 'absent'"),
    ],
)
def test_a_factory_that_fails_is_one_line_with_its_own_error(tmp_path, function, message):
    with pytest.raises(ConfigError, match=message) as info:
        fetch(factory_spec(function), tmp_path)
    assert "\n" not in str(info.value)


def test_a_factory_that_cannot_be_found_is_refused_when_the_dag_is_built(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="factory module nowhere.models not found"):
        model_source_files(model_spec("m", source="python", factory="nowhere.models:build"))
    with pytest.raises(ConfigError, match="factory file .*gone.py not found"):
        model_source_files(model_spec("m", source="python", factory="gone.py:build"))
    with pytest.raises(InputFileError, match="checkpoint w.pt not found: fix models.m.checkpoint"):
        model_source_files(_checkpointed("w.pt"))


def _checkpointed(path):
    return model_spec(
        "m", source="checkpoint", architecture="mobilenet_v3_small", checkpoint=str(path)
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"source": "python"}, "source python needs 'factory"),
        ({"source": "python", "factory": "a:b", "architecture": "x"}, "takes no 'architecture'"),
        ({"source": "torchvision", "architecture": "resnet18", "factory": "a:b"}, "only read"),
    ],
)
def test_a_factory_spec_is_checked_when_the_config_is_read(fields, message):
    with pytest.raises(ConfigError, match=message):
        model_spec("m", **fields)


def fine_tuned_checkpoint(path, num_classes=10):
    """A torchvision classifier fine-tuned to ``num_classes`` (its head replaced), saved as a
    training script does."""
    import torchvision

    net = torchvision.models.mobilenet_v3_small(weights=None, num_classes=num_classes)
    torch.nn.init.constant_(net.classifier[-1].bias, 0.25)
    torch.save({"model": net.state_dict(), "epoch": 12}, path)
    return path


def test_a_fine_tuned_checkpoint_loads_with_its_own_head(tmp_path):
    path = fine_tuned_checkpoint(tmp_path / "tuned.pt")
    spec = model_spec(
        "tuned",
        source="checkpoint",
        architecture="mobilenet_v3_small",
        checkpoint=str(path),
        builder_options={"num_classes": 10},
        input_size=32,
    )
    facts = fetch(spec, tmp_path / "out")
    assert facts["pretrained"] is True
    model, _ = load_model(tmp_path / "out")
    assert model.classifier[-1].out_features == 10
    assert torch.all(model.classifier[-1].bias == 0.25)


def test_a_head_of_another_size_names_both_class_counts_and_the_fix(tmp_path):
    path = fine_tuned_checkpoint(tmp_path / "tuned.pt")
    with pytest.raises(InputFileError) as info:
        fetch(_checkpointed(path), tmp_path / "out")
    message = str(info.value)
    assert "\n" not in message
    assert "a head of 10 classes" in message and "built with 1000" in message
    assert "builder_options: {num_classes: 10}" in message


def test_a_checkpoint_of_another_body_names_the_first_differing_tensor(tmp_path):
    import torchvision

    path = tmp_path / "wide.pt"
    torch.save(torchvision.models.mobilenet_v3_large(weights=None).state_dict(), path)
    with pytest.raises(InputFileError, match=r"does not match the architecture: \S+ is \[") as info:
        fetch(_checkpointed(path), tmp_path / "out")
    assert "num_classes" not in str(info.value)


def test_a_factory_model_takes_a_checkpoint_on_top(tmp_path):
    from importlib.util import module_from_spec, spec_from_file_location

    module_spec = spec_from_file_location("small_cnn_for_test", FACTORY_FILE)
    module = module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    trained = module.build(num_classes=3, width=4)
    torch.nn.init.constant_(trained.head.bias, -1.5)
    torch.save(trained.state_dict(), tmp_path / "trained.pt")
    spec = factory_spec(
        builder_options={"num_classes": 3, "width": 4}, checkpoint=str(tmp_path / "trained.pt")
    )
    facts = fetch(spec, tmp_path / "out")
    assert facts["pretrained"] is True and facts["weights_note"] == "pretrained"
    model, _ = load_model(tmp_path / "out")
    assert torch.all(model.head.bias == -1.5)
    assert model_source_files(spec) == {
        "checkpoint": str(tmp_path / "trained.pt"),
        "factory": str(FACTORY_FILE),
    }


def test_a_model_without_a_factory_keeps_the_params_it_had_so_nothing_reruns():
    """The fetch job's params are the spec: a key added to it since (factory) is left out
    while unset, or upgrading would rerun every model's chain."""
    spec = model_spec("m", source="torchvision", architecture="resnet18")
    assert "factory" not in spec.as_dict()
    assert factory_spec().as_dict()["factory"].endswith("small_cnn.py:build")


# ---------------------------------------------------------------- an ONNX file as the model


def onnx_spec(path, **fields):
    return model_spec("file", source="onnx", onnx=str(path), input_size=64, **fields)


def test_an_onnx_file_is_fed_its_tasks_data_under_its_own_input_names(tmp_path):
    from deploybench.tasks import task_for

    small_cnn_onnx(tmp_path / "cnn.onnx")
    spec = onnx_spec(tmp_path / "cnn.onnx")
    task = task_for(spec)
    task.check(spec)
    feeds, _ = task.evaluation_feeds(spec)
    assert list(feeds) == ["pixels"] and feeds["pixels"].shape[1:] == (3, 64, 64)
    assert list(task.calibration_feeds(spec, 4, 1)) == ["pixels"]
    assert task.output_names(spec, 1) == ["scores"]
    assert task.class_scores and task.unit == "images"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, r"takes 2 inputs \(mask, x\): describe them with task: tensors"),
        (
            {
                "task": "tensors",
                "inputs": {"x": {"shape": ["batch", 4]}, "y": {"shape": ["batch", 4]}},
            },
            "the config's inputs lack mask",
        ),
        (
            {
                "task": "tensors",
                "inputs": {"x": {"shape": ["batch", 4]}, "mask": {"shape": ["batch", 5]}},
            },
            r"mask is \[1, 4\] in the graph, \[1, 5\] in the data",
        ),
    ],
)
def test_an_onnx_file_the_data_cannot_feed_is_refused_in_one_line(tmp_path, fields, message):
    from deploybench.tasks import task_for

    two_input_graph(tmp_path / "pair.onnx", 1)
    spec = onnx_spec(tmp_path / "pair.onnx", **fields)
    with pytest.raises(ConfigError, match=message) as info:
        task_for(spec).check(spec)
    assert "\n" not in str(info.value)


def test_an_image_size_other_than_the_graphs_names_both_and_input_size(tmp_path):
    from deploybench.tasks import task_for

    small_cnn_onnx(tmp_path / "cnn.onnx", batch=1)
    spec = model_spec("file", source="onnx", onnx=str(tmp_path / "cnn.onnx"), input_size=224)
    with pytest.raises(ConfigError, match=r"pixels is \[1, 3, 64, 64\] in the graph.*input_size"):
        task_for(spec).check(spec)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"source": "onnx"}, "source onnx needs 'onnx: path/to/model.onnx'"),
        ({"source": "onnx", "onnx": "m.onnx", "architecture": "resnet18"}, "drop architecture"),
        ({"source": "onnx", "onnx": "m.onnx", "module": "backbone"}, "drop module"),
        ({"source": "torchvision", "architecture": "resnet18", "onnx": "m.onnx"}, "only read"),
    ],
)
def test_an_onnx_spec_is_checked_when_the_config_is_read(fields, message):
    with pytest.raises(ConfigError, match=message):
        model_spec("m", **fields)


def test_the_plan_skips_eager_backends_and_batches_a_fixed_graph_cannot_take(tmp_path):
    from deploybench.hardware import HostFacts
    from deploybench.plan import plan
    from deploybench.settings import parse_config
    from helpers import validated

    small_cnn_onnx(tmp_path / "free.onnx")
    small_cnn_onnx(tmp_path / "fixed.onnx", batch=2)
    config = {
        "models": {
            "free": {"source": "onnx", "onnx": str(tmp_path / "free.onnx"), "input_size": 64},
            "fixed": {"source": "onnx", "onnx": str(tmp_path / "fixed.onnx"), "input_size": 64},
        },
        "backends": ["pytorch", "onnxruntime"],
        "precisions": ["fp32"],
        "batch_sizes": [1, 2],
    }
    rows = plan(parse_config(validated(config)), HostFacts(frozenset(), has_gpu=False))
    planned = {(r.model, r.backend, r.shape, r.batch) for r in rows if r.planned}
    assert planned == {
        ("free", "onnxruntime", "dynamic", 1),
        ("free", "onnxruntime", "dynamic", 2),
        ("free", "onnxruntime", "static_b1", 1),
        ("free", "onnxruntime", "static_b2", 2),
        ("fixed", "onnxruntime", "static_b2", 2),
    }
    reasons = {(r.model, r.backend, r.shape, r.batch): r.reason for r in rows if not r.planned}
    assert reasons[("free", "pytorch", "dynamic", 1)] == (
        f"{tmp_path / 'free.onnx'} is an ONNX file: there is no PyTorch model to run "
        "(speedups and parity are against ONNX Runtime fp32)"
    )
    fixed = f"{tmp_path / 'fixed.onnx'} fixes the batch at 2: export it with a free batch axis"
    assert reasons[("fixed", "onnxruntime", "dynamic", 1)] == fixed
    assert reasons[("fixed", "onnxruntime", "static_b1", 1)] == fixed


def test_the_baseline_is_eager_fp32_else_onnx_runtime_fp32_on_the_dynamic_graph():
    from deploybench.plan import choose_baseline
    from deploybench.specs import ConfigKey

    def keys(*configs):
        return [ConfigKey("m", *c) for c in configs]

    with_eager = keys(("pytorch", "fp32", "dynamic"), ("onnxruntime", "fp32", "dynamic"))
    assert choose_baseline(with_eager, "cpu") == "pytorch fp32"
    graphs = keys(
        ("onnxruntime", "int8", "dynamic"),
        ("onnxruntime", "fp32", "static_b8"),
        ("onnxruntime", "fp32", "dynamic"),
    )
    assert choose_baseline(graphs, "cpu") == "onnxruntime fp32 dynamic"
    assert choose_baseline(graphs[:2], "cpu") == "onnxruntime fp32 static_b8"


def test_an_onnx_files_reference_is_onnx_runtime_fp32_on_the_imported_graph(tmp_path):
    import onnxruntime
    from deploybench.feeds import save_feeds
    from deploybench.io import load_npz
    from deploybench.stages.onnx import import_onnx
    from deploybench.stages.prepare import reference_outputs

    small_cnn_onnx(tmp_path / "cnn.onnx")
    spec = onnx_spec(tmp_path / "cnn.onnx")
    graph = tmp_path / "onnx" / "file" / "exported.onnx"
    graph.parent.mkdir(parents=True)
    import_onnx(
        spec.as_dict(),
        str(tmp_path / "cnn.onnx"),
        str(graph),
        str(graph.parent / "export.json"),
        str(tmp_path / "model.json"),
    )
    pixels = np.random.default_rng(0).random((5, 3, 64, 64), dtype=np.float32)
    save_feeds(tmp_path / "evaluation.npz", {"pixels": pixels})
    reference_outputs(str(graph), str(tmp_path / "evaluation.npz"), 1, str(tmp_path / "out.npz"))
    direct = onnxruntime.InferenceSession(str(tmp_path / "cnn.onnx")).run(None, {"pixels": pixels})
    np.testing.assert_allclose(load_npz(tmp_path / "out.npz")["scores"], direct[0], rtol=1e-5)


def test_an_onnx_files_other_symbolic_axes_are_fixed_at_the_experiments_sizes(tmp_path):
    """As for an export: only the batch stays free, so every backend can infer every shape."""
    import onnx
    from deploybench.onnx_tools import simplify_onnx
    from deploybench.stages.onnx import import_onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["tokens"], ["hidden"])],
        "sequence_model",
        [helper.make_tensor_value_info("tokens", TensorProto.FLOAT, ["N", "seq"])],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["N", "seq"])],
    )
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "s.onnx"
    )
    spec = onnx_spec(
        tmp_path / "s.onnx",
        task="tensors",
        inputs={"tokens": {"shape": ["batch", "sequence"]}},
        axes={"sequence": 16},
    )
    out = tmp_path / "exported.onnx"
    import_onnx(
        spec.as_dict(),
        str(tmp_path / "s.onnx"),
        str(out),
        str(tmp_path / "e.json"),
        str(tmp_path / "m.json"),
    )
    facts = simplify_onnx(out, tmp_path / "dynamic.onnx", "onnxsim")
    assert facts["fixed_axes"] == {"seq": 16}
    dims = onnx.load(tmp_path / "dynamic.onnx").graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and dims[1].dim_value == 16


def test_picked_configurations_of_an_onnx_file_keep_its_onnx_runtime_baseline(tmp_path):
    from deploybench.hardware import HostFacts
    from deploybench.plan import plan
    from deploybench.settings import parse_config
    from helpers import validated

    small_cnn_onnx(tmp_path / "free.onnx")
    config = {
        "models": {
            "free": {"source": "onnx", "onnx": str(tmp_path / "free.onnx"), "input_size": 64}
        },
        "shapes": ["static"],
        "batch_sizes": [1],
        "configurations": [{"backend": "openvino", "precision": "int8", "shape": "static"}],
    }
    rows = plan(parse_config(validated(config)), HostFacts(frozenset(), has_gpu=False))
    assert sorted((r.backend, r.precision, r.shape) for r in rows if r.planned) == [
        ("onnxruntime", "fp32", "dynamic"),  # the baseline, on the dynamic graph
        ("openvino", "int8", "static_b1"),
    ]
