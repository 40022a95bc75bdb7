"""GPU memory of a process, through NVML when available, else nvidia-smi; None elsewhere."""

from __future__ import annotations

import shutil
import subprocess


def nvidia_smi(*args: str) -> str | None:
    """nvidia-smi's output, or None where there is no NVIDIA driver or it fails."""
    if not shutil.which("nvidia-smi"):
        return None
    try:
        return subprocess.run(
            ["nvidia-smi", *args], capture_output=True, text=True, timeout=20, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None


def process_gpu_memory_mb(pid: int) -> float | None:
    """Device memory (MiB) the driver attributes to `pid`, summed over GPUs."""
    try:
        import pynvml  # from nvidia-ml-py, optional

        pynvml.nvmlInit()
        try:
            total = 0
            for index in range(pynvml.nvmlDeviceGetCount()):
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
                    if proc.pid == pid and proc.usedGpuMemory:
                        total += proc.usedGpuMemory
            return total / 2**20
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        pass
    out = nvidia_smi("--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits")
    if out is None:
        return None
    used = [float(mem) for p, mem in (line.split(",") for line in out.splitlines() if "," in line)
            if int(p) == pid]  # fmt: skip
    return sum(used) if used else 0.0
