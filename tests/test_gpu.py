import os
import stat

import pytest
from deploybench.backends.base import Backend
from deploybench.backends.registry import ENVIRONMENT_VARIABLE
from deploybench.gpu import (
    compute_capability,
    gpu_facts,
    gpu_present,
    native_cuda_precision_support,
    nvidia_smi_sees_gpu,
    parse_gpu_facts,
)
from deploybench.hardware import HostFacts
from deploybench.plan import NO_GPU_REASON, plan
from helpers import settings


def fake_nvidia_smi(folder, output: str, code: int):
    script = folder / "nvidia-smi"
    script.write_text(f"#!/bin/sh\necho '{output}'\nexit {code}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return folder


@pytest.mark.parametrize(
    ("output", "code", "expected"),
    [("NVIDIA H200", 0, True), ("", 0, False), ("NVIDIA-SMI has failed", 9, False)],
)
def test_auto_probes_nvidia_smi_both_ways(tmp_path, monkeypatch, output, code, expected):
    monkeypatch.setenv("PATH", f"{fake_nvidia_smi(tmp_path, output, code)}{os.pathsep}/usr/bin")
    assert nvidia_smi_sees_gpu() is expected
    assert gpu_present("auto") is expected


def test_without_nvidia_smi_there_is_no_gpu(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert gpu_present("auto") is False
    # a cluster profile says true: its login node has no GPU, its GPU partition does
    assert gpu_present(True) is True
    assert gpu_present(False) is False


class FakeCudaBackend(Backend):
    name = "fake_cuda"
    device = "cuda"
    precisions = ("fp32",)

    def _compile(self, *args):
        raise NotImplementedError

    def _load(self, *args):
        raise NotImplementedError


def test_cuda_backends_are_skipped_with_the_reason_on_a_host_without_gpu(monkeypatch):
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, f"fake_cuda={__name__}:FakeCudaBackend")
    tree = settings(
        backends=("fake_cuda",),
        precisions=("fp32",),
        shapes=("dynamic",),
        batch_sizes=(1,),
    )
    without = plan(tree, HostFacts(cpu_flags=frozenset(), has_gpu=False))
    assert {(r.planned, r.reason) for r in without} == {(False, NO_GPU_REASON)}
    with_gpu = plan(tree, HostFacts(cpu_flags=frozenset(), has_gpu=True))
    assert {r.planned for r in with_gpu} == {True}


H200_LINE = "NVIDIA H200, 580.95.05, 9.0, 143771, 1980, 1980, 700.00"


def test_the_gpus_facts_come_from_one_nvidia_smi_line():
    facts = parse_gpu_facts(H200_LINE)
    assert facts["name"] == "NVIDIA H200" and facts["driver"] == "580.95.05"
    assert compute_capability(facts) == (9, 0)
    assert facts["power_limit_w"] == "700.00" and facts["max_sm_clock_mhz"] == "1980"
    with pytest.raises(ValueError, match="expected 7"):
        parse_gpu_facts("NVIDIA H200, 580.95.05")
    assert compute_capability({"compute_capability": "[N/A]"}) is None
    assert compute_capability(None) is None


def test_gpu_facts_read_nvidia_smi_and_say_none_without_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{fake_nvidia_smi(tmp_path, H200_LINE, 0)}{os.pathsep}/usr/bin")
    assert gpu_facts() == parse_gpu_facts(H200_LINE)
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert gpu_facts() is None


@pytest.mark.parametrize(
    ("precision", "capability", "native"),
    [
        ("fp16", (5, 2), False),
        ("fp16", (5, 3), True),
        ("int8", (6, 0), False),
        ("int8", (6, 1), True),
        ("bf16", (7, 5), False),
        ("bf16", (8, 0), True),
        ("fp32", (3, 0), True),
        ("bf16", None, True),  # a submit host that cannot see the GPU: the job finds out
    ],
)
def test_native_gpu_precisions_follow_the_compute_capability(precision, capability, native):
    ok, reason = native_cuda_precision_support(precision, capability)
    assert ok is native
    assert ("too old" in reason) is not native
