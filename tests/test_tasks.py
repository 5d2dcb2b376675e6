"""Tasks (model families) as plug-ins: a throwaway task registered from outside runs the same
path as the built-in ones; the ``tensors`` task's input spec; exports with named inputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from deploybench.errors import ConfigError
from deploybench.feeds import load_feeds
from deploybench.io import load_npz
from deploybench.settings import parse_config
from deploybench.specs import ModelSpec
from deploybench.stages.prepare import prepare_calibration_inputs, prepare_evaluation_inputs
from deploybench.tasks import ENVIRONMENT_VARIABLE, InputSpec, Task, get_task, task_names
from helpers import model_spec, validated


class Pairs(Task):
    """Throwaway: an image and a per-sample scale, counted in pairs."""

    name = "pairs"
    unit = "pairs"

    def inputs(self, spec: ModelSpec) -> list[InputSpec]:
        return [
            InputSpec("image", ("batch", 3, 8, 8)),
            InputSpec("scale", ("batch", 1), "float32", 0.5, 2.0),
        ]

    def output_names(self, spec: ModelSpec, count: int) -> list[str]:
        return [f"scaled_{i}" for i in range(count)]

    def evaluation_feeds(self, spec: ModelSpec) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        rng = np.random.default_rng(spec.seed)
        feeds = {i.name: i.random(rng, 5, spec.axes) for i in self.inputs(spec)}
        return feeds, {"origin": np.asarray("pairs task")}

    def calibration_feeds(self, spec: ModelSpec, size: int, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed + 1000)
        return {i.name: i.random(rng, size, spec.axes) for i in self.inputs(spec)}


class ScaledImage:
    """A model of the pairs task: the image's channel means, times the scale."""

    def __new__(cls):
        import torch

        class Module(torch.nn.Module):
            def forward(self, image, scale):
                return image.mean(dim=(2, 3)) * scale

        return Module().eval()


@pytest.fixture
def pairs_registered(monkeypatch):
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, f"pairs={__name__}:Pairs")


def config_with(**model: Any) -> dict[str, Any]:
    return validated(
        {"models": {"m": {"source": "torchvision", "architecture": "resnet18", **model}}}
    )


def test_an_unknown_task_is_one_line_naming_the_known_ones():
    with pytest.raises(ConfigError, match="unknown task 'pairs': choose from classification"):
        parse_config(config_with(task="pairs"))


def test_a_task_registered_from_outside_is_known_and_checked(pairs_registered):
    assert "pairs" in task_names() and isinstance(get_task("pairs"), Pairs)
    assert parse_config(config_with(task="pairs")).models["m"].task == "pairs"


def test_a_plug_in_that_is_not_a_task_is_refused(monkeypatch):
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, f"pairs={__name__}:ScaledImage")
    with pytest.raises(ConfigError, match="is not a deploybench task"):
        get_task("pairs")


def test_the_stages_write_the_tasks_named_inputs(pairs_registered, tmp_path):
    spec = model_spec("m", source="torchvision", architecture="resnet18", task="pairs", seed=3)
    prepare_evaluation_inputs(spec.as_dict(), str(tmp_path / "e.npz"))
    evaluation = load_feeds(tmp_path / "e.npz")
    assert list(evaluation) == ["image", "scale"]
    assert evaluation["image"].shape == (5, 3, 8, 8) and evaluation["scale"].shape == (5, 1)
    assert evaluation["scale"].min() >= 0.5 and evaluation["scale"].max() <= 2.0
    assert str(load_npz(tmp_path / "e.npz")["origin"]) == "pairs task"  # the task's own facts
    prepare_calibration_inputs(spec.as_dict(), 7, 1, str(tmp_path / "c.npz"))
    calibration = load_feeds(tmp_path / "c.npz")
    assert list(calibration) == ["image", "scale"] and len(calibration["scale"]) == 7


@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_an_export_names_every_input_and_output_and_frees_the_batch(
    pairs_registered, exporter, tmp_path
):
    pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    import onnx
    import torch

    spec = model_spec("m", source="torchvision", architecture="resnet18", task="pairs")
    task, model = get_task("pairs"), ScaledImage()
    task.export_onnx(model, spec, tmp_path / "m.onnx", None, exporter, 18)
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    assert [i.name for i in graph.input] == ["image", "scale"]
    assert [o.name for o in graph.output] == ["scaled_0"]
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    for batch in (1, 5):  # traced at 2: any batch runs
        feeds = task.example_feeds(spec, batch)
        (out,) = session.run(None, feeds)
        with torch.inference_mode():
            expected = model(*(torch.from_numpy(v) for v in feeds.values())).numpy()
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


# ---- the tensors task: a model described by its named inputs alone


TEXT_INPUTS = {
    "input_ids": {"shape": ["batch", "sequence"], "dtype": "int64", "range": [0, 3]},
    "attention_mask": {"shape": ["batch", "sequence"], "dtype": "int64", "range": [1, 1]},
    "scale": {"shape": ["batch", 2]},
}


def tensors_spec(**fields: Any) -> ModelSpec:
    settings = parse_config(
        config_with(task="tensors", inputs=TEXT_INPUTS, axes={"sequence": 16}, **fields)
    )
    return settings.models["m"]


def test_tensors_fill_each_input_in_its_dtype_range_and_symbolic_sizes():
    spec = tensors_spec()
    feeds, _ = get_task("tensors").evaluation_feeds(spec)
    assert list(feeds) == ["input_ids", "attention_mask", "scale"]
    assert feeds["input_ids"].shape == (16, 16) and feeds["input_ids"].dtype == np.int64
    # an integer range includes both ends
    assert set(np.unique(feeds["input_ids"])) == {0, 1, 2, 3}
    assert (feeds["attention_mask"] == 1).all()
    assert feeds["scale"].dtype == np.float32 and feeds["scale"].shape == (16, 2)
    assert feeds["scale"].min() >= 0.0 and feeds["scale"].max() <= 1.0


def test_tensors_data_is_seeded_and_calibration_differs_from_evaluation():
    task = get_task("tensors")
    first, _ = task.evaluation_feeds(tensors_spec())
    again, _ = task.evaluation_feeds(tensors_spec())
    other, _ = task.evaluation_feeds(tensors_spec(seed=1))
    np.testing.assert_array_equal(first["scale"], again["scale"])
    assert not np.array_equal(first["scale"], other["scale"])
    calibration = task.calibration_feeds(tensors_spec(), 16, 0)
    assert not np.array_equal(calibration["scale"], first["scale"])


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"task": "tensors"}, "task tensors needs 'inputs'"),
        ({"task": "tensors", "inputs": TEXT_INPUTS}, "give the size of axis sequence"),
        (
            {"task": "tensors", "inputs": {"x": {"shape": [3, "batch"]}}},
            "input 'x': its shape must start with the 'batch' axis",
        ),
        (
            {"task": "tensors", "inputs": {"x": {"shape": ["batch"], "range": [2, 1]}}},
            r"input 'x': range \[2, 1\] is empty",
        ),
        ({"inputs": {"x": {"shape": ["batch", 3]}}}, "drop 'inputs', or set task: tensors"),
    ],
)
def test_an_input_spec_the_task_cannot_use_is_one_line_naming_the_fix(model, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(config_with(**model))


def test_the_schema_refuses_an_unknown_dtype():
    from snakemake.exceptions import WorkflowError

    with pytest.raises(WorkflowError):
        config_with(task="tensors", inputs={"x": {"shape": ["batch"], "dtype": "complex64"}})


def test_classification_is_the_default_and_keeps_its_image_input():
    spec = model_spec("m", source="torchvision", architecture="resnet18", input_size=32)
    task = get_task(spec.task)
    assert spec.task == "classification" and task.unit == "images"
    assert [(i.name, i.shape) for i in task.inputs(spec)] == [("input", ("batch", 3, 32, 32))]
    assert task.output_names(spec, 2) == ["logits", "output_1"]


# ---- the text encoder: token ids and a mask in, a sentence embedding out


def text_spec(**fields: Any) -> ModelSpec:
    model = {"source": "text_encoder", "architecture": "tiny", "task": "text-encoder", **fields}
    return parse_config(validated({"models": {"m": model}})).models["m"]


def test_text_feeds_are_padded_token_ids_with_their_mask():
    spec = text_spec(axes={"sequence": 24})
    feeds, _ = get_task("text-encoder").evaluation_feeds(spec)
    ids, mask = feeds["input_ids"], feeds["attention_mask"]
    assert ids.shape == mask.shape == (16, 24) and ids.dtype == mask.dtype == np.int64
    lengths = mask.sum(axis=1)
    assert lengths.min() >= 6 and lengths.max() <= 24 and len(set(lengths)) > 1
    # every mask is ones then zeros, and padding carries token id 0
    assert all(
        (row[:n] == 1).all() and (row[n:] == 0).all() for row, n in zip(mask, lengths, strict=True)
    )
    assert (ids[mask == 0] == 0).all() and ids.max() < 1000


def test_the_text_encoder_exports_with_both_axes_free_and_matches_eager(tmp_path):
    torch = pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    from deploybench.models import build_model

    spec = text_spec(axes={"sequence": 16})
    task, model = get_task("text-encoder"), build_model(spec).eval()
    task.export_onnx(model, spec, tmp_path / "m.onnx", None, "dynamo", 18)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["sentence_embedding"]
    for batch, length in ((1, 16), (3, 40)):  # another batch and another sequence length
        feeds = task._draw(text_spec(axes={"sequence": length}), batch, 7, 0)
        (exported,) = session.run(None, feeds)
        with torch.inference_mode():
            eager = model(*(torch.from_numpy(v) for v in feeds.values())).numpy()
        assert exported.shape == (batch, 32)
        np.testing.assert_allclose(exported, eager, rtol=1e-4, atol=1e-5)


def test_only_class_scores_get_top_k_and_the_same_class_test():
    from deploybench.parity import check
    from deploybench.specs import Tolerance
    from deploybench.tasks import get_task as task_of

    assert task_of("classification").class_scores is True
    assert task_of("text-encoder").class_scores is task_of("tensors").class_scores is False
    # embeddings whose largest dimension is the same for every input, slightly perturbed
    reference = np.array([[5.0, 1.0, 0.2], [4.0, 0.5, 1.0], [6.0, 2.0, 0.1]])
    candidate = reference + np.array([[0, 0.01, 0], [0, 0, 0.01], [0.01, 0, 0]])
    strict = Tolerance(max_rel=0.1, min_cosine=0.99, min_top1=1.0, min_top5=1.0)
    scores = check({"o": reference}, {"o": candidate}, strict, class_scores=True)
    assert scores.verdict == "inconclusive"  # as class scores: the same class for every input
    embedding = check({"o": reference}, {"o": candidate}, strict, class_scores=False)
    assert (embedding.verdict, embedding.reason) == ("pass", "within tolerance")
    assert (embedding.outputs[0].top1, embedding.outputs[0].top5) == (None, None)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"source": "text_encoder", "architecture": "tiny"}, "needs task: text-encoder"),
        (
            {"source": "torchvision", "architecture": "resnet18", "task": "text-encoder"},
            "task text-encoder needs source text_encoder",
        ),
        (
            {"source": "text_encoder", "architecture": "huge", "task": "text-encoder"},
            "unknown text_encoder architecture 'huge': choose from tiny, mini",
        ),
        (
            {
                "source": "text_encoder",
                "architecture": "tiny",
                "task": "text-encoder",
                "axes": {"sequence": 65},
            },
            r"axes.sequence 65 is outside 1..64",
        ),
    ],
)
def test_a_text_encoder_spec_that_cannot_work_is_one_line(model, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(validated({"models": {"m": model}}))
