"""Your model as you have it: your own factory, a fine-tuned torchvision checkpoint with its own
head, and the files they come from as inputs of the DAG."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from deploybench.errors import ConfigError, InputFileError  # noqa: E402
from deploybench.models import load_model, model_source_files  # noqa: E402
from helpers import fetch, model_spec  # noqa: E402

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
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # undone after the test, like sys.modules below
    monkeypatch.setattr("sys.modules", dict(__import__("sys").modules))
    spec = model_spec("mine", source="python", factory="my_pkg.models:build", input_size=32)
    assert model_source_files(spec) == {"factory": str(package / "models.py")}
    facts = fetch(spec, tmp_path / "out")
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
