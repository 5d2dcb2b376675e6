"""`gpu: true` (a login node planning for GPU nodes) through the real Snakemake: the GPU jobs
are judged as in the GPU environment, whose [gpu] extra must hold what they import. The plan
itself is tested in test_settings_and_plan.py. Issue 19, item 10."""

from __future__ import annotations

import re
import tomllib

from deploybench.backends import get_backend
from helpers import REPO
from test_workflow import planned_jobs, snakemake

GPU_BACKENDS = ("pytorch_cuda", "onnxruntime_cuda", "tensorrt")


def test_the_cluster_dry_run_plans_tensorrt_and_onnxruntime_cuda(tmp_path):
    # this host has neither TensorRT nor onnxruntime-gpu (they are not in [cpu,dev])
    backends = "backends=[pytorch,pytorch_cuda,onnxruntime_cuda,tensorrt]"
    jobs = planned_jobs(
        snakemake(tmp_path, "report", "-n", "--config", "gpu=True", backends).stdout
    )
    compiled = [j["output"].split("/") for j in jobs if j["rule"] == "compile_model"]
    for name in ("onnxruntime_cuda", "tensorrt"):
        # tiny.yaml asks for fp32, bf16 and int8; neither offers bf16
        assert {parts[4] for parts in compiled if parts[3] == name} == {"fp32", "int8"}, name
    timed = [j for j in jobs if j["rule"] == "time_inference" and "/tensorrt/" in j["output"]]
    assert timed and all("gpu=1" in j["resources"] for j in timed)


def _import_name(requirement: str) -> str:
    """`onnxruntime-gpu==1.31.1` → onnxruntime, `tensorrt-cu13>=10.13` → tensorrt."""
    distribution = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower()
    return re.sub(r"-(gpu|cu\d+)$", "", distribution).replace("-", "_")


def test_the_gpu_extra_installs_what_the_plan_assumes_there():
    # guards the premise of planning with gpu: true (plan._in_the_gpu_environment)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    provided = {_import_name(r) for r in project["optional-dependencies"]["gpu"]}
    assert (REPO / "envs" / "gpu.yaml").is_file()
    for name in GPU_BACKENDS:
        backend = get_backend(name)
        needed = {*backend.packages, *(p for ps in backend.precision_packages.values() for p in ps)}
        assert backend.extra == "gpu" and needed <= provided, (name, needed - provided)
