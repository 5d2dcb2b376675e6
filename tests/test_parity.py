import numpy as np
import pytest
from deploybench.errors import ConfigError
from deploybench.parity import check, compare_output, degenerate_reason, pair_outputs
from deploybench.specs import Tolerance

FP32 = Tolerance(max_rel=1e-4, min_cosine=0.99999, min_top1=1.0)
INT8 = Tolerance(min_cosine=0.95, min_top1=0.6, min_top5=0.9)


@pytest.fixture
def logits():
    rng = np.random.default_rng(0)
    return rng.standard_normal((20, 100)) * 3


def test_identical_outputs_pass(logits):
    result = check({"logits": logits}, {"logits": logits.copy()}, FP32)
    assert result.verdict == "pass"
    out = result.outputs[0]
    assert out.max_abs == 0 and out.max_rel == 0
    assert out.cosine == pytest.approx(1.0)
    assert out.top1 == 1.0 and out.top5 == 1.0


def test_small_noise_passes_int8_but_fails_fp32(logits):
    noisy = logits + np.random.default_rng(1).normal(0, 0.05, logits.shape)
    assert check({"logits": logits}, {"logits": noisy}, INT8).verdict == "pass"
    fp32 = check({"logits": logits}, {"logits": noisy}, FP32)
    assert fp32.verdict == "fail"
    assert "max rel error" in fp32.reason


def test_shuffled_predictions_fail_on_agreement(logits):
    shuffled = logits[::-1].copy()
    result = check({"logits": logits}, {"logits": shuffled}, INT8)
    assert result.verdict == "fail"
    assert "top-1" in result.reason or "cosine" in result.reason


def test_metric_definitions():
    ref = np.array([[1.0, 2.0, 3.0, 0.0, 0.0, 0.0], [3.0, 2.0, 1.0, 0.0, 0.0, 0.0]])
    cand = np.array([[1.0, 3.5, 3.0, 0.0, 0.0, 0.0], [3.0, 2.0, 1.0, 0.0, 0.0, 0.0]])
    out = compare_output(ref, cand)
    assert out.max_abs == pytest.approx(1.5)
    assert out.max_rel == pytest.approx(0.5)  # 1.5 / max|ref| = 3
    assert out.top1 == 0.5  # first sample's top-1 moved from class 2 to class 1
    assert out.top5 == 1.0  # ...but class 2 is still in its top 5


def test_non_finite_candidate_fails(logits):
    bad = logits.copy()
    bad[0, 0] = np.nan
    result = check({"logits": logits}, {"logits": bad}, INT8)
    assert result.verdict == "fail"
    assert result.reason.startswith("1 of 2000 values are NaN or inf; cosine nan < 0.95")


def test_shape_mismatch_is_an_error(logits):
    with pytest.raises(ValueError, match="shape"):
        check({"logits": logits}, {"logits": logits[:, :10]}, FP32)


def test_degenerate_references_are_detected_not_passed():
    rng = np.random.default_rng(0)
    tiny = rng.standard_normal((8, 10)) * 1e-9
    assert "near zero" in degenerate_reason(tiny)
    same_class = rng.standard_normal((8, 10))
    same_class[:, 3] += 100
    assert "same class" in degenerate_reason(same_class)
    constant = np.tile(rng.standard_normal(10), (8, 1))
    assert "nearly identical" in degenerate_reason(constant)
    assert degenerate_reason(rng.standard_normal((8, 10))) is None

    result = check({"logits": same_class}, {"logits": same_class.copy()}, FP32)
    assert result.verdict == "inconclusive"
    assert result.degenerate_reference
    # errors beyond tolerance still fail, degenerate or not
    assert check({"logits": same_class}, {"logits": same_class * 2}, FP32).verdict == "fail"


def test_tolerance_validation():
    with pytest.raises(ConfigError, match="min_top1=1.5 is out of range"):
        Tolerance(min_top1=1.5)
    with pytest.raises(ConfigError, match="max_rel"):
        Tolerance(max_rel=-1)


def test_outputs_pair_by_name_and_by_order_when_names_differ(logits):
    other = logits[:, :5]
    by_name = pair_outputs({"a": logits, "b": other}, {"b": other + 1, "a": logits + 2})
    assert [(name, round(float((c - r).max()), 6)) for name, r, c in by_name] == [
        ("a", 2.0),
        ("b", 1.0),
    ]
    # an eager model's outputs are named by us, the ONNX graph's by the exporter: order decides
    by_order = pair_outputs({"logits": logits}, {"output": logits + 3})
    assert [(name, round(float((c - r).max()), 6)) for name, r, c in by_order] == [("logits", 3.0)]
    with pytest.raises(ValueError, match="1 outputs, the reference has 2"):
        pair_outputs({"a": logits, "b": other}, {"a": logits})
