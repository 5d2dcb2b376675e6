"""What the report concludes from the measurements: the recommendation per batch size (with
ties the paired CI cannot separate, settled by a stated rule) and the verdict on each vendor
cross-check. Pure functions of the summary and the rounds, kept apart from the rendering so they
are tested (and mutation-tested) on their own."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backends.registry import device_of
from ..records import missing
from ..stats import paired_ratio

ACCEPTABLE_PARITY = ("pass",)
CROSSCHECK_TOLERANCE = 0.15
DRIFT_TOLERANCE = 0.10


def crosscheck_note(ratio: float | None, drift: float | None) -> str:
    """Why ours and the vendor's medians differ, from what was measured around the tool's run."""
    if ratio is None or ratio != ratio or abs(ratio - 1) <= CROSSCHECK_TOLERANCE:
        return ""
    # (a NaN drift compares False: it explains nothing)
    if drift is not None and abs(drift - 1) > DRIFT_TOLERANCE:
        return (
            f"apart by more than {CROSSCHECK_TOLERANCE:.0%}, but our own median moved "
            f"{drift - 1:+.0%} between the runs just before and just after the tool's: the "
            "machine's speed drifted; rerun on a quiet machine"
        )
    return (
        f"apart by more than {CROSSCHECK_TOLERANCE:.0%} while our median held steady around the "
        "tool's run: not explained by drift measured around it; rerun to see whether it persists "
        "before blaming either loop"
    )


def rounds_of(rounds, row) -> np.ndarray:
    """A configuration's per-round medians in the side-by-side comparison, by round number."""
    # (rounds.shape would be the frame's size: columns by name throughout)
    mine = rounds[
        (rounds["model"] == row["model"])
        & (rounds["backend"] == row["backend"])
        & (rounds["precision"] == row["precision"])
        & (rounds["shape"] == row["shape"])
        & (rounds["batch"] == row["batch"])
    ]
    series = np.full(int(rounds["round"].max()) + 1 if len(rounds) else 0, np.nan)
    series[mine["round"].to_numpy(dtype=int)] = mine.median_ms.to_numpy()
    return series


def comparison_notes(rows) -> list[str]:
    """Why a batch size of this model (on a device) has no speedups, where it has none."""
    notes = []
    ok = rows[rows.status == "ok"]
    for (batch, device), group in ok.assign(device=ok.backend.map(device_of)).groupby(
        ["batch", "device"]
    ):
        measured = group[group.cmp_status == "ok"]
        where = f"batch {batch}" if device == "cpu" else f"batch {batch} on {device}"
        if len(measured) <= 1:
            notes.append(f"{where}: nothing to compare side by side: only the baseline ran")
        elif measured.cmp_speedup.isna().all():
            notes.append(f"{where}: no speedups: the baseline was not measured side by side")
    return notes


def label(row) -> str:
    return f"{row['backend']} {row['precision']} ({row['shape']})"


def recommend(model_rows, rounds, pretrained: bool) -> list[dict[str, Any]]:
    """Per batch size and device (each compared against its own baseline, never with each
    other): the fastest configuration in the side-by-side comparison whose outputs
    pass parity. Configurations the paired CI cannot tell from the fastest are a tie, settled
    by the smaller artifact, and the pick says so. (Tied configurations share one parity
    verdict: they are all "pass", or, with random weights and none passing, all
    "inconclusive".)"""
    picks = []
    compared = model_rows[(model_rows.status == "ok") & (model_rows.cmp_status == "ok")]
    compared = compared.assign(device=compared.backend.map(device_of))
    for (batch, device), group in compared.groupby(["batch", "device"]):
        passing = group[group.parity_verdict.isin(ACCEPTABLE_PARITY)]
        note = ""
        if passing.empty and not pretrained:
            passing = group[group.parity_verdict == "inconclusive"]
            note = "parity could not be judged (random weights): numerical error within tolerance"
        if passing.empty:
            picks.append(
                {
                    "batch": int(batch),
                    "device": device,
                    "row": None,
                    "note": "no configuration passed parity",
                    "tie": "",
                }
            )
            continue
        ranked = passing.sort_values("cmp_median_ms").to_dict("records")
        fastest = ranked[0]
        tied = []
        for other in ranked[1:]:
            estimate = paired_ratio(rounds_of(rounds, other), rounds_of(rounds, fastest))
            if estimate.tie:
                tied.append((other, estimate))
        pick, tie_note = fastest, ""
        if tied:
            group_rows = [fastest, *(row for row, _ in tied)]
            pick = min(group_rows, key=lambda r: (r["compile_artifact_bytes"], r["cmp_median_ms"]))
            spans = "; ".join(
                f"{label(row)} / {label(fastest)} {e.ci_low:.2f}–{e.ci_high:.2f}" for row, e in tied
            )
            tie_note = (
                f"{', '.join(label(r) for r in group_rows)} are equally fast here (CI of the "
                f"latency ratio spans 1: {spans}); picked {label(pick)}, the smallest artifact"
            )
        picks.append(
            {"batch": int(batch), "device": device, "row": pick, "note": note, "tie": tie_note}
        )
    return picks


def _allocation(exclusive) -> str:
    """How a job was allocated, from its record's ``exclusive``: unknown (None, or NaN from an
    empty CSV cell) only for a local run; any truth value (bool or numpy bool) otherwise."""
    if missing(exclusive):
        return "local"
    return "exclusive node" if exclusive else "shared node"


def hardware_groups(summary) -> list[dict[str, Any]]:
    """The hardware the timings and comparisons ran on: one group per hardware identity, with
    what ran there and how it was allocated. Speedups are only ever taken within one group."""
    groups: dict[str, dict[str, Any]] = {}
    for prefix, what in (("", "timings"), ("cmp_", "comparisons")):
        ran = summary[summary[f"{prefix}hardware_id"].notna()]
        for row in ran.to_dict("records"):
            group = groups.setdefault(
                row[f"{prefix}hardware_id"],
                {
                    "hardware_id": row[f"{prefix}hardware_id"],
                    "hardware": row[f"{prefix}hardware"],
                    "timings": 0,
                    "comparisons": 0,
                    "allocations": set(),
                },
            )
            group[what] += 1
            group["allocations"].add(_allocation(row[f"{prefix}exclusive"]))
    for group in groups.values():
        group["allocations"] = ", ".join(sorted(group["allocations"]))
    return sorted(groups.values(), key=lambda g: g["hardware"])


def hardware_mismatches(summary) -> list[str]:
    """Configurations whose own timing job ran on other hardware than their comparison: their
    own-job median and their side-by-side figures cannot be set against each other."""
    both = summary[summary.hardware_id.notna() & summary.cmp_hardware_id.notna()]
    apart = both[both.hardware_id != both.cmp_hardware_id]
    return [
        f"{row['model']} {label(row)} batch {row['batch']}: timed on {row['hardware']}, "
        f"compared on {row['cmp_hardware']}"
        for row in apart.to_dict("records")
    ]
