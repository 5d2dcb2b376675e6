"""Semantic segmentation: one image batch in (``input``, N×3×H×W), per-pixel class scores out
(N×C×H×W; torchvision's nets name theirs ``out`` and ``aux``), counted in images.

Parity adds what a mask user cares about to the raw-output checks: the share of pixels given
the reference's class, and the mean IoU of the per-class masks, reference against candidate,
over the classes either of them predicts.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..parity import TaskParity, pair_outputs
from ..specs import ModelSpec
from .classification import Classification


def pixel_classes(scores: np.ndarray) -> np.ndarray:
    """The class of every pixel: the argmax over the class axis (axis 1)."""
    if scores.ndim != 4:
        raise ValueError(f"segmentation scores must be N×C×H×W, not {scores.shape}")
    return np.asarray(scores).argmax(axis=1)


def mean_iou(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Mean over the classes either label map uses of |both| / |either|."""
    classes = np.union1d(np.unique(reference), np.unique(candidate))
    ious = []
    for label in classes:
        ref, cand = reference == label, candidate == label
        ious.append(np.count_nonzero(ref & cand) / np.count_nonzero(ref | cand))
    return float(np.mean(ious))


def segmentation_parity(scores_ref: np.ndarray, scores_cand: np.ndarray) -> TaskParity:
    reference, candidate = pixel_classes(scores_ref), pixel_classes(scores_cand)
    degenerate = None
    if np.unique(reference).size == 1:
        degenerate = f"reference gives every pixel class {int(reference.flat[0])}"
    return TaskParity(
        {
            "pixel_agreement": float(np.mean(reference == candidate)),
            "miou": mean_iou(reference, candidate),
        },
        degenerate,
    )


class Segmentation(Classification):
    """Images in as for classification (the same photographs and preprocessing); only the
    outputs and their parity differ."""

    name = "segmentation"
    unit = "images"
    class_scores = False
    measure_keys = ("min_pixel_agreement", "min_miou")

    def output_names(self, spec: ModelSpec, count: int) -> list[str]:
        return ["out", *(f"output_{i}" for i in range(1, count))]

    def parity_measures(
        self,
        spec: ModelSpec,
        references: Mapping[str, np.ndarray],
        candidates: Mapping[str, np.ndarray],
    ) -> TaskParity:
        # the first output is the mask (torchvision's "out"; "aux" is a training head)
        _, reference, candidate = pair_outputs(references, candidates)[0]
        return segmentation_parity(reference, candidate)
