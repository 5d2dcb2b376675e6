"""Mutation testing of the measuring and judging core: cosmic-ray's syntactic operators, and our
own semantic mutants.

    python tools/mutation.py [--module stats ...] [--timeout 120] [--keep DIR]
    python tools/mutation.py --semantic [--module decide ...] [--mutant ID ...] [--tests-at REV]

Each module is mutated one small change at a time (an operator swapped, a constant nudged, a
comparison flipped, a condition negated...) and its own fast tests are run against every
mutant: a mutant the tests still pass "survived", i.e. the tests would not notice that bug.
Prints, per module, the mutants, killed, survived and the score (killed / (killed + survived)),
then every survivor's diff. Slow (minutes per module on 2 cores): not a CI gate.

``--semantic`` runs the hand-written mutants of ``tools/mutants/<module>.toml`` instead: the
bugs a person makes while refactoring, which cosmic-ray's operator swaps do not make
(a statement deleted, a median taken as a mean, two arguments of one type swapped, one field
read for another). Each is one exact text replacement; its score is printed per kind.
``--tests-at REV`` runs them against the tests as they were at a git revision (the score
before a change to the tests).

The work happens in a copy of the project under a temporary folder (cosmic-ray mutates the
files in place), so the checkout is never touched, even by a run killed half-way.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "workflow/deploybench"
SEMANTIC_MUTANTS = REPO / "tools" / "mutants"
# the kinds of semantic mutant, each scored on its own
SEMANTIC_KINDS = (
    "statement-deletion",
    "median-mean",
    "swapped-arguments",
    "field-substitution",
    "condition",
)

# module -> (file, the fast tests that own it)
TARGETS = {
    "stats": ("stats.py", ["tests/test_stats.py", "tests/test_properties.py"]),
    "timing": ("timing.py", ["tests/test_timing.py", "tests/test_timing_clock.py"]),
    "parity": (
        "parity.py",
        ["tests/test_parity.py", "tests/test_parity_cases.py", "tests/test_properties.py"],
    ),
    "compare": (
        "stages/compare.py",
        [
            "tests/test_compare_rounds.py",
            "tests/test_stages.py::test_rounds_give_the_baseline_extra_bursts_take_turns_among"
            "_processes_and_survive_a_crash",
            "tests/test_stages.py::test_a_comparison_survives_a_crashing_worker_and_a_failed_compile",
        ],
    ),
    "decide": (
        "stages/decide.py",
        ["tests/test_decide.py", "tests/test_report.py", "tests/test_placement.py"],
    ),
    "collect": ("stages/collect.py", ["tests/test_collect.py"]),
    "report": ("stages/report.py", ["tests/test_report.py", "tests/test_placement.py"]),
    "plan": ("plan.py", ["tests/test_settings_and_plan.py"]),
}

# Replacements with no meaning for this code (bit operations, shifts, powers and modulo of
# latencies): they only multiply the mutants.
EXCLUDED_OPERATORS = [
    r"core/ReplaceBinaryOperator_.*_(BitOr|BitAnd|BitXor|LShift|RShift|Pow|Mod|FloorDiv)$",
    r"core/ReplaceBinaryOperator_(BitOr|BitAnd|BitXor|LShift|RShift|Pow|Mod|FloorDiv)_.*",
    r"core/ReplaceUnaryOperator_.*(Invert|UAdd).*",
]


def copy_project(into: Path) -> None:
    for name in ("workflow", "tests", "config", "pyproject.toml", "Snakefile"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, into / name)


def write_config(path: Path, module_file: str, tests: list[str], timeout: float) -> None:
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    quoted = " ".join(f"'{part}'" if " " in part else part for part in command)
    excluded = ", ".join(json.dumps(e) for e in EXCLUDED_OPERATORS)
    path.write_text(
        "[cosmic-ray]\n"
        f'module-path = "{PACKAGE}/{module_file}"\n'
        f"timeout = {timeout}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(quoted)}\n"
        "[cosmic-ray.distributor]\n"
        'name = "local"\n'
        "[cosmic-ray.filters.operators-filter]\n"
        f"exclude-operators = [{excluded}]\n"
    )


def run(command: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=True)


def mutate(name: str, workdir: Path, timeout: float) -> dict:
    module_file, tests = TARGETS[name]
    config, session = workdir / f"{name}.toml", workdir / f"{name}.sqlite"
    write_config(config, module_file, tests, timeout)
    env = dict(os.environ, PYTHONPATH=str(workdir / "workflow"))
    bin_dir = Path(sys.executable).parent
    run([str(bin_dir / "cosmic-ray"), "init", str(config), str(session)], workdir, env)
    run([str(bin_dir / "cr-filter-operators"), str(session), str(config)], workdir, env)
    run([str(bin_dir / "cr-filter-pragma"), str(session)], workdir, env)
    baseline = subprocess.run(
        [str(bin_dir / "cosmic-ray"), "baseline", str(config)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
    )
    if baseline.returncode != 0:
        raise SystemExit(f"{name}: the tests fail without any mutation:\n{baseline.stderr}")
    run([str(bin_dir / "cosmic-ray"), "exec", str(config), str(session)], workdir, env)
    dump = run([str(bin_dir / "cosmic-ray"), "dump", str(session)], workdir, env).stdout
    counts = {"killed": 0, "survived": 0, "incompetent": 0, "skipped": 0}
    survivors = []
    for line in dump.splitlines():
        item, result = json.loads(line)
        if result is None or result["worker_outcome"] == "skipped":
            counts["skipped"] += 1
            continue
        outcome = result["test_outcome"]
        counts[outcome] = counts.get(outcome, 0) + 1
        if outcome == "survived":
            mutation = item["mutations"][0]
            survivors.append(
                {
                    "operator": mutation["operator_name"],
                    "line": mutation["start_pos"][0],
                    "diff": result.get("diff") or "",
                }
            )
    judged = counts["killed"] + counts["survived"]
    counts["score"] = counts["killed"] / judged if judged else None
    return {"counts": counts, "survivors": survivors}


def semantic_mutants(name: str) -> list[dict]:
    """The module's hand-written mutants, each checked to apply to exactly one place."""
    path = SEMANTIC_MUTANTS / f"{name}.toml"
    if not path.exists():
        return []
    mutants = tomllib.loads(path.read_text())["mutant"]
    source = (REPO / PACKAGE / TARGETS[name][0]).read_text()
    for mutant in mutants:
        if mutant["kind"] not in SEMANTIC_KINDS:
            raise SystemExit(f"{path.name} {mutant['id']}: kind must be one of {SEMANTIC_KINDS}")
        found = source.count(mutant["find"])
        if found != 1:
            raise SystemExit(
                f"{path.name} {mutant['id']}: its `find` text occurs {found} times in "
                f"{TARGETS[name][0]}; it must occur exactly once (quote more of the line)"
            )
    return mutants


def run_tests(tests: list[str], workdir: Path, timeout: float) -> bool:
    """Whether the tests pass in the copy (a timeout counts as a failure: the mutant hangs)."""
    present = [t for t in tests if (workdir / t.split("::")[0]).exists()]
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *present]
    env = dict(os.environ, PYTHONPATH=str(workdir / "workflow"))
    try:
        result = subprocess.run(
            command, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def mutate_semantic(name: str, workdir: Path, timeout: float, only: set[str]) -> dict:
    module_file, tests = TARGETS[name]
    target = workdir / PACKAGE / module_file
    original = target.read_text()
    if not run_tests(tests, workdir, timeout):
        raise SystemExit(f"{name}: the tests fail without any mutation")
    outcomes = []
    try:
        for mutant in semantic_mutants(name):
            if only and mutant["id"] not in only:
                continue
            target.write_text(original.replace(mutant["find"], mutant["replace"], 1))
            killed = not run_tests(tests, workdir, timeout)
            outcomes.append({**mutant, "killed": killed})
            print(f"  {name} {mutant['id']}: {'killed' if killed else 'SURVIVED'}", flush=True)
    finally:
        target.write_text(original)
    return {"mutants": outcomes}


def print_semantic(results: dict) -> None:
    for name, result in results.items():
        killed = Counter(m["kind"] for m in result["mutants"] if m["killed"])
        total = Counter(m["kind"] for m in result["mutants"])
        per_kind = ", ".join(f"{kind} {killed[kind]}/{total[kind]}" for kind in sorted(total))
        score = sum(killed.values()) / sum(total.values()) if total else None
        shown = "-" if score is None else f"{score:.0%}"
        counted = f"{sum(killed.values())}/{sum(total.values())}"
        print(f"{name:>8}: {counted} killed ({shown}); {per_kind}")
        for mutant in result["mutants"]:
            if not mutant["killed"]:
                print(f"    survived {mutant['id']} ({mutant['kind']}): {mutant['why']}")


def tests_at(revision: str, workdir: Path) -> None:
    """Replace the copy's tests with the tests as they were at ``revision``."""
    shutil.rmtree(workdir / "tests")
    archive = subprocess.run(
        ["git", "archive", revision, "tests"], cwd=REPO, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(workdir)], input=archive.stdout, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", choices=sorted(TARGETS))
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per mutant's tests")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--keep", help="work in this folder and keep it (default: a temporary one)")
    parser.add_argument("--semantic", action="store_true", help="the hand-written mutants")
    parser.add_argument("--mutant", action="append", default=[], help="only this mutant (by id)")
    parser.add_argument("--tests-at", help="with --semantic: the tests of this git revision")
    args = parser.parse_args()
    workdir = Path(args.keep or tempfile.mkdtemp(prefix="mutation-"))
    workdir.mkdir(parents=True, exist_ok=True)
    copy_project(workdir)
    if args.semantic:
        if args.tests_at:
            tests_at(args.tests_at, workdir)
        modules = args.module or [n for n in TARGETS if semantic_mutants(n)]
        results = {}
        try:
            for name in modules:
                results[name] = mutate_semantic(name, workdir, args.timeout, set(args.mutant))
        finally:
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
        print_semantic(results)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
        return
    results = {}
    try:
        for name in args.module or list(TARGETS):
            results[name] = mutate(name, workdir, args.timeout)
            counts = results[name]["counts"]
            score = "-" if counts["score"] is None else f"{counts['score']:.0%}"
            print(
                f"{name:>8}: {counts['killed']:4d} killed, {counts['survived']:3d} survived, "
                f"{counts['incompetent']:3d} incompetent, {counts['skipped']:3d} filtered: "
                f"score {score}",
                flush=True,
            )
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    for name, result in results.items():
        for survivor in result["survivors"]:
            print(f"\n--- {name} line {survivor['line']}: {survivor['operator']}")
            print("\n".join(survivor["diff"].splitlines()[2:]))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
