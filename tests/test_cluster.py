"""The workflow through a real SLURM (tests/slurm_cluster.py: one node on localhost, a cpu and a
gpu partition, a fake GPU gres): every job is a SLURM job in the partition it belongs to, GPU
jobs get --gpus, measuring jobs get their node alone, the report is produced; and what a user
sees when SLURM is missing, a partition does not exist, or a GPU job has nowhere to go."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import slurm_cluster
import yaml
from toy_backend import FAKE_GPU_ENVIRONMENT

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[1]
MEASURING_RULES = ("time_inference", "compare_configs")
SLURM_COMMANDS = {"sbatch", "squeue", "sinfo", "scontrol", "srun", "sacct", "scancel", "salloc"}
EXPERIMENT = {
    "models": {
        "tiny": {"source": "torchvision", "architecture": "mobilenet_v3_small", "input_size": 64}
    },
    "backends": ["pytorch", "onnxruntime", "toy_cuda"],
    "precisions": ["fp32"],
    "shapes": ["dynamic"],
    "batch_sizes": [1],
    # the submit host has no GPU; the cluster's gpu partition has one
    "gpu": True,
    "inputs": {"calibration_size": 8},
    "timing": {
        "warmup_iterations": 2,
        "warmup_seconds": 0.05,
        "min_iterations": 5,
        "min_seconds": 0.1,
        "max_seconds": 5,
        "retries_if_noisy": 0,
    },
    "comparison": {"rounds": 3, "warmup_seconds": 0.1, "burst_seconds": 0.05, "gap_seconds": 0.05},
}


# Set by .ci/run: CI runs as root on Debian, where the cluster tests can always run; a skip
# there would hide them, so only an unreachable package mirror may skip (and says so).
EXPECTED = os.environ.get("DEPLOYBENCH_EXPECT_CLUSTER") == "1"


def not_running(reason: str, unreachable: bool = False):
    if EXPECTED and not unreachable:
        pytest.fail(f"the cluster tests are expected to run here (CI) but cannot: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def cluster():
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        not_running("snakemake-executor-plugin-slurm not installed (pip install -e '.[slurm]')")
    try:
        running = slurm_cluster.start()
    except slurm_cluster.Unavailable as exc:
        not_running(str(exc), unreachable=isinstance(exc, slurm_cluster.Unreachable))
    yield running
    running.stop()


def experiment(folder: Path, **changes) -> Path:
    config = {**EXPERIMENT, **changes}
    path = folder / "experiment.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def through_slurm(workdir: Path, *extra: str, env=None, timeout: float = 900):
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "report",
        "--profile",
        str(REPO / "profiles" / "slurm"),
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(experiment(workdir)),
        # this one-node cluster answers at once: no need for the plugin's 40 s first wait
        "--slurm-init-seconds-before-status-checks",
        "1",
        *extra,
    ]
    environment = {
        **os.environ,
        "DEPLOYBENCH_BACKENDS": FAKE_GPU_ENVIRONMENT,
        "PYTHONPATH": str(REPO / "tests"),
        **(env or {}),
    }
    start = time.monotonic()
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=workdir, timeout=timeout, env=environment
    )
    return result, time.monotonic() - start


def jobs_of(workdir: Path) -> list[dict[str, str]]:
    return [job for job in slurm_cluster.jobs() if job.get("WorkDir") == str(workdir)]


def rule_of(job: dict[str, str]) -> str:
    comment = job["Comment"].removeprefix("rule_")
    return comment.split("_wildcards_")[0]


@pytest.fixture(scope="module")
def finished(cluster, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("slurm-run")
    result, seconds = through_slurm(workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, result, seconds


def test_every_job_ran_as_a_slurm_job_in_its_partition(finished):
    workdir, result, _ = finished
    jobs = jobs_of(workdir)
    submitted = result.stderr.count("has been submitted with SLURM jobid")
    assert jobs and len(jobs) == submitted
    assert all(job["JobState"] == "COMPLETED" for job in jobs), [j["JobState"] for j in jobs]
    for job in jobs:
        on_gpu = "toy_cuda" in job["Comment"] or "_cuda_" in job["Comment"]
        assert job["Partition"] == ("gpu" if on_gpu else "cpu"), job["Comment"]
        assert ("gres:gpu:1" in job.get("TresPerJob", "")) is on_gpu, job["Comment"]
        exclusive = rule_of(job) in MEASURING_RULES
        assert job["OverSubscribe"] == ("NO" if exclusive else "OK"), job["Comment"]
    rules = {rule_of(job) for job in jobs}
    assert {"compile_model", "time_inference", "compare_configs", "render_report"} <= rules
    assert (workdir / "reports" / "report.html").is_file()


def test_every_timing_record_says_where_and_how_it_ran(finished):
    workdir, _, _ = finished
    timings = sorted((workdir / "results" / "timings").rglob("*.json"))
    assert len(timings) == 3
    for path in timings:
        record = json.loads(path.read_text())
        assert record["status"] == "ok", (record["reason"], record)
        placed = record["allocation"]
        assert placed["scheduler"] == "slurm" and placed["exclusive"] is True
        assert placed["partition"] == ("gpu" if "/toy_cuda/" in str(path) else "cpu")
        assert record["exclusive"] is True and record["hardware_id"]
    report = (workdir / "reports" / "report.html").read_text()
    assert "Hardware the measurements ran on" in report and "exclusive node" in report


def test_a_rerun_with_nothing_changed_submits_nothing(finished):
    workdir, _, _ = finished
    before = len(jobs_of(workdir))
    result, _ = through_slurm(workdir)
    assert result.returncode == 0 and "Nothing to be done" in result.stdout + result.stderr
    assert len(jobs_of(workdir)) == before


def test_a_gpu_partition_that_does_not_exist_fails_its_jobs_and_the_cpu_jobs_complete(
    cluster, tmp_path
):
    result, _ = through_slurm(tmp_path, "--config", "partitions={gpu: nosuch}")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "invalid partition" in output.lower() or "nosuch" in output
    # every CPU configuration still got timed; the report needs the GPU ones, so it is not made
    timings = {p.parent.parent.parent.name for p in (tmp_path / "results").rglob("b1.json")}
    assert {"pytorch", "onnxruntime"} <= timings and "toy_cuda" not in timings


def test_without_sbatch_the_run_stops_with_the_reason_instead_of_hanging(cluster, tmp_path):
    # a PATH with everything this machine has but SLURM's commands
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in Path("/usr/bin").iterdir():
        if tool.name not in SLURM_COMMANDS and not (bare / tool.name).exists():
            os.symlink(tool, bare / tool.name)
    result, seconds = through_slurm(tmp_path, env={"PATH": str(bare)}, timeout=300)
    assert result.returncode != 0
    assert "SLURM's sbatch is not on PATH" in result.stdout + result.stderr
    assert seconds < 60 and not (tmp_path / "results").exists()


def test_an_unreachable_controller_stops_the_run_before_any_job(cluster, tmp_path):
    elsewhere = tmp_path / "slurm.conf"
    elsewhere.write_text((slurm_cluster.CONF_DIR / "slurm.conf").read_text() + "SlurmctldPort=9\n")
    result, seconds = through_slurm(tmp_path, env={"SLURM_CONF": str(elsewhere)}, timeout=300)
    assert result.returncode != 0
    assert "slurmctld is not reachable" in result.stdout + result.stderr
    assert seconds < 120 and not (tmp_path / "results").exists()


def test_a_skip_fails_where_the_cluster_tests_are_expected_to_run(monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "EXPECTED", True)
    with pytest.raises(pytest.fail.Exception, match="expected to run here .*needs root"):
        not_running("SLURM is not installed and cannot be (needs root and apt-get)")
    with pytest.raises(pytest.skip.Exception, match="timed out"):
        not_running("apt-get install timed out after 300 s", unreachable=True)
    monkeypatch.setattr(sys.modules[__name__], "EXPECTED", False)
    with pytest.raises(pytest.skip.Exception, match="needs root"):
        not_running("SLURM is not installed and cannot be (needs root and apt-get)")
