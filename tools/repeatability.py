"""Repeatability: run the timing and comparison stages again on the same compiled artifacts,
and print how much each figure moved between repetitions and whether the recommendation
changed, for the per-job timings and for the side-by-side comparisons.

    python tools/repeatability.py [--repetitions 2] [--configfile my.yaml] [--cores 2]

The results already in results/ (from a finished `snakemake report`) are repetition 1; each
further repetition forces a rerun of just the time_inference and compare_configs jobs (and the
summary and report after them). Prints numbers; asserts nothing. Nothing else should run on the
machine meanwhile.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))

import pandas as pd  # noqa: E402
from deploybench.specs import names_configuration  # noqa: E402
from deploybench.stages.decide import ACCEPTABLE_PARITY, recommend  # noqa: E402
from deploybench.stats import paired_ratio  # noqa: E402

KEYS = ["model", "backend", "precision", "shape", "batch"]


def snapshot(folder: Path) -> dict:
    folder.mkdir(parents=True)
    for name in ("summary.csv", "rounds.csv"):
        shutil.copy(REPO / "results" / name, folder / name)
    return load(folder)


def load(folder: Path) -> dict:
    return {
        "summary": pd.read_csv(folder / "summary.csv"),
        "rounds": pd.read_csv(folder / "rounds.csv"),
    }


def own_job_speedups(summary: pd.DataFrame) -> pd.Series:
    """Speedup over the baseline from each configuration's own timing job (the old way)."""
    ok = summary[summary.status == "ok"]
    is_base = [
        isinstance(base, str) and names_configuration(base, backend, precision, shape)
        for base, backend, precision, shape in zip(
            ok.cmp_baseline, ok.backend, ok.precision, ok.shape, strict=True
        )
    ]
    base = ok[is_base][["model", "batch", "median_ms"]]
    merged = ok.merge(base, on=["model", "batch"], suffixes=("", "_base"))
    return merged.set_index(KEYS).median_ms_base / merged.set_index(KEYS).median_ms


def recommendations(rep: dict, pretrained: dict[str, bool]) -> dict:
    picks = {}
    summary = rep["summary"]
    for model, rows in summary.groupby("model"):
        for pick in recommend(rows, rep["rounds"], pretrained.get(model, False)):
            row = pick["row"]
            label = "none" if row is None else f"{row['backend']} {row['precision']} {row['shape']}"
            picks[(model, pick["batch"], "side by side")] = label + (
                " (tie)" if pick["tie"] else ""
            )
        ok = rows[(rows.status == "ok") & rows.parity_verdict.isin(ACCEPTABLE_PARITY)]
        if not pretrained.get(model, False) and ok.empty:
            ok = rows[(rows.status == "ok") & (rows.parity_verdict == "inconclusive")]
        for batch, group in ok.groupby("batch"):
            row = group.sort_values("median_ms").iloc[0]
            picks[(model, int(batch), "own jobs")] = f"{row.backend} {row.precision} {row['shape']}"
    return picks


def half_speedup_ratios(rep: dict) -> pd.Series:
    """Per configuration: the speedup from the first half of its rounds / from the second half.

    Two independent estimates of R/2 rounds each from one comparison job: how much a run of
    R/2 rounds moves, without another run.
    """
    summary, rounds = rep["summary"], rep["rounds"]
    baselines = (
        summary.dropna(subset=["cmp_baseline"]).groupby(["model", "batch"]).cmp_baseline.first()
    )
    ratios = {}
    for (model, batch), group in rounds.groupby(["model", "batch"]):
        baseline = baselines.get((model, batch))
        if baseline is None:
            continue
        table = group.pivot_table(
            index="round", columns=["backend", "precision", "shape"], values="median_ms"
        )
        base_column = next(c for c in table.columns if names_configuration(baseline, *c))
        half = len(table) // 2
        for column in table.columns:
            if column == base_column:
                continue
            first, second = table.iloc[:half], table.iloc[half : 2 * half]
            estimates = [
                paired_ratio(part[base_column].to_numpy(), part[column].to_numpy()).ratio
                for part in (first, second)
            ]
            ratios[(model, *column, batch)] = estimates[0] / estimates[1]
    return pd.Series(ratios, dtype=float)


def within(ratios: pd.Series, tolerance: float) -> str:
    ratios = ratios.dropna()
    inside = int(((ratios - 1).abs() <= tolerance).sum())
    return f"{inside}/{len(ratios)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=2)
    parser.add_argument("--configfile")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument(
        "--comparisons-only",
        action="store_true",
        help="rerun only the side-by-side comparisons (the per-job timings stay as they are)",
    )
    parser.add_argument(
        "--keep-artifacts",
        action="store_true",
        help="rerun only what is forced, even if code changed since the artifacts were built "
        "(Snakemake's mtime trigger only): the same artifacts timed again",
    )
    parser.add_argument("--from-snapshots", help="analyse the rep*/ folders an earlier run kept")
    args = parser.parse_args()

    if args.from_snapshots:
        folders = sorted(Path(args.from_snapshots).glob("rep*"), key=lambda f: int(f.name[3:]))
        reps = [load(folder) for folder in folders]
        args.repetitions = 0
    else:
        folder = Path(tempfile.mkdtemp(prefix="repeatability-"))
        print(f"snapshots in {folder}")
        reps = [snapshot(folder / "rep1")]
    for number in range(2, args.repetitions + 1):
        command = [sys.executable, "-m", "snakemake", "report", "--cores", str(args.cores)]
        command += ["--configfile", args.configfile] if args.configfile else []
        stages = ["compare_configs"] + ([] if args.comparisons_only else ["time_inference"])
        command += ["--forcerun", *stages]
        command += ["--rerun-triggers", "mtime"] if args.keep_artifacts else []
        start = time.perf_counter()
        subprocess.run(command, cwd=REPO, check=True, capture_output=True)
        print(f"repetition {number}: rerun in {time.perf_counter() - start:.0f} s")
        reps.append(snapshot(folder / f"rep{number}"))

    pretrained = {
        path.parent.name: json.loads(path.read_text())["pretrained"]
        for path in (REPO / "results" / "models").glob("*/model.json")
    }
    first = reps[0]["summary"].set_index(KEYS)
    first = first[first.status == "ok"]
    figures = {}
    for number, rep in enumerate(reps[1:], start=2):
        other = rep["summary"].set_index(KEYS)
        other = other[other.status == "ok"]
        common = first.index.intersection(other.index)
        median_ratio = other.loc[common, "median_ms"] / first.loc[common, "median_ms"]
        job_speedup = own_job_speedups(rep["summary"]) / own_job_speedups(reps[0]["summary"])
        cmp_ratio = other.loc[common, "cmp_speedup"] / first.loc[common, "cmp_speedup"]
        cmp_ratio = cmp_ratio[first.loc[common, "cmp_speedup"] != 1.0]  # not the baseline
        job_speedup = job_speedup[job_speedup.index.isin(cmp_ratio.index)]
        overlap = (
            (other.loc[common, "cmp_speedup_ci_low"] <= first.loc[common, "cmp_speedup_ci_high"])
            & (first.loc[common, "cmp_speedup_ci_low"] <= other.loc[common, "cmp_speedup_ci_high"])
        )[cmp_ratio.index]
        figures[number] = {
            "configurations": len(common),
            "own-job medians within 10%": within(median_ratio, 0.10),
            "own-job medians within 20%": within(median_ratio, 0.20),
            "own-job median ratio range": f"{median_ratio.min():.2f}-{median_ratio.max():.2f}",
            "own-job speedups within 10%": within(job_speedup, 0.10),
            "side-by-side speedups within 10%": within(cmp_ratio, 0.10),
            "side-by-side speedups within 5%": within(cmp_ratio, 0.05),
            "side-by-side speedup ratio range": f"{cmp_ratio.min():.2f}-{cmp_ratio.max():.2f}",
            "side-by-side speedup CIs overlapping": f"{int(overlap.sum())}/{len(overlap)}",
        }
        print(f"\nrepetition {number} against repetition 1:")
        for name, value in figures[number].items():
            print(f"  {name:>38}: {value}")

    for number, rep in enumerate(reps, start=1):
        halves = half_speedup_ratios(rep)
        rounds = int(rep["rounds"]["round"].max()) + 1
        figures.setdefault(f"halves {number}", {}).update(
            {
                "rounds per half": rounds // 2,
                "side-by-side speedups within 10%": within(halves, 0.10),
                "side-by-side speedups within 5%": within(halves, 0.05),
                "ratio range": f"{halves.min():.2f}-{halves.max():.2f}",
            }
        )
        print(f"\nrepetition {number}, first half of its rounds against the second half:")
        for name, value in figures[f"halves {number}"].items():
            print(f"  {name:>38}: {value}")

    print("\nrecommendation per model and batch, by repetition:")
    picks = [recommendations(rep, pretrained) for rep in reps]
    changed = {"side by side": 0, "own jobs": 0}
    for key in sorted(picks[0]):
        labels = [p.get(key, "-") for p in picks]
        # the same configuration picked, or a tie declared every time (then a stated rule picks)
        picked = {label.removesuffix(" (tie)") for label in labels}
        same = len(picked) == 1 or all(label.endswith("(tie)") for label in labels)
        changed[key[2]] += not same
        print(f"  {key[0]:>20} b{key[1]:<3} {key[2]:>12}: {' | '.join(labels)}"
              f"{'' if same else '   <- changed'}")  # fmt: skip
    for source, count in changed.items():
        total = sum(1 for key in picks[0] if key[2] == source)
        print(f"  {source}: the pick changed for {count} of {total} model x batch pairs")
    if args.json:
        Path(args.json).write_text(json.dumps({"figures": figures, "changed": changed}, indent=2))


if __name__ == "__main__":
    main()
