"""What the report concludes (deploybench.stages.decide), on summaries built by hand where every
number that matters is set on its own: the side-by-side median apart from the own-job median,
per-round ratios whose bootstrap CI is known from their construction, parity verdicts of every
kind, and hardware whose ids sort the other way from its labels. Written from the semantic
mutants of tools/mutants/decide.toml."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from deploybench.backends import Backend
from deploybench.backends.registry import ENVIRONMENT_VARIABLE
from deploybench.records import summary_columns
from deploybench.stages.decide import (
    comparison_notes,
    hardware_groups,
    hardware_mismatches,
    recommend,
)
from deploybench.stats import paired_ratio

ROUNDS = 12


def alternating(low: float, high: float) -> list[float]:
    """Per-round medians that take two values in turn, six rounds each.

    Against a steady 1.0 ms per round their paired ratios are exactly ``low`` and ``high``, so
    the bootstrap median of 12 such ratios is ``low`` (7 or more draws of it), ``high`` (7 or
    more of it) or their midpoint; each end is drawn about 39% of the time, far above 2.5%, so
    the 95% CI is exactly (low, high) whatever the resampling seed."""
    return [low, high] * (ROUNDS // 2)


def configuration(
    backend: str,
    round_ms,
    *,
    precision: str = "fp32",
    parity: str = "pass",
    artifact_bytes: int = 100,
    own_ms: float | None = None,
    **fields,
) -> tuple[dict, np.ndarray]:
    """A configuration that was timed (its own job: ``own_ms``, by default the same as the
    side by side one), checked for parity and compared side by side (``round_ms`` per round)."""
    medians = np.broadcast_to(np.asarray(round_ms, dtype=float), ROUNDS).copy()
    side_by_side = float(np.median(medians))
    row = {
        "model": "m",
        "backend": backend,
        "precision": precision,
        "shape": "dynamic",
        "batch": 1,
        "status": "ok",
        "median_ms": side_by_side if own_ms is None else own_ms,
        "parity_status": "ok",
        "parity_verdict": parity,
        "compile_artifact_bytes": artifact_bytes,
        "cmp_status": "ok",
        "cmp_rounds": ROUNDS,
        "cmp_median_ms": side_by_side,
        **fields,
    }
    return row, medians


def summary(*configurations: tuple[dict, np.ndarray]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The summary and the per-round medians of ``configurations``, the first the baseline."""
    baseline = configurations[0][1]
    rows, rounds = [], []
    for row, medians in configurations:
        estimate = paired_ratio(baseline, medians)
        rows.append(
            {
                "cmp_speedup": estimate.ratio,
                "cmp_speedup_ci_low": estimate.ci_low,
                "cmp_speedup_ci_high": estimate.ci_high,
                "cmp_baseline": "pytorch fp32",
                **row,
            }
        )
        keys = {k: row[k] for k in ("model", "backend", "precision", "shape", "batch")}
        rounds += [{**keys, "round": r, "median_ms": m} for r, m in enumerate(medians)]
    return pd.DataFrame(rows).reindex(columns=summary_columns()), pd.DataFrame(rounds)


def picked(frame, rounds, pretrained=True) -> dict:
    (pick,) = recommend(frame, rounds, pretrained=pretrained)
    return pick


def name(pick) -> str:
    return pick["row"] and f"{pick['row']['backend']} {pick['row']['precision']}"


# ---- the recommendation


def test_the_tie_note_gives_the_ci_of_each_tied_configuration_over_the_fastest():
    frame, rounds = summary(
        configuration("pytorch", 1.0, artifact_bytes=50),
        configuration("onnxruntime", alternating(0.9, 1.2), artifact_bytes=900),
    )
    pick = picked(frame, rounds)
    assert pick["tie"] == (
        "pytorch fp32 (dynamic), onnxruntime fp32 (dynamic) are equally fast here (CI of the "
        "latency ratio spans 1: onnxruntime fp32 (dynamic) / pytorch fp32 (dynamic) "
        "0.90–1.20); picked pytorch fp32 (dynamic), the smallest artifact"
    )


def test_every_configuration_inside_the_tie_band_joins_the_tie_and_the_smallest_wins():
    frame, rounds = summary(
        configuration("pytorch", 1.0, artifact_bytes=300),
        configuration("onnxruntime", alternating(0.9, 1.2), artifact_bytes=200),
        # the slowest of the three, still inside the band, with the smallest artifact
        configuration("openvino", alternating(0.95, 1.25), artifact_bytes=100),
    )
    pick = picked(frame, rounds)
    assert name(pick) == "openvino fp32"
    assert pick["tie"].startswith(
        "pytorch fp32 (dynamic), onnxruntime fp32 (dynamic), openvino fp32 (dynamic) are "
        "equally fast here"
    )
    assert "openvino fp32 (dynamic) / pytorch fp32 (dynamic) 0.95–1.25);" in pick["tie"]


def test_a_tie_between_equal_artifacts_goes_to_the_faster_side_by_side_not_its_own_job():
    # the own timing jobs (run apart, at other times) say the opposite of the side by side
    frame, rounds = summary(
        configuration("pytorch", 1.0, own_ms=5.0),
        configuration("onnxruntime", alternating(0.9, 1.2), own_ms=1.0),
    )
    pick = picked(frame, rounds)
    assert pick["tie"] and name(pick) == "pytorch fp32"


def test_configurations_are_ranked_by_the_side_by_side_median_not_their_own_jobs():
    frame, rounds = summary(
        configuration("pytorch", 2.0, own_ms=1.0),
        configuration("onnxruntime", 1.0, own_ms=3.0),  # twice as fast in every round
    )
    pick = picked(frame, rounds)
    assert name(pick) == "onnxruntime fp32" and pick["tie"] == ""


@pytest.mark.parametrize("pretrained", [True, False])
def test_configurations_that_pass_are_preferred_with_random_weights_too(pretrained):
    # a random-weights model whose outputs happen to judge agreement: its passing rows count,
    # the faster inconclusive one does not replace them
    frame, rounds = summary(
        configuration("pytorch", 1.0),
        configuration("onnxruntime", 0.5),
        configuration("openvino", 0.25, parity="inconclusive"),
    )
    pick = picked(frame, rounds, pretrained=pretrained)
    assert (name(pick), pick["note"]) == ("onnxruntime fp32", "")


def test_random_weights_fall_back_only_to_inconclusive_never_to_parity_that_did_not_run():
    frame, rounds = summary(
        configuration("pytorch", 1.0, parity="inconclusive"),
        configuration("onnxruntime", 0.5, parity="inconclusive"),
        # faster, but its parity job crashed, or left no record at all
        configuration("openvino", 0.25, parity="not run", parity_status="failed"),
        configuration("tvm", 0.2, parity=float("nan"), parity_status=float("nan")),
        configuration("openvino", 0.1, precision="int8", parity="fail"),
    )
    pick = picked(frame, rounds, pretrained=False)
    assert name(pick) == "onnxruntime fp32"
    assert pick["note"] == (
        "parity could not be judged (random weights): numerical error within tolerance"
    )
    never_judged = frame[frame.parity_verdict != "inconclusive"]
    assert picked(never_judged, rounds, pretrained=False)["row"] is None


# ---- the notes


class RuntimeDeviceBackend(Backend):
    """A plugin backend whose device name is built at run time (read from its own settings,
    say): equal to "cpu", but not the interned literal."""

    name = "runtime_cpu"
    device = "".join(["c", "p", "u"])

    def _compile(self, source: Path, out_dir: Path, calibration) -> dict:
        raise NotImplementedError

    def _load(self, artifact_dir: Path):
        raise NotImplementedError


def test_a_device_name_built_at_run_time_is_the_same_device(monkeypatch):
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, f"runtime_cpu={__name__}:RuntimeDeviceBackend")
    frame, rounds = summary(
        configuration("runtime_cpu", 0.5), configuration("pytorch", 1.0, cmp_status="failed")
    )
    # the plugin's rows come first, so its "cpu" is the one the grouping hands back
    assert comparison_notes(frame) == [
        "batch 1: nothing to compare side by side: only the baseline ran"
    ]
    both, rounds = summary(configuration("runtime_cpu", 0.5), configuration("pytorch", 1.0))
    (pick,) = recommend(both, rounds, pretrained=True)
    assert (pick["device"], name(pick)) == ("cpu", "runtime_cpu fp32")


def test_no_speedups_is_said_only_when_no_configuration_has_one():
    frame, _ = summary(
        configuration("pytorch", 1.0),
        configuration("onnxruntime", 0.5),
        configuration("openvino", 0.25),
    )
    frame.loc[frame.backend == "openvino", "cmp_speedup"] = float("nan")
    assert comparison_notes(frame) == []


# ---- hardware

# ids that sort the other way from the labels: the reader sees labels
ZEN, XEON = ("f0e1", "AMD EPYC 9R14 · 2 cores"), ("0a1b", "Intel Xeon 8488C · 2 cores")


def placed(backend, timed, timed_exclusive, compared, compared_exclusive) -> dict:
    return {
        "model": "m",
        "backend": backend,
        "precision": "fp32",
        "shape": "dynamic",
        "batch": 1,
        "status": "ok",
        "hardware_id": timed[0],
        "hardware": timed[1],
        "exclusive": timed_exclusive,
        "cmp_hardware_id": compared and compared[0],
        "cmp_hardware": compared and compared[1],
        "cmp_exclusive": compared_exclusive,
    }


def placements() -> pd.DataFrame:
    rows = [
        # timed on an exclusive node, compared on a shared one of the same kind
        placed("pytorch", ZEN, True, ZEN, False),
        # compared on another kind of machine that timed nothing
        placed("onnxruntime", ZEN, True, XEON, False),
        # timed, never compared
        placed("openvino", ZEN, True, None, None),
    ]
    return pd.DataFrame(rows).reindex(columns=summary_columns())


@pytest.mark.parametrize("from_csv", [False, True])
def test_hardware_groups_take_each_jobs_own_hardware_and_allocation(from_csv, tmp_path):
    summary_frame = placements()
    if from_csv:
        summary_frame.to_csv(tmp_path / "summary.csv", index=False)
        summary_frame = pd.read_csv(tmp_path / "summary.csv")
    assert hardware_groups(summary_frame) == [
        {
            "hardware_id": ZEN[0],
            "hardware": ZEN[1],
            "timings": 3,
            "comparisons": 1,
            "allocations": "exclusive node, shared node",
        },
        {
            "hardware_id": XEON[0],
            "hardware": XEON[1],
            "timings": 0,
            "comparisons": 1,
            "allocations": "shared node",
        },
    ]


def test_only_configurations_compared_elsewhere_are_flagged_not_those_never_compared():
    assert hardware_mismatches(placements()) == [
        f"m onnxruntime fp32 (dynamic) batch 1: timed on {ZEN[1]}, compared on {XEON[1]}"
    ]
