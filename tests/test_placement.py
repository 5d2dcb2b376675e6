"""Where a measurement ran: the hardware identity (same kind of machine, whatever its name),
the allocation (local or a SLURM job, exclusive or shared), and how the report groups and flags
results by them."""

from __future__ import annotations

import os
import stat

import pandas as pd
from deploybench import placement
from deploybench.records import summary_columns
from deploybench.stages.decide import hardware_groups, hardware_mismatches

ZEN = {
    "host": "node-a",
    "cpu_model": "AMD EPYC 9R14",
    "cpu_flags": ["avx2", "avx512f"],
    "cores": 2,
    "gpu": None,
    "gpu_driver": None,
}


def test_the_hardware_identity_ignores_the_host_name_but_nothing_else():
    same_kind = {**ZEN, "host": "node-b"}
    assert placement.hardware_id(same_kind) == placement.hardware_id(ZEN)
    for key, other in [
        ("cpu_model", "Intel Xeon 8488C"),
        ("cpu_flags", ["avx2"]),
        ("cores", 4),
        ("gpu", "NVIDIA H200"),
        ("gpu_driver", "580.95.05"),
    ]:
        assert placement.hardware_id({**ZEN, key: other}) != placement.hardware_id(ZEN), key


def test_the_label_names_the_gpu_only_where_there_is_one():
    assert placement.hardware_label(ZEN) == "AMD EPYC 9R14 · 2 cores"
    with_gpu = {**ZEN, "gpu": "NVIDIA H200", "gpu_driver": "580.95.05"}
    assert placement.hardware_label(with_gpu).endswith("· NVIDIA H200 (driver 580.95.05)")


def fake_scontrol(folder, oversubscribe: str):
    script = folder / "scontrol"
    script.write_text(
        f"#!/bin/sh\necho 'JobId=$4 JobName=x Partition=cpu OverSubscribe={oversubscribe} x=y'\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return folder


def test_a_slurm_job_knows_whether_its_node_was_its_own(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{fake_scontrol(tmp_path, 'NO')}{os.pathsep}/usr/bin:/bin")
    env = {"SLURM_JOB_ID": "42", "SLURM_JOB_PARTITION": "gpu", "SLURMD_NODENAME": "gpu-7"}
    assert placement.allocation(env) == {
        "scheduler": "slurm",
        "job_id": "42",
        "partition": "gpu",
        "node": "gpu-7",
        "exclusive": True,
    }
    fake_scontrol(tmp_path, "OK")
    assert placement.allocation(env)["exclusive"] is False


def test_without_scontrol_exclusivity_is_unknown_not_assumed(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert placement.slurm_exclusive("42") is None


def test_outside_slurm_the_allocation_is_local():
    assert placement.allocation({}) == {"scheduler": "local", "exclusive": None}


def test_where_fills_every_placement_field_of_a_record():
    placed = placement.where(with_gpu=False)
    assert placed["hardware_id"] == placement.hardware_id(placed["machine"])
    assert placed["machine"]["gpu"] is None
    assert set(placed) == {"hardware_id", "hardware", "exclusive", "machine", "allocation"}


def rows(*specs):
    frame = []
    for backend, hw, cmp_hw, exclusive in specs:
        frame.append(
            {
                "model": "m",
                "backend": backend,
                "precision": "fp32",
                "shape": "dynamic",
                "batch": 1,
                "status": "ok",
                "hardware_id": hw and hw[:4],
                "hardware": hw,
                "exclusive": exclusive,
                "cmp_hardware_id": cmp_hw and cmp_hw[:4],
                "cmp_hardware": cmp_hw,
                "cmp_exclusive": exclusive,
            }
        )
    return pd.DataFrame(frame).reindex(columns=summary_columns())


def test_the_report_groups_by_hardware_and_counts_what_ran_where():
    summary = rows(
        ("pytorch", "cpuA", "cpuA", True),
        ("onnxruntime", "cpuA", "cpuA", True),
        ("pytorch_cuda", "gpuH", "gpuH", False),
        ("openvino", None, None, None),  # skipped: ran nowhere
    )
    groups = {g["hardware"]: g for g in hardware_groups(summary)}
    assert set(groups) == {"cpuA", "gpuH"}
    assert (groups["cpuA"]["timings"], groups["cpuA"]["comparisons"]) == (2, 2)
    assert groups["cpuA"]["allocations"] == "exclusive node"
    assert groups["gpuH"]["allocations"] == "shared node"
    local = hardware_groups(rows(("pytorch", "cpuA", None, None)))
    assert local[0]["allocations"] == "local" and local[0]["comparisons"] == 0


def test_a_configuration_timed_and_compared_on_different_hardware_is_flagged():
    summary = rows(
        ("pytorch", "cpuA", "cpuA", True),
        ("onnxruntime", "cpuB", "cpuA", True),
        ("openvino", "cpuA", "cpuB", True),
    )
    assert hardware_mismatches(summary) == [
        "m onnxruntime fp32 (dynamic) batch 1: timed on cpuB, compared on cpuA",
        "m openvino fp32 (dynamic) batch 1: timed on cpuA, compared on cpuB",
    ]


def test_allocations_read_from_a_csv_keep_their_meaning(tmp_path):
    summary = rows(
        ("pytorch", "cpuA", "cpuA", True),
        ("onnxruntime", "cpuB", "cpuB", False),
        ("openvino", "cpuC", None, None),
    )
    summary.to_csv(tmp_path / "summary.csv", index=False)
    groups = {g["hardware"]: g for g in hardware_groups(pd.read_csv(tmp_path / "summary.csv"))}
    assert groups["cpuA"]["allocations"] == "exclusive node"
    assert groups["cpuB"]["allocations"] == "shared node"
    assert groups["cpuC"]["allocations"] == "local"


def fake_tool(folder, name: str, output: str, code: int = 0):
    script = folder / name
    script.write_text(f"#!/bin/sh\necho '{output}'\nexit {code}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_slurm_is_usable_only_with_sbatch_and_a_controller_that_answers(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "sbatch is not on PATH" in placement.slurm_unreachable()
    fake_tool(tmp_path, "sbatch", "")
    fake_tool(tmp_path, "scontrol", "Slurmctld(primary) at head is DOWN", code=1)
    assert placement.slurm_unreachable().startswith("slurmctld is not reachable (Slurmctld")
    fake_tool(tmp_path, "scontrol", "Slurmctld(primary) at head is UP")
    assert placement.slurm_unreachable() is None
