"""The model families beyond classification: each parity kind (pixel agreement and mIoU,
IoU-matched boxes), judged by its tolerance keys; the detection and segmentation tasks on tiny
models; BatchNorm recalibration, which gives a random-weights net outputs parity can judge."""

from __future__ import annotations

import numpy as np
import pytest
from deploybench.errors import ConfigError
from deploybench.parity import TaskParity, check
from deploybench.settings import parse_config
from deploybench.specs import Tolerance
from deploybench.tasks import get_task
from deploybench.tasks.detection import Detections, box_iou, detection_parity, match
from deploybench.tasks.segmentation import mean_iou, segmentation_parity
from helpers import fetch, model_spec, validated


def one_hot_scores(labels: np.ndarray, classes: int) -> np.ndarray:
    """N×C×H×W scores whose argmax over C is ``labels`` (N×H×W)."""
    return np.moveaxis(np.eye(classes, dtype=np.float32)[labels], -1, 1)


# ---------------------------------------------------------------- segmentation


def test_mean_iou_averages_over_the_classes_either_map_uses():
    reference = np.array([[0, 0, 1, 1]])
    candidate = np.array([[0, 1, 1, 2]])
    # class 0: 1/2, class 1: 1/3, class 2: 0/1
    assert mean_iou(reference, candidate) == pytest.approx((1 / 2 + 1 / 3 + 0) / 3)
    assert mean_iou(reference, reference) == 1.0


def test_segmentation_parity_counts_pixels_and_classes():
    labels = np.zeros((2, 4, 4), int)
    labels[:, :2] = 1  # half the pixels class 1, half class 0
    candidate = labels.copy()
    candidate[0, 0, :2] = 0  # two of 32 pixels flipped from class 1 to 0
    result = segmentation_parity(one_hot_scores(labels, 3), one_hot_scores(candidate, 3))
    assert result.degenerate is None
    assert result.measures["pixel_agreement"] == pytest.approx(30 / 32)
    # class 0: 16 / 18; class 1: 14 / 16
    assert result.measures["miou"] == pytest.approx((16 / 18 + 14 / 16) / 2)


def test_a_reference_with_one_class_everywhere_cannot_judge_masks():
    labels = np.full((2, 4, 4), 5)
    result = segmentation_parity(one_hot_scores(labels, 6), one_hot_scores(labels, 6))
    assert result.degenerate == "reference gives every pixel class 5"


def test_segmentation_scores_must_have_a_class_axis():
    with pytest.raises(ValueError, match="N×C×H×W"):
        segmentation_parity(np.zeros((2, 3)), np.zeros((2, 3)))


# ---------------------------------------------------------------- detection


def detections(boxes, scores, labels) -> Detections:
    return Detections(np.asarray(boxes, float), np.asarray(scores, float), np.asarray(labels))


def test_box_iou():
    first = np.array([[0, 0, 10, 10]])
    second = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 0, 0]])
    np.testing.assert_allclose(box_iou(first, second), [[1.0, 50 / 150, 0.0, 0.0]])


def test_matching_takes_the_best_free_reference_box_highest_candidate_first():
    reference = detections([[0, 0, 10, 10], [0, 0, 10, 12]], [0.9, 0.8], [1, 1])
    # both candidates overlap both reference boxes; the higher-scored one picks first
    candidate = detections([[0, 0, 10, 11.5], [0, 0, 10, 10]], [0.5, 0.95], [1, 1])
    assert match(reference, candidate) == [(0, 1), (1, 0)]
    # below MATCH_IOU nothing matches
    far = detections([[0, 0, 10, 4]], [0.9], [1])
    assert match(reference, far) == []


def test_detection_parity_counts_boxes_classes_and_scores():
    reference = [
        detections([[0, 0, 10, 10], [20, 20, 30, 30]], [0.9, 0.6], [1, 2]),
        detections([[0, 0, 5, 5]], [0.7], [3]),
    ]
    candidate = [
        # the first box found with a slightly different score, the second with another class
        detections([[0, 0, 10, 10.5], [20, 20, 30, 30]], [0.85, 0.6], [1, 4]),
        # nothing found in the second image, and a box that is not there
        detections([[50, 50, 60, 60]], [0.3], [3]),
    ]
    result = detection_parity(reference, candidate)
    assert result.degenerate is None
    assert result.measures["box_agreement"] == pytest.approx(2 * 2 / (3 + 3))
    assert result.measures["class_agreement"] == pytest.approx(1 / 2)
    assert result.measures["score_error"] == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("scores", "reason"),
    [([], "reference detects nothing"), ([0.011, 0.0110001], "all score 0.0110")],
)
def test_detections_that_rank_nothing_cannot_judge_boxes(scores, reason):
    boxes = [[0, 0, 10, 10 + i] for i in range(len(scores))]
    reference = [detections(np.reshape(boxes, (-1, 4)), scores, [1] * len(scores))]
    assert reason in detection_parity(reference, reference).degenerate


# ---------------------------------------------------------------- judged by the tolerance


def test_task_measures_are_judged_by_their_min_and_max_tolerance_keys():
    outputs = {"o": np.array([[1.0, 2.0], [3.0, 1.0]])}
    tolerance = Tolerance(min_miou=0.9, max_score_error=0.01)
    good = TaskParity({"miou": 0.95, "score_error": 0.005, "unjudged": 0.0})
    assert check(outputs, outputs, tolerance, False, good).verdict == "pass"
    bad = TaskParity({"miou": 0.85, "score_error": 0.02})
    result = check(outputs, outputs, tolerance, False, bad)
    assert result.verdict == "fail"
    assert result.reason == "miou 0.85 < 0.9; score error 0.02 > 0.01"
    assert result.measures == {"miou": 0.85, "score_error": 0.02}


def test_a_degenerate_task_reference_leaves_its_measures_unjudged():
    outputs = {"o": np.array([[1.0, 2.0], [3.0, 1.0]])}
    empty = TaskParity({"box_agreement": 0.0}, "reference detects nothing")
    result = check(outputs, outputs, Tolerance(min_box_agreement=0.9), False, empty)
    assert result.verdict == "inconclusive"
    assert result.reason.startswith("reference detects nothing")


def test_a_partial_tolerance_override_keeps_the_other_keys():
    config = validated(
        {
            "models": {"m": {"source": "efficientnet_lite0"}},
            "parity": {"tolerances": {"int8": {"min_miou": 0.5}}},
        }
    )
    defaults = validated({"models": {"m": {"source": "efficientnet_lite0"}}})
    int8 = config["parity"]["tolerances"]["int8"]
    assert int8["min_miou"] == 0.5
    for key, value in defaults["parity"]["tolerances"]["int8"].items():
        if key != "min_miou":
            assert int8[key] == value
    assert config["parity"]["tolerances"]["fp32"] == defaults["parity"]["tolerances"]["fp32"]


def test_a_parity_job_gets_only_the_keys_its_task_judges():
    tolerances = validated({"models": {"m": {"source": "efficientnet_lite0"}}})["parity"][
        "tolerances"
    ]
    assert get_task("classification").tolerance(tolerances["fp32"]) == {
        "max_rel": 1e-4,
        "min_cosine": 0.99999,
        "min_top1": 1.0,
    }
    assert set(get_task("segmentation").tolerance(tolerances["int8"])) == {
        "min_cosine",
        "min_pixel_agreement",
        "min_miou",
    }
    assert set(get_task("detection").tolerance(tolerances["fp32"])) == {
        "max_rel",
        "min_cosine",
        "min_box_agreement",
        "min_class_agreement",
        "max_score_error",
    }


# ---------------------------------------------------------------- specs


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            {
                "source": "torchvision",
                "architecture": "fasterrcnn_resnet50_fpn",
                "task": "detection",
            },
            r"not fasterrcnn_resnet50_fpn: .*module: \(backbone",
        ),
        (
            {
                "source": "torchvision",
                "architecture": "resnet18",
                "recalibrate_batchnorm": True,
                "weights": "DEFAULT",
            },
            "recalibrate_batchnorm is for random weights",
        ),
        (
            {
                "source": "torchvision",
                "architecture": "ssdlite320_mobilenet_v3_large",
                "task": "detection",
                "inputs": {"x": {"shape": ["batch", 3]}},
            },
            "task detection takes one image input",
        ),
    ],
)
def test_a_family_spec_that_cannot_work_is_one_line(model, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(validated({"models": {"m": model}}))


# ---------------------------------------------------------------- tiny models


def tiny_detector(recalibrate: bool):
    """ssdlite at 64×64, random weights, BatchNorm statistics recalibrated or not."""
    return model_spec(
        "det",
        source="torchvision",
        architecture="ssdlite320_mobilenet_v3_large",
        task="detection",
        input_size=64,
        recalibrate_batchnorm=recalibrate,
    )


def test_recalibrated_batchnorm_gives_a_random_net_outputs_with_signal(tmp_path):
    from deploybench.parity import degenerate_reason
    from deploybench.tasks import load_deployable

    outputs = {}
    for recalibrate in (False, True):
        spec = tiny_detector(recalibrate)
        facts = fetch(spec, tmp_path / str(recalibrate))
        layers = facts["recalibrated_batchnorm_layers"]
        assert layers > 50 if recalibrate else layers is None
        assert ("speed only" in facts["weights_note"]) is not recalibrate
        model, _ = load_deployable(tmp_path / str(recalibrate))
        feeds, _ = get_task("detection").evaluation_feeds(spec)
        import torch

        with torch.inference_mode():
            outputs[recalibrate] = model(torch.from_numpy(feeds["input"][:4]))[0].numpy()
    # torchvision's init shrinks activations layer by layer: nothing left at the heads
    assert "near zero" in degenerate_reason(outputs[False], class_scores=False)
    assert degenerate_reason(outputs[True], class_scores=False) is None


def test_a_model_without_batchnorm_refuses_recalibration(tmp_path):
    spec = model_spec(
        "t",
        source="text_encoder",
        architecture="tiny",
        task="text-encoder",
        axes={"sequence": 16},
        recalibrate_batchnorm=True,
    )
    with pytest.raises(ConfigError, match="no BatchNorm layer to recalibrate"):
        fetch(spec, tmp_path)


def test_a_detector_deploys_its_heads_and_parity_runs_its_own_nms(tmp_path):
    """The exported graph ends at the heads; the detector's own post-processing turns both
    sides' head outputs into boxes: identical outputs agree fully, perturbed ones less."""
    ort = pytest.importorskip("onnxruntime")
    from deploybench.models import load_model
    from deploybench.tasks import load_deployable

    spec = tiny_detector(recalibrate=True)
    task = get_task("detection")
    fetch(spec, tmp_path / "model")
    task.export_onnx(
        load_model(tmp_path / "model")[0], spec, tmp_path / "m.onnx", None, "torchscript", 17
    )
    model, _ = load_deployable(tmp_path / "model")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["cls_logits", "bbox_regression"]
    feeds, facts = task.evaluation_feeds(spec)
    assert feeds["input"].shape == (16, 3, 64, 64) and len(facts["image_names"]) == 16
    import torch

    names = ["cls_logits", "bbox_regression"]
    with torch.inference_mode():
        produced = model(torch.from_numpy(feeds["input"]))
    reference = {name: t.numpy() for name, t in zip(names, produced, strict=True)}
    exported = dict(zip(names, session.run(None, feeds), strict=True))
    same = task.parity_measures(spec, reference, exported)
    assert same.degenerate is None
    assert same.measures["box_agreement"] == pytest.approx(1.0)
    assert same.measures["class_agreement"] == pytest.approx(1.0)
    assert same.measures["score_error"] < 1e-3
    rng = np.random.default_rng(0)
    noisy = {k: v + rng.normal(0, 0.5, v.shape).astype(v.dtype) for k, v in exported.items()}
    worse = task.parity_measures(spec, reference, noisy)
    assert worse.measures["box_agreement"] < 0.9 and worse.measures["score_error"] > 1e-2


# ---------------------------------------------------------------- exported parts


class TwoStage:
    """A whole model whose ``neck`` takes a list of feature maps, one call per sample, and a
    ``head`` it runs only on samples whose mean is positive."""

    def __new__(cls):
        import torch

        class Model(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.stem = torch.nn.Conv2d(3, 4, 3, padding=1)
                self.neck = Neck()
                self.head = torch.nn.Linear(4, 2)

            def forward(self, image):
                features = self.stem(image)
                fused = self.neck([features, features[:, :, ::2, ::2]], scale=2.0)
                pooled = fused["fine"].mean(dim=(2, 3))
                return self.head(pooled) if image.mean() > 0 else pooled[:, :2]

        class Neck(torch.nn.Module):
            def forward(self, maps, scale: float = 1.0):
                return {"fine": maps[0] * scale, "coarse": maps[1].relu()}

        torch.manual_seed(0)
        return Model().eval()


def call_with_tensors(model):
    import torch

    def call(feeds):
        return model(*(torch.from_numpy(v) for v in feeds.values()))

    return call


def test_a_wrong_module_path_says_what_there_is():
    from deploybench.tasks.parts import resolve

    model = TwoStage()
    assert resolve(model, "neck") is model.neck
    with pytest.raises(
        ConfigError,
        match=r"has no child 'nek': did you mean neck\? its children are stem, neck, head",
    ):
        resolve(model, "nek")
    with pytest.raises(ConfigError, match=r"module 'stem.conv': stem has no child 'conv'"):
        resolve(model, "stem.conv")


def test_a_part_is_fed_exactly_what_the_whole_model_hands_it():
    import torch
    from deploybench.tasks.parts import PartCall, capture

    model = TwoStage()
    images = np.random.default_rng(0).standard_normal((3, 3, 8, 8)).astype(np.float32)
    feeds, layout = capture(model, "neck", call_with_tensors(model), {"image": images})
    # the list of two maps is two named inputs; the float keyword a constant of the part
    assert list(feeds) == ["maps_0", "maps_1"]
    assert layout == {"maps": ("list", 2), "scale": ("constant", 2.0)}
    with torch.inference_mode():
        features = model.stem(torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(feeds["maps_0"], features, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(feeds["maps_1"], features[:, :, ::2, ::2], rtol=1e-4, atol=1e-6)
    # rebuilt behind a flat signature, the part gives the whole model's intermediate outputs
    part = PartCall(model.neck, layout)
    with torch.inference_mode():
        produced = part(*(torch.from_numpy(v) for v in feeds.values()))
    assert list(produced) == ["output_fine", "output_coarse"]
    np.testing.assert_allclose(
        produced["output_fine"].numpy(), 2.0 * features, rtol=1e-4, atol=1e-6
    )


def test_a_part_the_model_skips_for_some_samples_is_one_line():
    from deploybench.tasks.parts import capture

    model = TwoStage()
    images = np.stack([np.full((3, 8, 8), sign, np.float32) for sign in (1.0, -1.0, 1.0)])
    with pytest.raises(ConfigError, match=r"'head' was not called on every sample .*\(2 of 3\)"):
        capture(model, "head", call_with_tensors(model), {"image": images})


def test_a_part_keeps_at_most_max_samples_taken_evenly(monkeypatch):
    from deploybench.tasks import parts

    monkeypatch.setattr(parts, "MAX_SAMPLES", 4)
    model = TwoStage()
    images = np.arange(10, dtype=np.float32)[:, None, None, None] * np.ones(
        (1, 3, 8, 8), np.float32
    )
    feeds, _ = parts.capture(model, "stem", call_with_tensors(model), {"image": images})
    np.testing.assert_array_equal(feeds["input"][:, 0, 0, 0], [0, 3, 6, 9])


# ---------------------------------------------------------------- a model that does not export


def test_an_export_failure_is_that_models_record_and_its_onnx_configurations_say_why(tmp_path):
    """The torchscript exporter cannot export PyTorch's fused transformer layer: the export
    stage records the exporter's own reason with the next thing to try, simplify passes it on,
    and every ONNX backend's compile fails with it (the eager baseline still runs)."""
    pytest.importorskip("onnxruntime")
    from deploybench.records import ARTIFACT_RECORD, CompileRecord
    from deploybench.stages.compile import compile_model
    from deploybench.stages.onnx import export_onnx, graph_failure, simplify_onnx

    spec = model_spec(
        "t", source="text_encoder", architecture="tiny", task="text-encoder", axes={"sequence": 8}
    )
    fetch(spec, tmp_path / "model")
    onnx_dir = tmp_path / "onnx"
    export_onnx(
        str(tmp_path / "model" / "model.pt"),
        "torchscript",
        17,
        str(onnx_dir / "exported.onnx"),
        str(onnx_dir / "export.json"),
    )
    reason = graph_failure(onnx_dir / "exported.onnx")
    assert reason.startswith("the torchscript exporter failed: UnsupportedOperatorError")
    assert "_transformer_encoder_layer_fwd" in reason
    assert reason.endswith("module: (its children: tokens, positions, encoder, norm)")
    simplify_onnx(
        str(onnx_dir / "exported.onnx"),
        "static_b1",
        "onnxsim",
        str(onnx_dir / "static_b1" / "model.onnx"),
        str(onnx_dir / "static_b1" / "simplify.json"),
    )
    assert graph_failure(onnx_dir / "static_b1" / "model.onnx") == reason
    key = {"model": "t", "backend": "onnxruntime", "precision": "fp32", "shape": "static_b1"}
    from helpers import limits

    compile_model(
        str(onnx_dir / "static_b1" / "model.onnx"),
        None,
        key,
        {},
        limits(),
        str(tmp_path / "artifact"),
    )
    record = CompileRecord.read(tmp_path / "artifact" / ARTIFACT_RECORD)
    assert record.status == "failed" and reason in record.reason


def test_a_text_encoders_flops_are_counted_through_its_fused_layers(tmp_path):
    """nn.TransformerEncoder's inference fast path is one fused op FLOP counting cannot see."""
    spec = model_spec(
        "t", source="text_encoder", architecture="tiny", task="text-encoder", axes={"sequence": 16}
    )
    facts = fetch(spec, tmp_path)
    # per layer at least the q, k, v and output projections: 4 · 2 · sequence · width²
    layers, width = 2, 32
    assert facts["flops"] >= layers * 4 * 2 * 16 * width**2
