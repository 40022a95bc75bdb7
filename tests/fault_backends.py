"""Test-only backends that misbehave on purpose; `register()` adds them to the registry.

Only the CLI subprocesses of the isolation and parity tests call `register()`, so the contract
suite in the pytest process never sees them. The numeric faults (`fault-perturb`, `fault-bf16`,
`fault-mix`, `fault-nan1`) change every float tensor the backend hands back, the way a
runtime's bug would reach every output it computes; `fault-relu` is a kernel bug inside the
graph (one node computes the wrong function); `fault-slow` is correct, only slower.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace

import numpy as np

from bench.backends import register_backend
from bench.backends.ort import OrtCpu


class Segfault(OrtCpu):
    name = "fault-segfault"

    def run(self) -> None:
        os.kill(os.getpid(), signal.SIGSEGV)


class Hang(OrtCpu):
    name = "fault-hang"

    def run(self) -> None:
        time.sleep(3600)


class Raise(OrtCpu):
    name = "fault-raise"

    def load(self, spec) -> None:
        raise RuntimeError("injected failure while loading")


class NaNs(OrtCpu):
    name = "fault-nan"

    def outputs(self) -> dict[str, np.ndarray]:
        out = super().outputs()
        return {k: np.full_like(v, np.nan) for k, v in out.items()}


class WrongShape(OrtCpu):
    name = "fault-shape"

    def outputs(self) -> dict[str, np.ndarray]:
        return {k: v[:, :-1] for k, v in super().outputs().items()}


class CrashInTrial(OrtCpu):
    """Loads fine, then segfaults once in a trial (the marker file makes it once per run)."""

    name = "fault-trial-crash"

    def load(self, spec) -> None:
        super().load(spec)
        self.calls = 0

    def run(self) -> None:
        self.calls += 1
        marker = os.environ["BENCH_FAULT_MARKER"]
        if self.calls > 30 and not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGSEGV)
        super().run()


def _floats(out: dict[str, np.ndarray], change) -> dict[str, np.ndarray]:
    return {k: change(v.copy()) if v.dtype == np.float32 else v for k, v in out.items()}


def _perturb(a: np.ndarray) -> np.ndarray:
    """A 5e-4 relative error (inside rtol 1e-3) on the largest element and every 7th."""
    flat = a.reshape(-1)
    if flat.size:
        flat[int(np.argmax(np.abs(flat)))] *= 1 + 5e-4
        flat[::7] *= 1 + 5e-4
    return a


def _bf16(a: np.ndarray) -> np.ndarray:
    """Round to the nearest bfloat16 (ties to even), kept in a float32 array."""
    bits = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return rounded.astype(np.uint32).view(np.float32).reshape(a.shape)


def _mix(a: np.ndarray) -> np.ndarray:
    """Each item takes 5% of its neighbour's value: invisible at batch 1."""
    return a + 0.05 * (np.roll(a, -1, axis=0) - a) if a.ndim else a


def _nan_one(a: np.ndarray) -> np.ndarray:
    if a.size:
        a.reshape(-1)[0] = np.nan
    return a


class Perturb(OrtCpu):
    name = "fault-perturb"

    def outputs(self) -> dict[str, np.ndarray]:
        return _floats(super().outputs(), _perturb)


class Bf16(OrtCpu):
    name = "fault-bf16"

    def outputs(self) -> dict[str, np.ndarray]:
        return _floats(super().outputs(), _bf16)


class BatchMix(OrtCpu):
    name = "fault-mix"

    def outputs(self) -> dict[str, np.ndarray]:
        return _floats(super().outputs(), _mix)


class NaNOne(OrtCpu):
    name = "fault-nan1"

    def outputs(self) -> dict[str, np.ndarray]:
        return _floats(super().outputs(), _nan_one)


class Slow(OrtCpu):
    """Sleeps in every inference: trials last long enough to be interrupted."""

    name = "fault-slow"

    def run(self) -> None:
        time.sleep(0.005)
        super().run()


class Double(OrtCpu):
    """Correct, and twice the work per inference."""

    name = "fault-double"

    def run(self) -> None:
        super().run()
        super().run()


class KernelBug(OrtCpu):
    """A wrong kernel inside the graph: the first Relu computes LeakyRelu(alpha=0.1)."""

    name = "fault-relu"

    def load(self, spec) -> None:
        import tempfile

        import onnx

        model = onnx.load(spec.source)
        node = next(n for n in model.graph.node if n.op_type == "Relu")
        node.op_type = "LeakyRelu"
        node.attribute.append(onnx.helper.make_attribute("alpha", 0.1))
        fd, path = tempfile.mkstemp(suffix=".onnx")
        os.close(fd)
        onnx.save(model, path)
        try:
            super().load(replace(spec, source=path))
        finally:
            os.unlink(path)


class KillsItsParent(OrtCpu):
    """Once (the marker file): SIGKILL to the process that started this worker, mid-cell.
    Under `--executor ray` that is the Ray worker running the cell's task: a killed task."""

    name = "fault-kill-parent"

    def run(self) -> None:
        marker = os.environ["BENCH_FAULT_MARKER"]
        if not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getppid(), signal.SIGKILL)
            time.sleep(60)  # the kernel ends this worker with its parent (PR_SET_PDEATHSIG)
        super().run()


FAULTS = (Segfault, Hang, Raise, NaNs, WrongShape, CrashInTrial, Perturb, Bf16, BatchMix, NaNOne,
          Slow, Double, KernelBug, KillsItsParent)  # fmt: skip


def register() -> None:
    for cls in FAULTS:
        register_backend(cls.name, f"fault_backends:{cls.__name__}", "test-only backend")
