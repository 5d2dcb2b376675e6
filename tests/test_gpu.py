import os
import stat

import pytest
from deploybench.backends.base import Backend
from deploybench.backends.registry import ENVIRONMENT_VARIABLE
from deploybench.gpu import gpu_present, nvidia_smi_sees_gpu
from deploybench.hardware import HostFacts
from deploybench.plan import NO_GPU_REASON, plan
from deploybench.settings import Settings
from helpers import timing_settings


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
    settings = Settings(
        models={"m": None},
        backends=("fake_cuda",),
        precisions=("fp32",),
        shapes=("dynamic",),
        batch_sizes=(1,),
        gpu="auto",
        timing=timing_settings(),
    )
    without = plan(settings, HostFacts(cpu_flags=frozenset(), has_gpu=False))
    assert {(r.planned, r.reason) for r in without} == {(False, NO_GPU_REASON)}
    with_gpu = plan(settings, HostFacts(cpu_flags=frozenset(), has_gpu=True))
    assert {r.planned for r in with_gpu} == {True}
