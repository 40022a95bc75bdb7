"""Test-only backends that misbehave on purpose; `register()` adds them to the registry.

Only the CLI subprocesses of the isolation tests call `register()`, so the contract suite in
the pytest process never sees them.
"""

from __future__ import annotations

import os
import signal
import time

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


class Slow(OrtCpu):
    """Sleeps in every inference: trials last long enough to be interrupted."""

    name = "fault-slow"

    def run(self) -> None:
        time.sleep(0.005)
        super().run()


def register() -> None:
    for cls in (Segfault, Hang, Raise, NaNs, WrongShape, CrashInTrial, Slow):
        register_backend(cls.name, f"fault_backends:{cls.__name__}", "test-only backend")
