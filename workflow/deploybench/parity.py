"""Compare a backend's outputs with the PyTorch fp32 reference on the same inputs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .specs import Tolerance

# Below this the reference carries no signal (random-init nets emit ~1e-9 logits).
NEAR_ZERO = 1e-6
# Between-sample spread below this fraction of the magnitude means near-constant outputs.
MIN_RELATIVE_SPREAD = 1e-3


@dataclass(frozen=True)
class OutputParity:
    max_abs: float
    max_rel: float
    cosine: float
    top1: float | None
    top5: float | None


@dataclass(frozen=True)
class TaskParity:
    """A task's agreement measures after its own post-processing, by name (``{"miou": 0.97}``),
    and why they cannot judge anything where the reference carries no signal (else ``None``).
    A measure is judged by the tolerance key ``min_<name>`` or ``max_<name>`` where one is set."""

    measures: dict[str, float]
    degenerate: str | None = None


@dataclass
class ParityResult:
    verdict: str  # pass | fail | inconclusive
    reason: str
    degenerate_reference: bool
    outputs: list[OutputParity] = field(default_factory=list)
    output_names: list[str] = field(default_factory=list)
    measures: dict[str, float] = field(default_factory=dict)


def _measure_failures(task: TaskParity, tolerance: Tolerance) -> list[str]:
    failures = []
    for name, value in task.measures.items():
        label = name.replace("_", " ")
        low = getattr(tolerance, f"min_{name}", None)
        high = getattr(tolerance, f"max_{name}", None)
        if low is not None and not value >= low:
            failures.append(f"{label} {value:.4g} < {low}")
        if high is not None and not value <= high:
            failures.append(f"{label} {value:.4g} > {high}")
    return failures


def degenerate_reason(reference: np.ndarray, class_scores: bool = True) -> str | None:
    """Why a reference output cannot judge agreement, or ``None`` when it can. Only outputs
    that are class scores can "predict the same class for every input"."""
    ref = np.asarray(reference, dtype=np.float64)
    magnitude = float(np.max(np.abs(ref))) if ref.size else 0.0
    if magnitude < NEAR_ZERO:
        return f"reference outputs are near zero (max |x| = {magnitude:.1e})"
    if ref.ndim >= 2 and ref.shape[0] > 1:
        flat = ref.reshape(ref.shape[0], -1)
        spread = float(np.max(flat.max(axis=0) - flat.min(axis=0)))
        if spread < MIN_RELATIVE_SPREAD * magnitude:
            return "reference outputs are nearly identical for every input"
        if class_scores and flat.shape[1] > 1 and np.unique(flat.argmax(axis=1)).size == 1:
            return "reference predicts the same class for every input"
    return None


def _topk_agreement(reference: np.ndarray, candidate: np.ndarray, k: int) -> float | None:
    """Fraction of samples whose reference top-1 class is in the candidate's top-k."""
    if reference.ndim != 2 or reference.shape[1] < k:
        return None
    ref_top1 = reference.argmax(axis=1)
    cand_topk = np.argsort(-candidate, axis=1, kind="stable")[:, :k]
    return float(np.mean([ref_top1[i] in cand_topk[i] for i in range(reference.shape[0])]))


def compare_output(
    reference: np.ndarray, candidate: np.ndarray, class_scores: bool = True
) -> OutputParity:
    """Errors and cosine of any output; top-k agreement only of class scores (else ``None``:
    the top "classes" of an embedding or a mask mean nothing)."""
    ref = np.asarray(reference, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)
    if ref.shape != cand.shape:
        raise ValueError(f"output shape {cand.shape} differs from the reference {ref.shape}")
    if not np.all(np.isfinite(cand)):
        worst = 0.0 if class_scores else None
        return OutputParity(float("inf"), float("inf"), float("nan"), worst, worst)
    diff = np.abs(ref - cand)
    magnitude = float(np.max(np.abs(ref))) if ref.size else 0.0
    max_abs = float(diff.max()) if diff.size else 0.0
    denom = np.linalg.norm(ref) * np.linalg.norm(cand)
    if denom > 0:
        cosine = float(np.dot(ref.ravel(), cand.ravel()) / denom)
    else:
        cosine = 1.0 if max_abs == 0 else 0.0
    return OutputParity(
        max_abs=max_abs,
        max_rel=max_abs / magnitude if magnitude > 0 else (0.0 if max_abs == 0 else float("inf")),
        cosine=cosine,
        top1=_topk_agreement(ref, cand, 1) if class_scores else None,
        top5=_topk_agreement(ref, cand, 5) if class_scores else None,
    )


def pair_outputs(
    references: Mapping[str, np.ndarray], candidates: Mapping[str, np.ndarray]
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Reference and candidate outputs side by side: by name, or in order where the names differ
    (an eager model's outputs have no names of their own)."""
    if len(references) != len(candidates):
        raise ValueError(f"{len(candidates)} outputs, the reference has {len(references)}")
    if set(references) == set(candidates):
        return [(name, ref, candidates[name]) for name, ref in references.items()]
    return [
        (name, ref, cand)
        for (name, ref), cand in zip(references.items(), candidates.values(), strict=True)
    ]


def check(
    references: Mapping[str, np.ndarray],
    candidates: Mapping[str, np.ndarray],
    tolerance: Tolerance,
    class_scores: bool = True,
    task: TaskParity | None = None,
) -> ParityResult:
    """``class_scores``: whether the outputs are class scores (the task says so); only those
    get top-k checks and the same-class degeneracy test. ``task``: the task's post-processed
    measures, judged like top-k (not where a reference is degenerate)."""
    pairs = pair_outputs(references, candidates)
    outputs = [compare_output(ref, cand, class_scores) for _, ref, cand in pairs]
    names = [name for name, _, _ in pairs]
    degenerate = [reason for _, ref, _ in pairs if (reason := degenerate_reason(ref, class_scores))]
    if task is not None and task.degenerate:
        degenerate.append(task.degenerate)
    measures = dict(task.measures) if task is not None else {}

    failures: list[str] = []
    for (name, _, cand), out in zip(pairs, outputs, strict=True):
        label = f"{name}: " if len(outputs) > 1 else ""
        values = np.asarray(cand, dtype=np.float64)
        non_finite = values.size - int(np.count_nonzero(np.isfinite(values)))
        if non_finite:
            # a failure whatever the tolerance checks, and even where a degenerate reference
            # leaves top-k unjudged: otherwise NaN outputs of a random-weights model with a
            # top-k-only tolerance come out "inconclusive" and can be recommended
            failures.append(f"{label}{non_finite} of {values.size} values are NaN or inf")
        if tolerance.max_rel is not None and not out.max_rel <= tolerance.max_rel:
            failures.append(f"{label}max rel error {out.max_rel:.2e} > {tolerance.max_rel:.0e}")
        if tolerance.min_cosine is not None and not out.cosine >= tolerance.min_cosine:
            failures.append(f"{label}cosine {out.cosine:.6f} < {tolerance.min_cosine}")
        if degenerate:
            continue  # agreement with a degenerate reference proves nothing either way
        if (
            tolerance.min_top1 is not None
            and out.top1 is not None
            and out.top1 < tolerance.min_top1
        ):
            failures.append(f"{label}top-1 agreement {out.top1:.2f} < {tolerance.min_top1}")
        if (
            tolerance.min_top5 is not None
            and out.top5 is not None
            and out.top5 < tolerance.min_top5
        ):
            failures.append(f"{label}top-5 agreement {out.top5:.2f} < {tolerance.min_top5}")
    if task is not None and not degenerate:
        failures += _measure_failures(task, tolerance)

    if failures:
        return ParityResult("fail", "; ".join(failures), bool(degenerate), outputs, names, measures)
    if degenerate:
        return ParityResult(
            "inconclusive",
            f"{degenerate[0]}: errors are within tolerance, but agreement is not meaningful "
            "(no signal in the reference: random weights are for speed only)",
            True,
            outputs,
            names,
            measures,
        )
    return ParityResult("pass", "within tolerance", False, outputs, names, measures)


def labelled_accuracy(
    reference_scores: np.ndarray, candidate_scores: np.ndarray, labels: np.ndarray
) -> dict[str, float | int | None]:
    """Top-1 and top-5 accuracy of class scores against the images' labels, the reference's
    on the same images, and the paired change with its interval (the fields of
    ``records.LabelledAccuracy``)."""
    from .stats import paired_difference, wilson_interval

    labels = np.asarray(labels).astype(np.int64)
    candidate_scores = candidate_scores.reshape(len(labels), -1)
    reference_scores = reference_scores.reshape(len(labels), -1)

    def right(scores: np.ndarray, k: int) -> np.ndarray:
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.any(top == labels[:, None], axis=1)

    mine, theirs = right(candidate_scores, 1), right(reference_scores, 1)
    top1 = wilson_interval(int(mine.sum()), len(labels))
    change = paired_difference(mine, theirs)
    return dict(
        images=len(labels),
        top1=top1.value,
        top1_low=top1.low,
        top1_high=top1.high,
        top5=float(right(candidate_scores, 5).mean()),
        reference_top1=float(theirs.mean()),
        reference_top5=float(right(reference_scores, 5).mean()),
        change=change.value,
        change_low=change.low,
        change_high=change.high,
        discordant=change.discordant,
        images_needed=change.images_needed,
    )
