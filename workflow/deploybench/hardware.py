"""Facts about the host that results depend on: CPU, its features, load, frequency, and which
reduced precisions it executes natively. A leaf module: it imports nothing of ours."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

BF16_FLAGS = ("avx512_bf16", "amx_bf16")
FP16_FLAGS = ("avx512_fp16", "amx_fp16")
# CPU flags that mean a precision runs natively, not emulated through fp32.
NATIVE_CPU_FLAGS = {"bf16": BF16_FLAGS, "fp16": FP16_FLAGS}


@dataclass(frozen=True)
class HostFacts:
    """What the host that builds the DAG offers: its CPU flags, whether it has a GPU, and that
    GPU's compute capability where it can be read (None on a submit host without one)."""

    cpu_flags: frozenset[str]
    has_gpu: bool
    gpu_compute_capability: tuple[int, int] | None = None


def native_precision_support(precision: str, cpu_flags: frozenset[str]) -> tuple[bool, str]:
    """Whether the CPU runs ``precision`` natively; the one place that reads CPU flags for it."""
    flags = NATIVE_CPU_FLAGS.get(precision)
    if flags is None or cpu_flags & set(flags):
        return True, "supported"
    return False, f"CPU lacks native {precision} ({' or '.join(flags)})"


@lru_cache(maxsize=1)
def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_model() -> str:
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_flags() -> frozenset[str]:
    for line in _cpuinfo().splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def load_average() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


def cpu_frequency_mhz() -> float | None:
    """Mean current frequency over the cores, where the kernel tells it."""
    values = []
    for path in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_cur_freq"):
        try:
            values.append(int(path.read_text()) / 1000.0)
        except (OSError, ValueError):
            continue
    if not values:
        values = [
            float(line.split(":", 1)[1])
            for line in _cpuinfo().splitlines()
            if line.startswith("cpu MHz")
        ]
    return sum(values) / len(values) if values else None


def busy_cpu_seconds() -> float | None:
    """CPU seconds spent busy by the whole machine since boot (all cores, /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    ticks = [int(v) for v in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def describe() -> dict:
    flags = cpu_flags()
    interesting = sorted(
        f for f in flags if f.startswith(("avx", "amx", "fma", "sse4", "f16c", "vnni"))
    )
    return {
        "cpu_model": cpu_model(),
        "cpu_flags": interesting,
        "cores": available_cores(),
        "machine": platform.machine(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "bf16": native_precision_support("bf16", flags)[0],
    }
