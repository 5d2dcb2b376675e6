"""Where a measurement ran: the hardware (a fingerprint, and an identity that groups results
measured on the same kind of hardware) and the allocation (this machine, or a SLURM job on an
exclusive or a shared node).

Speedups are only meaningful against a baseline measured on the same hardware, so every timing
and comparison record carries both, and the report groups and flags by them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
from typing import Any

from . import hardware
from .gpu import gpu_facts

# What makes two machines the same hardware for a latency: not the host name.
IDENTITY_KEYS = ("cpu_model", "cpu_flags", "cores", "gpu", "gpu_driver")


def fingerprint(with_gpu: bool) -> dict[str, Any]:
    """The host, its CPU (model, the flags that change kernels, cores this job may use) and,
    for a GPU job, the GPU and its driver."""
    described = hardware.describe()
    facts = gpu_facts() if with_gpu else None
    return {
        "host": socket.gethostname(),
        "cpu_model": described["cpu_model"],
        "cpu_flags": described["cpu_flags"],
        "cores": described["cores"],
        "gpu": facts["name"] if facts else None,
        "gpu_driver": facts["driver"] if facts else None,
    }


def hardware_id(machine: dict[str, Any]) -> str:
    identity = repr([machine.get(key) for key in IDENTITY_KEYS]).encode()
    return hashlib.sha256(identity).hexdigest()[:10]


def hardware_label(machine: dict[str, Any]) -> str:
    label = f"{machine.get('cpu_model')} · {machine.get('cores')} cores"
    if machine.get("gpu"):
        label += f" · {machine['gpu']} (driver {machine.get('gpu_driver')})"
    return label


def slurm_exclusive(job_id: str) -> bool | None:
    """Whether SLURM gave this job its node alone (``--exclusive``: OverSubscribe=NO)."""
    try:
        result = subprocess.run(
            ["scontrol", "show", "job", "--oneliner", job_id],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    for token in result.stdout.split():
        key, _, value = token.partition("=")
        if key == "OverSubscribe":
            return value == "NO"
    return None


def allocation(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """This job's allocation: a SLURM job (its id, partition, node, whether exclusive) or local
    (exclusive unknown: Snakemake serialises timings, the rest of the machine is the user's)."""
    env = os.environ if environ is None else environ
    job_id = env.get("SLURM_JOB_ID")
    if not job_id:
        return {"scheduler": "local", "exclusive": None}
    return {
        "scheduler": "slurm",
        "job_id": job_id,
        "partition": env.get("SLURM_JOB_PARTITION"),
        "node": env.get("SLURMD_NODENAME"),
        "exclusive": slurm_exclusive(job_id),
    }


def where(with_gpu: bool) -> dict[str, Any]:
    """The placement fields of a timing or comparison record."""
    machine = fingerprint(with_gpu)
    placed = allocation()
    return {
        "hardware_id": hardware_id(machine),
        "hardware": hardware_label(machine),
        "exclusive": placed["exclusive"],
        "machine": machine,
        "allocation": placed,
    }


def slurm_unreachable() -> str | None:
    """Why SLURM cannot take jobs from this host (checked before the first submission, so a
    missing command or a dead controller is one clear line, not a hang), or None."""
    if shutil.which("sbatch") is None:
        return (
            "SLURM's sbatch is not on PATH: submit from a cluster login node, or drop "
            "--profile profiles/slurm to run on this machine"
        )
    try:
        result = subprocess.run(
            ["scontrol", "ping"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"scontrol ping failed ({type(exc).__name__}): is SLURM reachable from here?"
    answer = " ".join((result.stdout + result.stderr).split()[:8])
    if result.returncode != 0 or " is UP" not in result.stdout:
        return f"slurmctld is not reachable ({answer}): start it, or check SLURM_CONF"
    return None
