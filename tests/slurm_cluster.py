"""A real single-node SLURM on localhost for the cluster tests: two partitions (cpu, gpu), a fake
GPU gres on the gpu partition, no accounting database. Installs SLURM with apt-get where it is
missing and this process is root (CI); otherwise says why it cannot.

    python tests/slurm_cluster.py up|down     # by hand, for the measurements in docs/cluster.md

The configuration is the one recorded in ../shared/STACK.md. It lives at /etc/slurm/slurm.conf
(srun inside a job step loses SLURM_CONF when the file is elsewhere) and is only ever written
when no slurm.conf is there or the one there is ours (its first line says so).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

MARK = "# deploybench test cluster: written by tests/slurm_cluster.py"
CONF_DIR = Path("/etc/slurm")
STATE = Path("/tmp/deploybench-slurm")
FAKE_GPU = Path("/dev/deploybench-fake-gpu0")
PARTITIONS = ("cpu", "gpu")
# apt-get install of slurm-wlm and munge took under 2 minutes where the mirror answered
APT_SECONDS = 300


class Unavailable(RuntimeError):
    """SLURM cannot run here; the message says why (a test skips with it)."""


class Unreachable(Unavailable):
    """SLURM could be installed here, but the package mirror did not answer in time."""


def _run(*command: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=check)


def ensure_installed() -> None:
    if shutil.which("slurmctld") and shutil.which("munged") and shutil.which("sbatch"):
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise Unavailable("SLURM is not installed and cannot be (needs root and apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def install() -> subprocess.CompletedProcess:
        return subprocess.run(
            ["apt-get", "install", "-y", "-q", "slurm-wlm", "munge"],
            capture_output=True,
            text=True,
            timeout=APT_SECONDS,
            env=env,
            check=False,
        )

    try:
        result = install()
        if result.returncode != 0:  # stale or missing package lists (a fresh CI image)
            subprocess.run(
                ["apt-get", "update", "-q"], capture_output=True, timeout=APT_SECONDS, check=False
            )
            result = install()
    except subprocess.TimeoutExpired as exc:
        raise Unreachable(
            f"{' '.join(exc.cmd[:2])} timed out after {exc.timeout:.0f} s (no answer from the "
            "Debian mirror?): the cluster tests did not run"
        ) from exc
    if result.returncode != 0 or not shutil.which("slurmctld"):
        raise Unavailable(f"apt-get install slurm-wlm munge failed: {result.stderr[-300:]}")


def memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise Unavailable("cannot read MemTotal from /proc/meminfo")


def slurm_conf(cores: int, memory: int) -> str:
    return f"""{MARK}
ClusterName=deploybench
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={STATE}/state
SlurmdSpoolDir={STATE}/spool
SlurmctldPidFile={STATE}/slurmctld.pid
SlurmdPidFile={STATE}/slurmd.pid
SlurmctldLogFile={STATE}/slurmctld.log
SlurmdLogFile={STATE}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
MinJobAge=3600
ReturnToService=2
SchedulerParameters=sched_interval=1
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cores} RealMemory={memory} Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=localhost MaxTime=INFINITE State=UP
"""


@dataclass
class Cluster:
    processes: list[subprocess.Popen] = field(default_factory=list)
    munged_pid: int | None = None

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        if self.munged_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.munged_pid, signal.SIGTERM)


def _write_config() -> None:
    CONF_DIR.mkdir(parents=True, exist_ok=True)
    conf = CONF_DIR / "slurm.conf"
    if conf.exists() and not conf.read_text().startswith(MARK):
        raise Unavailable(f"{conf} belongs to another SLURM: not touching it")
    cores = os.cpu_count() or 1
    conf.write_text(slurm_conf(cores, int(memory_mb() * 0.9)))
    # gres devices must be character devices: the same numbers as /dev/null
    if not FAKE_GPU.exists():
        os.mknod(FAKE_GPU, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    (CONF_DIR / "gres.conf").write_text(f"{MARK}\nName=gpu File={FAKE_GPU}\n")
    (CONF_DIR / "cgroup.conf").unlink(missing_ok=True)


def _start_munge() -> int:
    Path("/run/munge").mkdir(parents=True, exist_ok=True)
    shutil.chown("/run/munge", "munge", "munge")
    if not Path("/etc/munge/munge.key").exists():
        _run("mungekey", "--create", check=False)
    result = _run("su", "-s", "/bin/sh", "munge", "-c", "munged --force", check=False)
    if result.returncode != 0:
        raise Unavailable(f"munged did not start: {result.stderr.strip()[-200:]}")
    pid_file = Path("/run/munge/munged.pid")
    for _ in range(50):
        if pid_file.exists():
            return int(pid_file.read_text().split()[0])
        time.sleep(0.1)
    raise Unavailable("munged wrote no pid file")


def wait_until_idle(timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        result = _run("sinfo", "-h", "-N", "-o", "%t", check=False)
        state = result.stdout.strip()
        if result.returncode == 0 and state and all(s.startswith("idle") for s in state.split()):
            return
        time.sleep(0.5)
    raise Unavailable(f"the SLURM node never became idle (state {state!r})")


def start() -> Cluster:
    ensure_installed()
    _write_config()
    for folder in (STATE / "state", STATE / "spool"):
        folder.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(munged_pid=_start_munge())
    try:
        for daemon in (["slurmctld", "-D", "-c", "-i"], ["slurmd", "-D"]):
            log = open(STATE / f"{daemon[0]}.out", "w")  # noqa: SIM115 - lives with the daemon
            cluster.processes.append(subprocess.Popen(daemon, stdout=log, stderr=subprocess.STDOUT))
            time.sleep(1)
        wait_until_idle()
    except BaseException:
        cluster.stop()
        raise
    return cluster


def jobs() -> list[dict[str, str]]:
    """Every job slurmctld still knows (MinJobAge keeps finished ones an hour), as key=value."""
    result = _run("scontrol", "show", "job", "--oneliner", check=False)
    found = []
    for line in result.stdout.splitlines():
        fields: dict[str, str] = {}
        for token in line.split():
            key, sep, value = token.partition("=")
            if sep:
                fields[key] = value
        if fields:
            found.append(fields)
    return found


if __name__ == "__main__":
    if sys.argv[1:] == ["up"]:
        up = start()
        print(
            "slurmctld", up.processes[0].pid, "slurmd", up.processes[1].pid, "munged", up.munged_pid
        )
        Path(STATE / "pids").write_text(
            " ".join(str(p) for p in [*(p.pid for p in up.processes), up.munged_pid])
        )
    elif sys.argv[1:] == ["down"]:
        for pid in Path(STATE / "pids").read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGTERM)
    else:
        raise SystemExit("usage: python tests/slurm_cluster.py up|down")
