"""Run-wide facts for env.json: machine, accelerators, library versions, bench's commit."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from bench.allocator import DEFAULT_POLICY
from bench.allocator import describe as describe_allocator

PACKAGES = ("torch", "onnx", "onnxscript", "onnxruntime", "onnxruntime-gpu", "openvino", "numpy")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _physical_cores() -> int | None:
    try:
        with open("/proc/cpuinfo") as fh:
            pairs = set()
            physical = core = None
            for line in fh:
                if line.startswith("physical id"):
                    physical = line.split(":")[1].strip()
                elif line.startswith("core id"):
                    core = line.split(":")[1].strip()
                    pairs.add((physical, core))
            return len(pairs) or None
    except OSError:
        return None


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _gpus() -> list[str]:
    from bench.gpu import nvidia_smi

    out = nvidia_smi("--query-gpu=name,driver_version,memory.total", "--format=csv,noheader")
    return [line.strip() for line in (out or "").splitlines() if line.strip()]


def cpu_governor() -> str | None:
    """cpu0's frequency governor, where the kernel exposes it."""
    path = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out + ("-dirty" if dirty else "")


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


#: Environment variables that change how many threads or which kernels the runtimes use.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "NUMEXPR_NUM_THREADS",
                    "OMP_PROC_BIND", "OMP_PLACES", "KMP_AFFINITY")  # fmt: skip


def threading_env(cpus: str | None = None) -> dict:
    """The cores this process may run on, the cores workers are pinned to (`--cpus`), and the
    thread and BLAS settings of the environment (unset ones left out)."""
    try:
        affinity: list[int] | None = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    return {
        "affinity": affinity,
        "worker_cpus": [int(c) for c in cpus.split(",")] if cpus else None,
        "thread_variables": {k: os.environ[k] for k in THREAD_VARIABLES if k in os.environ},
    }


def collect_env(argv: list[str], cpus: str | None = None, allocator: str = DEFAULT_POLICY) -> dict:
    """Everything needed to say where and with what a run was measured."""
    from bench import __version__

    return {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": _physical_cores(),
        "memory_gib": _memory_gib(),
        "cpu_governor": cpu_governor(),
        "gpus": _gpus(),
        "python": sys.version.split()[0],
        "versions": _versions(),
        "bench_version": __version__,
        "bench_commit": _git_commit(),
        "command": argv,
        "threading": threading_env(cpus),
        "allocator": describe_allocator(allocator).to_record(),
    }
