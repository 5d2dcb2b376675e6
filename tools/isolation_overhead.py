"""Does supervision change what is measured? Time one ONNX Runtime artifact in-process and in a
supervised child (as every timing job now does), in alternating rounds, and print the medians,
their ratio and what the child costs per job.

    python tools/isolation_overhead.py [--rounds 8] [--architecture resnet18] [--threads 2]

Prints numbers; asserts nothing. Run it on a quiet machine: nothing else timing meanwhile.
"""

from __future__ import annotations

import argparse
import functools
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

import numpy as np  # noqa: E402
from deploybench.backends import get_backend  # noqa: E402
from deploybench.isolation import Limits, run_isolated  # noqa: E402
from deploybench.models import load_model  # noqa: E402
from deploybench.specs import ConfigKey, ModelSpec, TimingSettings  # noqa: E402
from deploybench.stages.timing import _measure_configuration  # noqa: E402
from deploybench.tasks import fetch_deployable, get_task  # noqa: E402


def schema_timing() -> TimingSettings:
    """The default timing policy, as the schema gives it (no retry: rounds are compared)."""
    from snakemake.utils import validate

    config = {"models": {"m": {"source": "efficientnet_lite0"}}}
    validate(config, str(Path(__file__).resolve().parents[1] / "config" / "schema.yaml"))
    return TimingSettings(**{**config["timing"], "retries_if_noisy": 0})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--architecture", default="resnet18")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="isolation-overhead-"))
    spec = ModelSpec(
        name="m",
        source="torchvision",
        architecture=args.architecture,
        weights="random",
        checkpoint=None,
        seed=0,
        input_size=224,
        resize=None,
        mean=None,
        std=None,
        task="classification",
        inputs=None,
        axes={},
        recalibrate_batchnorm=False,
        module=None,
        builder_options={},
    )
    task = get_task(spec.task)
    fetch_deployable(spec, folder / "model")
    model, _ = load_model(folder / "model")
    task.export_onnx(model, spec, folder / "model.onnx", 1, "torchscript", 17)
    key = ConfigKey("m", "onnxruntime", "fp32", "static_b1")
    backend = get_backend("onnxruntime")("fp32", args.threads)
    backend.compile(folder / "model.onnx", folder / "artifact")
    data = {"input": np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)}
    work = functools.partial(
        _measure_configuration,
        key,
        backend,
        folder / "artifact",
        data,
        schema_timing(),
        None,
        {"batch": 1, "threads": args.threads},
    )
    modes = {
        "in-process": work,
        "supervised": functools.partial(run_isolated, work, Limits(), str(folder / "child.log")),
    }
    medians: dict[str, list[float]] = {mode: [] for mode in modes}
    walls: dict[str, list[float]] = {mode: [] for mode in modes}
    print(f"{'round':>5} {'mode':>11} {'median ms':>10} {'job wall s':>10}")
    for round_number in range(args.rounds):
        order = list(modes)
        random.Random(round_number).shuffle(order)
        for mode in order:
            start = time.perf_counter()
            record = modes[mode]()
            walls[mode].append(time.perf_counter() - start)
            medians[mode].append(record.stats.median_ms)
            median, wall = medians[mode][-1], walls[mode][-1]
            print(f"{round_number:>5} {mode:>11} {median:>10.3f} {wall:>10.2f}")
    ratios = [s / i for s, i in zip(medians["supervised"], medians["in-process"], strict=True)]
    costs = [s - i for s, i in zip(walls["supervised"], walls["in-process"], strict=True)]
    print()
    for mode in modes:
        values = medians[mode]
        print(
            f"{mode:>11}: median of medians {statistics.median(values):.3f} ms "
            f"(range {min(values):.3f}-{max(values):.3f})"
        )
    print(
        f"supervised / in-process, per round: median {statistics.median(ratios):.3f} "
        f"(range {min(ratios):.3f}-{max(ratios):.3f})"
    )
    print(
        f"cost of the child per job (wall, supervised - in-process): median "
        f"{statistics.median(costs):.2f} s (range {min(costs):.2f}-{max(costs):.2f})"
    )


if __name__ == "__main__":
    main()
