"""The control workloads (see bench.control for what they are for and how they are judged)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from bench.backends.base import Backend, LoadSpec
from bench.control import BLAS_TIMEOUT_ENV, CONTROL_SHARE

MATMUL_SIZE = 384
ELEMENTS = 1 << 15
PY_ITERATIONS = 1500


class _Control(Backend):
    name: ClassVar[str] = "control"
    device: ClassVar[str] = "cpu"
    consumes: ClassVar[str] = "none"

    @classmethod
    def check_available(cls) -> None:
        return None

    def bind(self, inputs: Mapping[str, np.ndarray]) -> None:
        return None

    def outputs(self) -> dict[str, np.ndarray]:
        return {}


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the worker's --cpus set, when pinned
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class MatmulControl(_Control):
    """A MATMUL_SIZE² float32 matrix product on every core this process may use."""

    def load(self, spec: LoadSpec) -> None:
        from threadpoolctl import threadpool_info, threadpool_limits

        self.threads = _cores()
        self._limits = threadpool_limits(self.threads, user_api="blas")
        blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        self.blas = ", ".join(f"{i.get('internal_api')} {i.get('version')} "
                              f"({i.get('num_threads')} threads)" for i in blas) or "none found"  # fmt: skip
        rng = np.random.default_rng(0)
        size = (MATMUL_SIZE, MATMUL_SIZE)
        self.a = rng.standard_normal(size, dtype=np.float32)
        self.b = rng.standard_normal(size, dtype=np.float32)
        self.out = np.empty(size, dtype=np.float32)

    def run(self) -> None:
        np.matmul(self.a, self.b, out=self.out)

    def describe(self) -> dict[str, str]:
        return {"workload": f"float32 matmul {MATMUL_SIZE}x{MATMUL_SIZE}",
                "threads": str(self.threads), "blas": self.blas,
                "blas_thread_timeout": os.environ.get(BLAS_TIMEOUT_ENV, "default"),
                "trial_share": str(CONTROL_SHARE)}  # fmt: skip

    def close(self) -> None:
        limits = getattr(self, "_limits", None)
        if limits is not None:
            limits.restore_original_limits()


class ControlWorkload(_Control):
    """numpy+python (runs from before matmul): about 100 µs of elementwise numpy work and
    interpreter work per call, single-threaded by construction."""

    def load(self, spec: LoadSpec) -> None:
        rng = np.random.default_rng(0)
        self.a = rng.standard_normal(ELEMENTS)
        self.b = rng.standard_normal(ELEMENTS)
        self.out = np.empty_like(self.a)
        self.total = 0

    def run(self) -> None:
        np.multiply(self.a, self.b, out=self.out)
        np.add(self.out, self.a, out=self.out)
        total = 0
        for i in range(PY_ITERATIONS):
            total += i * i
        self.total = total

    def describe(self) -> dict[str, str]:
        return {"workload": f"numpy multiply+add of {ELEMENTS} float64, {PY_ITERATIONS} "
                            "pure-Python iterations"}  # fmt: skip
