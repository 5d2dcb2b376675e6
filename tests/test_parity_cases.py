"""Parity on hand-made outputs with known answers: the degenerate-reference rules at their
boundaries, zero vectors, empty and multi-output cases, every tolerance at its threshold, and
how outputs are paired and labelled."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from deploybench.parity import (
    MIN_RELATIVE_SPREAD,
    NEAR_ZERO,
    check,
    compare_output,
    degenerate_reason,
    pair_outputs,
)
from deploybench.specs import Tolerance

# two samples, six classes, different top-1 per sample: a reference that can judge agreement
GOOD = np.array([[4.0, 1.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 3.0, 1.0, 0.0]])


def test_a_reference_that_can_judge_agreement_is_not_degenerate():
    assert degenerate_reason(GOOD) is None
    assert degenerate_reason(GOOD[:1]) is None  # one sample: nothing to compare across inputs


def test_near_zero_is_judged_on_the_largest_magnitude_at_the_threshold():
    assert degenerate_reason(np.full((2, 3), NEAR_ZERO / 2)) is not None
    at_threshold = np.array([[NEAR_ZERO, 0.0, 0.0], [0.0, NEAR_ZERO, 0.0]])
    assert degenerate_reason(at_threshold) is None
    assert "near zero" in degenerate_reason(np.zeros((0, 3)))  # nothing at all


def test_identical_outputs_for_every_input_at_the_spread_threshold():
    row = np.array([10.0, 2.0, 1.0])
    same = np.stack([row, row])
    assert "nearly identical" in degenerate_reason(same)
    # twice the threshold is signal
    twice = np.stack([row, row + np.array([0.0, 2 * MIN_RELATIVE_SPREAD * 10.0, 0.0])])
    assert "nearly identical" not in (degenerate_reason(twice) or "")
    # spread is relative to the magnitude: 0.02 on a 10-scale is signal, on a 1e4 scale not
    small = np.stack([row, row + np.array([0.0, 0.02, 0.0])])
    assert "nearly identical" not in (degenerate_reason(small) or "")
    assert "nearly identical" in degenerate_reason(small + np.array([1e4, 0.0, 0.0]))


def test_the_same_class_for_every_input_is_degenerate_but_not_a_single_column():
    same_class = np.array([[5.0, 1.0, 0.0], [9.0, 0.0, 3.0], [7.0, 2.0, 1.0]])
    assert "same class" in degenerate_reason(same_class)
    one_column = np.array([[1.0], [5.0], [9.0]])  # a regression output: no classes to agree on
    assert degenerate_reason(one_column) is None
    column_vector = np.array([1.0, 5.0, 9.0])  # 1-d: samples of one value
    assert degenerate_reason(column_vector) is None
    by_sample = np.array([[[5.0, 1.0]], [[0.0, 4.0]]])  # 3-d, flattened per sample
    assert degenerate_reason(by_sample) is None


def test_compare_output_exact_values():
    ref = np.array([[3.0, 4.0]])
    out = compare_output(ref, np.array([[3.0, 5.0]]))
    assert out.max_abs == 1.0 and out.max_rel == 0.25
    assert out.cosine == pytest.approx((9 + 20) / (5 * np.sqrt(34)))
    assert out.top1 == 1.0 and out.top5 is None  # two classes: top-5 means nothing


def test_zero_vectors():
    zeros = np.zeros((1, 3))
    same = compare_output(zeros, zeros)
    assert (same.max_abs, same.max_rel, same.cosine) == (0.0, 0.0, 1.0)
    apart = compare_output(zeros, np.array([[0.0, 1.0, 0.0]]))
    assert (apart.max_abs, apart.max_rel, apart.cosine) == (1.0, float("inf"), 0.0)
    # a zero candidate against a real reference: no angle, cosine 0
    assert compare_output(np.array([[1.0, 2.0]]), np.zeros((1, 2))).cosine == 0.0


def test_empty_outputs_agree():
    empty = compare_output(np.zeros((0, 4)), np.zeros((0, 4)))
    assert (empty.max_abs, empty.max_rel, empty.cosine) == (0.0, 0.0, 1.0)


def test_non_finite_candidate_is_the_worst_result():
    out = compare_output(GOOD, np.where(GOOD > 3, np.nan, GOOD))
    assert out.max_abs == float("inf") and out.max_rel == float("inf")
    assert np.isnan(out.cosine) and out.top1 == 0.0 and out.top5 == 0.0


@pytest.mark.parametrize(
    ("ref_shape", "cand_shape"), [((2, 6), (2, 5)), ((2, 6), (2, 7)), ((2, 6), (3, 6))]
)
def test_a_shape_mismatch_either_way_is_an_error(ref_shape, cand_shape):
    with pytest.raises(ValueError, match="differs from the reference"):
        compare_output(np.ones(ref_shape), np.ones(cand_shape))


def test_outputs_pair_by_name_or_else_by_position_and_counts_must_match():
    a, b = np.ones(2), np.zeros(2)
    by_name = pair_outputs({"x": a, "y": b}, {"y": b + 1, "x": a + 1})
    assert [(n, r[0], c[0]) for n, r, c in by_name] == [("x", 1.0, 2.0), ("y", 0.0, 1.0)]
    # names that differ, or only partly match: by position
    partly = pair_outputs({"x": a, "y": b}, {"x": a + 1, "z": b + 1})
    assert [(n, c[0]) for n, _, c in partly] == [("x", 2.0), ("y", 1.0)]
    for candidates in ({"x": a}, {"x": a, "y": b, "z": b}):
        with pytest.raises(ValueError, match="outputs, the reference has"):
            pair_outputs({"x": a, "y": b}, candidates)


def tolerance(**fields) -> Tolerance:
    return Tolerance(**fields)


def shifted(value: float) -> np.ndarray:
    """GOOD with one logit moved by ``value``: max abs error ``value``, max rel value/4."""
    moved = GOOD.copy()
    moved[0, 2] += value
    return moved


def test_each_tolerance_passes_at_its_threshold_and_fails_past_it():
    assert check({"o": GOOD}, {"o": shifted(1.0)}, tolerance(max_rel=0.25)).verdict == "pass"
    assert check({"o": GOOD}, {"o": shifted(1.5)}, tolerance(max_rel=0.25)).verdict == "fail"
    cosine = compare_output(GOOD, shifted(1.0)).cosine
    assert check({"o": GOOD}, {"o": shifted(1.0)}, tolerance(min_cosine=cosine)).verdict == "pass"
    assert (
        check({"o": GOOD}, {"o": shifted(1.0)}, tolerance(min_cosine=cosine + 1e-9)).verdict
        == "fail"
    )


def test_top_k_tolerances_at_their_thresholds():
    # sample 0 loses its top class to class 5: top-1 agreement 0.5, top-5 still 1.0
    swapped = GOOD.copy()
    swapped[0, 5] = 9.0
    assert check({"o": GOOD}, {"o": swapped}, tolerance(min_top1=0.5)).verdict == "pass"
    result = check({"o": GOOD}, {"o": swapped}, tolerance(min_top1=0.75))
    assert result.verdict == "fail" and result.reason == "top-1 agreement 0.50 < 0.75"
    # class 0 pushed to last place for sample 0: out of its top-5 of six
    buried = GOOD.copy()
    buried[0] = [-9.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert check({"o": GOOD}, {"o": buried}, tolerance(min_top5=0.5)).verdict == "pass"
    result = check({"o": GOOD}, {"o": buried}, tolerance(min_top5=1.0))
    assert result.verdict == "fail" and result.reason == "top-5 agreement 0.50 < 1.0"


def test_top_k_is_not_judged_where_it_means_nothing():
    # a 1-d output has no classes: a top-1 tolerance cannot fail it
    ref = np.array([1.0, 5.0, 9.0])
    assert check({"o": ref}, {"o": ref[::-1]}, tolerance(min_top1=1.0)).verdict == "pass"


def test_a_degenerate_reference_still_fails_on_error_but_never_on_agreement():
    same_class = np.array([[5.0, 1.0, 0.0], [9.0, 0.0, 3.0]])
    other = same_class.copy()
    other[:, 2] += 10.0  # the candidate now picks class 2 everywhere
    loose = tolerance(max_rel=10.0, min_top1=1.0, min_top5=1.0)
    result = check({"o": same_class}, {"o": other}, loose)
    assert result.verdict == "inconclusive" and result.degenerate_reference
    assert result.reason.startswith("reference predicts the same class for every input")
    strict = tolerance(max_rel=0.1, min_top1=1.0)
    failed = check({"o": same_class}, {"o": other}, strict)
    assert failed.verdict == "fail" and "top-1" not in failed.reason


def test_with_several_outputs_failures_name_the_output_and_every_output_is_checked():
    refs = {"first": GOOD, "second": GOOD * 2}
    result = check(refs, {"first": GOOD, "second": shifted(1.0) * 2}, tolerance(max_rel=0.1))
    assert result.verdict == "fail" and result.reason.startswith("second: max rel error")
    assert result.output_names == ["first", "second"] and len(result.outputs) == 2
    single = check({"o": GOOD}, {"o": shifted(1.0)}, tolerance(max_rel=0.1))
    assert single.reason.startswith("max rel error")  # one output: no label
    # a degenerate first output does not stop the second from being judged for agreement
    same_class = np.array([[5.0, 1.0, 0.0, 0, 0, 0], [9.0, 0.0, 3.0, 0, 0, 0]])
    swapped = GOOD.copy()
    swapped[0, 5] = 9.0
    mixed = check(
        {"a": same_class, "b": GOOD}, {"a": same_class, "b": swapped}, tolerance(min_top1=1.0)
    )
    assert mixed.verdict == "inconclusive"
    clean = check({"o": GOOD}, {"o": GOOD}, tolerance(max_rel=0.0))
    assert (clean.verdict, clean.degenerate_reference) == ("pass", False)


def test_results_are_records_that_cannot_change():
    out = compare_output(GOOD, GOOD)
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.max_abs = 1.0  # type: ignore[misc]


# ---- written from the survivors of the second mutation run (docs/testing.md)


def test_the_spread_rule_is_strict_at_exactly_its_threshold():
    # magnitude 1000 and a spread of exactly 1000 * 1e-3 = 1.0 (binary-exact): not degenerate
    at_threshold = np.array([[1000.0, 999.0], [999.0, 1000.0]])
    assert MIN_RELATIVE_SPREAD * 1000.0 == 1.0
    assert degenerate_reason(at_threshold) is None


def test_outputs_of_any_rank_are_checked_per_sample_but_a_vector_is_not():
    # (N, C, H, W) maps identical for every input: as degenerate as identical logits
    maps = np.tile(np.arange(1.0, 9.0).reshape(1, 2, 2, 2), (3, 1, 1, 1))
    assert degenerate_reason(maps) == "reference outputs are nearly identical for every input"
    # a 1-D output has no per-sample features to compare: judged on magnitude alone
    assert degenerate_reason(np.full(8, 5.0)) is None


def test_two_classes_that_never_change_are_degenerate():
    two_classes = np.array([[2.0, 1.0], [3.0, 1.0], [4.0, 1.0]])
    assert degenerate_reason(two_classes) == "reference predicts the same class for every input"


def test_an_empty_reference_says_its_magnitude_is_zero():
    assert degenerate_reason(np.zeros((0, 4))) == (
        "reference outputs are near zero (max |x| = 0.0e+00)"
    )


def test_top_k_needs_a_batch_of_class_scores():
    volume = np.arange(24.0).reshape(2, 6, 2)
    assert compare_output(volume, volume).top1 is None


def test_a_degenerate_reference_skips_agreement_for_every_output_but_not_their_errors():
    flat = np.full((2, 6), 1e-9)  # random-weights logits: degenerate
    tolerance = Tolerance(max_rel=1e-3, min_top1=1.0)
    result = check({"a": flat, "b": GOOD}, {"a": flat, "b": GOOD * 2}, tolerance)
    # the second output's error is still judged after the first output's agreement is skipped
    assert result.verdict == "fail" and result.reason.startswith("b: max rel error")


def test_the_inconclusive_reason_names_the_first_degenerate_output():
    near_zero = np.full((2, 6), 1e-9)
    same_class = np.array([[4.0, 1.0, 0.0], [5.0, 1.0, 0.0]])
    result = check(
        {"a": near_zero, "b": same_class}, {"a": near_zero, "b": same_class}, Tolerance()
    )
    assert result.verdict == "inconclusive"
    assert result.reason.startswith("reference outputs are near zero")


# ---- written from the semantic mutants of tools/mutants/parity.toml


def with_nan(outputs: np.ndarray) -> np.ndarray:
    broken = outputs.copy()
    broken[0, 1] = np.nan
    return broken


@pytest.mark.parametrize(
    ("only_check", "its_failure"),
    [
        ({"max_rel": 1e-4}, "max rel error inf > 1e-04"),
        ({"min_cosine": 0.95}, "cosine nan < 0.95"),
        ({"min_top1": 0.6}, "top-1 agreement 0.00 < 0.6"),
        ({"min_top5": 0.9}, "top-5 agreement 0.00 < 0.9"),
    ],
)
def test_nan_outputs_fail_every_check_each_saying_so(only_check, its_failure):
    result = check({"o": GOOD}, {"o": with_nan(GOOD)}, tolerance(**only_check))
    assert result.verdict == "fail"
    assert result.reason == f"1 of 12 values are NaN or inf; {its_failure}"


def test_non_finite_outputs_fail_even_where_no_check_could_catch_them():
    # no check at all, and a random-weights reference that leaves top-k unjudged: NaN and inf
    # must still fail, never pass or come out "inconclusive" (which random weights recommend)
    near_zero = np.full((2, 6), 1e-9)
    for broken in (with_nan(near_zero), np.where(near_zero > 0, np.inf, 0.0)):
        for only_check in ({}, {"min_top1": 0.6}, {"min_top5": 0.9}):
            result = check({"o": near_zero}, {"o": broken}, tolerance(**only_check))
            assert result.verdict == "fail", (broken, only_check)
            assert "values are NaN or inf" in result.reason
    result = check({"o": GOOD}, {"o": np.where(GOOD > 3, -np.inf, GOOD)}, Tolerance())
    assert (result.verdict, result.reason) == ("fail", "1 of 12 values are NaN or inf")
    several = check(
        {"a": GOOD, "b": GOOD}, {"a": GOOD, "b": np.full_like(GOOD, np.nan)}, Tolerance()
    )
    assert several.reason == "b: 12 of 12 values are NaN or inf"


def test_error_measures_that_come_out_nan_fail():
    # a reference that overflowed to inf: the relative error is inf / inf and the cosine
    # inf / inf, both NaN; a NaN must fail a check, not slip past a `>` or a `<`
    overflowed = GOOD.copy()
    overflowed[0, 0] = np.inf
    relative = check({"o": overflowed}, {"o": GOOD}, tolerance(max_rel=0.5))
    assert (relative.verdict, relative.reason) == ("fail", "max rel error nan > 5e-01")
    cosine = check({"o": overflowed}, {"o": GOOD}, tolerance(min_cosine=0.5))
    assert (cosine.verdict, cosine.reason) == ("fail", "cosine nan < 0.5")


def test_a_collapsed_candidate_fails_against_a_reference_that_can_judge():
    # the candidate predicts class 0 for every input; the reference does not: that is a
    # disagreement to fail, not a degenerate reference to shrug at
    collapsed = np.array([[4.0, 1.0, 0.0, 0.0, 0.0, 0.0], [4.0, 1.0, 0.0, 0.0, 0.0, 0.0]])
    result = check({"o": GOOD}, {"o": collapsed}, tolerance(max_rel=10.0, min_top1=1.0))
    assert (result.verdict, result.reason) == ("fail", "top-1 agreement 0.50 < 1.0")
    assert result.degenerate_reference is False


def test_a_failure_records_whether_its_reference_was_degenerate():
    failed = check({"o": GOOD}, {"o": shifted(1.0)}, tolerance(max_rel=0.1))
    assert (failed.verdict, failed.degenerate_reference) == ("fail", False)
    same_class = np.array([[5.0, 1.0, 0.0], [9.0, 0.0, 3.0]])
    failed = check({"o": same_class}, {"o": same_class * 2}, tolerance(max_rel=0.1))
    assert (failed.verdict, failed.degenerate_reference) == ("fail", True)


def test_top_k_agreement_is_the_fraction_of_samples_that_agree():
    reference = np.array([[3.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 3.0]])
    one_of_three = reference.copy()
    one_of_three[1:] = np.roll(reference[1:], 1, axis=1)  # samples 1 and 2 pick another class
    assert compare_output(reference, one_of_three).top1 == pytest.approx(1 / 3)
    two_of_three = reference.copy()
    two_of_three[2] = np.roll(reference[2], 1)
    assert compare_output(reference, two_of_three).top1 == pytest.approx(2 / 3)


def test_top_5_asks_whether_the_references_class_is_in_the_candidates_top_5():
    # the candidate's own top class (6) is last in the reference, but the reference's top
    # class (0) is still among the candidate's five highest: top-5 agrees, top-1 does not
    reference = np.array([[6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0]])
    candidate = np.array([[5.0, 0.0, 1.0, 2.0, 3.0, 0.0, 9.0]])
    out = compare_output(reference, candidate)
    assert (out.top1, out.top5) == (0.0, 1.0)
    # and the reverse: the candidate's top class is in the reference's top 5, the reference's
    # top class is last in the candidate
    out = compare_output(reference, np.array([[0.0, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0]]))
    assert (out.top1, out.top5) == (0.0, 0.0)


def test_top_5_is_judged_on_exactly_five_classes():
    five = np.array([[5.0, 4.0, 3.0, 2.0, 1.0], [1.0, 5.0, 4.0, 3.0, 2.0]])
    assert compare_output(five, five[:, ::-1]).top5 == 1.0  # five classes: always in the top 5
    assert compare_output(five[:, :4], five[:, :4]).top5 is None
