"""The outputs of the configurations that failed, to rerun once the cause is fixed.

A failure is recorded as a result (so that the other configurations and the report go on), and
Snakemake sees a finished job: it does not retry it by itself. ``python -m deploybench.retry``
prints, for each failed configuration, the output of the first job that failed (an export, a
compile, a timing, a parity check or a side-by-side comparison), ready for ``--forcerun``:

    snakemake report --forcerun $(python -m deploybench.retry)

Forcing that job reruns what depends on it; nothing else reruns. A configuration skipped because
an earlier job of it failed is covered by that job; one skipped by the plan is not a failure.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

FAILED = "failed"


def _status(record: Path) -> str | None:
    try:
        return json.loads(record.read_text()).get("status")
    except (OSError, ValueError, AttributeError):
        return FAILED  # a record that cannot be read is redone as well


def failed_outputs(results: str | Path = "results") -> list[str]:
    """The outputs to force, relative to the working directory of the run, in a stable order."""
    results = Path(results)
    targets: list[str] = []
    failed_graphs = set()
    for record in sorted(results.glob("onnx/*/export.json")):
        if _status(record) == FAILED:
            failed_graphs.add(record.parent.name)
            targets.append(str(record.parent / "exported.onnx"))
    failed_compiles = set()
    for record in sorted(results.glob("compiled/*/*/*/*/artifact.json")):
        model = record.parent.relative_to(results / "compiled").parts[0]
        if _status(record) == FAILED and model not in failed_graphs:
            failed_compiles.add(record.parent.relative_to(results / "compiled"))
            targets.append(str(record.parent))
    for stage, depth in (("timings", 5), ("parity", 4)):
        for record in sorted(results.glob(f"{stage}/{'/'.join('*' * depth)}.json")):
            config = record.relative_to(results / stage).with_suffix("")
            if stage == "timings":
                config = config.parent  # .../{shape}/b{batch}
            if _status(record) == FAILED and config not in failed_compiles:
                targets.append(str(record))
    for record in sorted(results.glob("comparisons/*/*/*.json")):
        try:
            configs = json.loads(record.read_text()).get("configs", [])
        except (OSError, ValueError):
            configs = [{"status": FAILED}]
        if any(c.get("status") == FAILED for c in configs):
            targets.append(str(record))
    return targets


def main() -> None:
    results = sys.argv[1] if len(sys.argv) > 1 else "results"
    print(" ".join(failed_outputs(results)))


if __name__ == "__main__":
    main()
