"""Object detection with single-stage SSD-style torchvision detectors
(``ssdlite320_mobilenet_v3_large``, ``ssd300_vgg16``): one image batch in, per-anchor class
logits and box offsets out, counted in images.

What is deployed is the network up to its heads (backbone, extra layers, heads): that is the
part every backend compiles and a deployment runs on the accelerator. The rest (anchor decoding,
score threshold, NMS) is data-dependent and runs after it on the host, as the detector's own
``postprocess_detections``. Parity runs that post-processing on the reference's and the
candidate's head outputs alike and compares the detections: boxes matched by IoU, then their
classes and scores.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..feeds import Feeds
from ..parity import TaskParity, pair_outputs
from ..specs import INPUT_NAME, ModelSpec
from .classification import Classification

OUTPUT_NAMES = ("cls_logits", "bbox_regression")
#: A candidate box is the same detection as a reference box from this IoU on.
MATCH_IOU = 0.5
#: Reference scores spread less than this: the detector ranks nothing (random weights).
MIN_SCORE_SPREAD = 1e-3
TWO_STAGE_PARTS = "backbone (backbone + FPN), rpn.head, roi_heads.box_head, roi_heads.box_predictor"


def box_iou(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """IoU of every box in ``first`` (N×4, x1 y1 x2 y2) with every box in ``second`` (M×4)."""
    first, second = np.asarray(first, np.float64), np.asarray(second, np.float64)
    top_left = np.maximum(first[:, None, :2], second[None, :, :2])
    bottom_right = np.minimum(first[:, None, 2:], second[None, :, 2:])
    overlap = np.clip(bottom_right - top_left, 0, None).prod(axis=2)

    def area(boxes):
        return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])

    union = area(first)[:, None] + area(second)[None, :] - overlap
    return np.divide(overlap, union, out=np.zeros_like(overlap), where=union > 0)


@dataclasses.dataclass(frozen=True)
class Detections:
    """One image's detections after post-processing."""

    boxes: np.ndarray  # K×4
    scores: np.ndarray  # K
    labels: np.ndarray  # K


def match(reference: Detections, candidate: Detections) -> list[tuple[int, int]]:
    """(reference, candidate) index pairs: each candidate, highest score first, takes the
    unmatched reference box it overlaps most, if that IoU reaches :data:`MATCH_IOU`. Classes
    are compared after matching, so a box found with the wrong class counts against class
    agreement, not against box agreement."""
    if not len(reference.boxes) or not len(candidate.boxes):
        return []
    ious = box_iou(candidate.boxes, reference.boxes)
    free = np.ones(len(reference.boxes), bool)
    pairs = []
    for c in np.argsort(-candidate.scores, kind="stable"):
        overlaps = np.where(free, ious[c], -1.0)
        r = int(overlaps.argmax())
        if overlaps[r] >= MATCH_IOU:
            free[r] = False
            pairs.append((r, int(c)))
    return pairs


def detection_parity(reference: list[Detections], candidate: list[Detections]) -> TaskParity:
    """Box agreement (2·matched / all boxes), class agreement of the matched boxes and their
    largest score difference, over every image."""
    matched = same_class = total = 0
    score_error = 0.0
    for ref, cand in zip(reference, candidate, strict=True):
        pairs = match(ref, cand)
        matched += len(pairs)
        total += len(ref.boxes) + len(cand.boxes)
        for r, c in pairs:
            same_class += int(ref.labels[r] == cand.labels[c])
            score_error = max(score_error, abs(float(ref.scores[r]) - float(cand.scores[c])))
    scores = np.concatenate([ref.scores for ref in reference]) if reference else np.zeros(0)
    degenerate = None
    if not scores.size:
        degenerate = "reference detects nothing"
    elif float(scores.max() - scores.min()) < MIN_SCORE_SPREAD:
        degenerate = f"reference detections all score {float(scores.max()):.4f}"
    return TaskParity(
        {
            "box_agreement": 2 * matched / total if total else 1.0,
            "class_agreement": same_class / matched if matched else 0.0,
            "score_error": score_error,
        },
        degenerate,
    )


def detector_heads(detector):
    """The deployable part of a torchvision SSD: images in, head outputs out."""
    import torch

    class DetectorHeads(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.backbone, self.head = model.backbone, model.head

        def forward(self, images):
            outputs = self.head(list(self.backbone(images).values()))
            return tuple(outputs[name] for name in OUTPUT_NAMES)

    return DetectorHeads(detector)


@functools.cache
def _detector(architecture: str):
    """The detector's architecture: its post-processing and normalisation need no weights."""
    from ..models import random_torchvision

    return random_torchvision(architecture).eval()


@functools.cache
def _anchors(architecture: str, size: int):
    """The detector's anchors at ``size``: they depend on its feature maps' sizes only, so one
    blank image gives them once for the reference's and every candidate's post-processing."""
    import torch
    from torchvision.models.detection.image_list import ImageList

    detector = _detector(architecture)
    with torch.inference_mode():
        blank = torch.zeros(1, 3, size, size)
        features = list(detector.backbone(blank).values())
        (anchors,) = detector.anchor_generator(ImageList(blank, [(size, size)]), features)
    return anchors


def postprocess(spec: ModelSpec, outputs: Mapping[str, np.ndarray]) -> list[Detections]:
    """The detector's own post-processing (anchor decoding, score threshold, NMS, top-k) of
    head outputs, one :class:`Detections` per image."""
    import torch

    detector = _detector(spec.architecture)
    size = (spec.input_size, spec.input_size)
    cls_logits, bbox_regression = (torch.from_numpy(np.asarray(outputs[n])) for n in OUTPUT_NAMES)
    count = len(cls_logits)
    anchors = _anchors(spec.architecture, spec.input_size)
    with torch.inference_mode():
        found = detector.postprocess_detections(
            {"cls_logits": cls_logits.float(), "bbox_regression": bbox_regression.float()},
            [anchors] * count,
            [size] * count,
        )
    return [Detections(d["boxes"].numpy(), d["scores"].numpy(), d["labels"].numpy()) for d in found]


class Detection(Classification):
    name = "detection"
    unit = "images"
    class_scores = False
    measure_keys = ("min_box_agreement", "min_class_agreement", "max_score_error")
    deploys = (
        "backbone, extra layers and heads (anchor decoding, score threshold and NMS are "
        "data-dependent: they run after it, on the host, and in parity)"
    )

    def check(self, spec: ModelSpec) -> None:
        super().check(spec)
        architecture = spec.architecture or ""
        if spec.source not in ("torchvision", "checkpoint"):
            raise ConfigError(f"models.{spec.name}: task detection needs a torchvision detector")
        if spec.module is None and not architecture.startswith("ssd"):
            raise ConfigError(
                f"models.{spec.name}: task detection deploys SSD-style torchvision detectors "
                f"whole (ssdlite320_mobilenet_v3_large, ssd300_vgg16), not {architecture}: a "
                "two-stage detector's proposals are data-dependent; benchmark its parts with "
                f"module: ({TWO_STAGE_PARTS})"
            )

    def call_whole(self, model, spec: ModelSpec, feeds: Feeds):
        """A torchvision detector takes a list of 0..1 images and normalises them itself."""
        import torch

        return model(list(torch.from_numpy(feeds[INPUT_NAME])))

    def deployable(self, model, spec: ModelSpec):
        return detector_heads(model)

    def output_names(self, spec: ModelSpec, count: int) -> list[str]:
        return list(OUTPUT_NAMES)

    def _normalised(self, spec: ModelSpec) -> ModelSpec:
        """The spec with the detector's own normalisation (its transform's mean and std), or
        none where the whole detector runs (a part is deployed): its transform normalises."""
        if spec.module is not None:
            return dataclasses.replace(spec, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
        transform = _detector(spec.architecture).transform
        return dataclasses.replace(
            spec, mean=tuple(transform.image_mean), std=tuple(transform.image_std)
        )

    def evaluation_feeds(self, spec: ModelSpec) -> tuple[Feeds, dict[str, Any]]:
        from ..inputs import evaluation_images

        images, names = evaluation_images(self._normalised(spec), whole=True)
        return {INPUT_NAME: images}, {"image_names": np.asarray(names)}

    def calibration_feeds(self, spec: ModelSpec, size: int, seed: int) -> Feeds:
        return super().calibration_feeds(self._normalised(spec), size, seed)

    def parity_measures(
        self,
        spec: ModelSpec,
        references: Mapping[str, np.ndarray],
        candidates: Mapping[str, np.ndarray],
    ) -> TaskParity:
        pairs = pair_outputs(references, candidates)
        reference = postprocess(spec, {name: ref for name, ref, _ in pairs})
        candidate = postprocess(spec, {name: cand for name, _, cand in pairs})
        return detection_parity(reference, candidate)
