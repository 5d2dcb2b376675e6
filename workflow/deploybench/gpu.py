"""Whether this host can build GPU targets (config ``gpu: auto | true | false``), what its GPU is,
and which reduced precisions that GPU executes natively. Reads ``nvidia-smi`` only: importing
this module loads no CUDA library."""

from __future__ import annotations

import shutil
import subprocess

# nvidia-smi --query-gpu fields for the environment block and the timing records.
FACT_FIELDS = {
    "name": "name",
    "driver": "driver_version",
    "compute_capability": "compute_cap",
    "memory_mib": "memory.total",
    "sm_clock_mhz": "clocks.sm",
    "max_sm_clock_mhz": "clocks.max.sm",
    "power_limit_w": "power.limit",
}
# The lowest compute capability whose hardware executes the precision natively (fp16 arithmetic
# from sm_53, dp4a int8 from sm_61, bf16 from Ampere); below it a library emulates or refuses.
NATIVE_CUDA_CAPABILITY = {"fp16": (5, 3), "int8": (6, 1), "bf16": (8, 0)}


def _nvidia_smi(*arguments: str) -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        result = subprocess.run(
            ["nvidia-smi", *arguments], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


def nvidia_smi_sees_gpu() -> bool:
    output = _nvidia_smi("--query-gpu=name", "--format=csv,noheader")
    return bool(output and output.strip())


def gpu_present(setting: str | bool) -> bool:
    """``auto`` probes this host; a cluster profile sets ``true`` (its login node has no GPU)."""
    if setting is True or setting == "true":
        return True
    if setting is False or setting == "false":
        return False
    return nvidia_smi_sees_gpu()


def parse_gpu_facts(csv_line: str) -> dict[str, str]:
    """One line of ``nvidia-smi --query-gpu=<FACT_FIELDS> --format=csv,noheader,nounits``."""
    values = [v.strip() for v in csv_line.split(",")]
    if len(values) != len(FACT_FIELDS):
        raise ValueError(f"nvidia-smi gave {len(values)} fields, expected {len(FACT_FIELDS)}")
    return dict(zip(FACT_FIELDS, values, strict=True))


def nvidia_smi_id(uuid: object) -> str:
    """nvidia-smi's ``--id`` for the device whose UUID torch reports (``props.uuid``, without
    nvidia-smi's ``GPU-`` prefix). Not torch's index: under ``CUDA_VISIBLE_DEVICES`` torch
    renumbers the devices it sees, while nvidia-smi always numbers every GPU on the host."""
    text = str(uuid).strip()
    return text if text.startswith(("GPU-", "MIG-")) else f"GPU-{text}"


def gpu_facts(uuid: object | None = None) -> dict[str, str] | None:
    """The GPU's name, driver, compute capability, clocks and power limit; None without one.
    ``uuid`` picks the device (see :func:`nvidia_smi_id`); without it, the host's first GPU."""
    selector = [f"--id={nvidia_smi_id(uuid)}"] if uuid is not None else []
    output = _nvidia_smi(
        *selector,
        f"--query-gpu={','.join(FACT_FIELDS.values())}",
        "--format=csv,noheader,nounits",
    )
    if not output or not output.strip():
        return None
    try:
        return parse_gpu_facts(output.strip().splitlines()[0])
    except ValueError:
        return None


def compute_capability(facts: dict[str, str] | None) -> tuple[int, int] | None:
    if not facts:
        return None
    major, _, minor = facts.get("compute_capability", "").partition(".")
    if not (major.isdigit() and minor.isdigit()):
        return None
    return int(major), int(minor)


def native_cuda_precision_support(
    precision: str, capability: tuple[int, int] | None
) -> tuple[bool, str]:
    """Whether a GPU of this compute capability runs ``precision`` natively. Unknown capability
    (a submit host planning for a GPU partition) is not a reason to skip: the job finds out."""
    needed = NATIVE_CUDA_CAPABILITY.get(precision)
    if needed is None or capability is None or capability >= needed:
        return True, "supported"
    return False, (
        f"GPU compute capability {capability[0]}.{capability[1]} is too old for native "
        f"{precision} (needs {needed[0]}.{needed[1]} or newer)"
    )
