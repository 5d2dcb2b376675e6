"""Whether this host can build GPU targets (config ``gpu: auto | true | false``)."""

from __future__ import annotations

import shutil
import subprocess


def nvidia_smi_sees_gpu() -> bool:
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        result = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and bool(result.stdout.strip())


def gpu_present(setting: str | bool) -> bool:
    """``auto`` probes this host; a cluster profile sets ``true`` (its login node has no GPU)."""
    if setting is True or setting == "true":
        return True
    if setting is False or setting == "false":
        return False
    return nvidia_smi_sees_gpu()
