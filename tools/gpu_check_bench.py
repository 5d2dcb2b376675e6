"""torch.utils.benchmark on the model the workflow timed: a third clock for the device check
(tools/gpu_check.sh), beside the workflow's CUDA-event and host-clock medians.

The model is the workflow's own checkpoint, converted once to each precision as ``pytorch_cuda``
does, TF32 off. ``Timer.blocked_autorange`` synchronises the GPU only around blocks of runs, so
its median is the per-run wall time of back-to-back launches: near the device time when the
GPU is the bottleneck, above it when launching is.

    python tools/gpu_check_bench.py results/models/resnet18 torch_benchmark.json
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path, help="the workflow's results/models/<model>")
    parser.add_argument("out", type=Path, help="where the JSON goes")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--precisions", nargs="+", choices=sorted(DTYPES), default=list(DTYPES))
    parser.add_argument("--min-run-time", type=float, default=1.0, help="seconds per case")
    args = parser.parse_args()

    import torch
    from deploybench.models import load_model
    from torch.utils import benchmark

    if not torch.cuda.is_available():
        sys.exit("gpu_check_bench: torch sees no CUDA device: run this on the GPU host")
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    model, spec = load_model(args.model_dir)
    generator = torch.Generator().manual_seed(0)
    rows = []
    for precision in args.precisions:
        dtype = getattr(torch, DTYPES[precision])
        net = copy.deepcopy(model).to("cuda", dtype).eval()
        for batch in args.batches:
            shape = (batch, 3, spec.input_size, spec.input_size)
            x = torch.randn(shape, generator=generator).to("cuda", dtype)
            timer = benchmark.Timer(
                stmt="net(x)",
                globals={"net": net, "x": x},
                label=spec.name,
                sub_label=precision,
                description=f"b{batch}",
                num_threads=torch.get_num_threads(),
            )
            # inference mode is thread-local state: it holds inside the timer's loop too
            with torch.inference_mode():
                measurement = timer.blocked_autorange(min_run_time=args.min_run_time)
            print(measurement, flush=True)
            rows.append(
                {
                    "precision": precision,
                    "batch": batch,
                    "median_ms": measurement.median * 1e3,
                    "iqr_ms": measurement.iqr * 1e3,
                    "blocks": len(measurement.times),
                    "runs_per_block": measurement.number_per_run,
                }
            )
        del net
        torch.cuda.empty_cache()
    args.out.write_text(
        json.dumps(
            {
                "method": "torch.utils.benchmark.Timer.blocked_autorange, median of blocks",
                "model": spec.name,
                "device": torch.cuda.get_device_name(),
                "torch": torch.__version__,
                "cuda": torch.version.cuda,
                "rows": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
