"""The control workload: a small fixed job that uses no runtime under test (a numpy kernel
and a pure-Python loop, single-threaded by construction), measured as one more cell whose
trials interleave with everyone else's. When it moves between two runs, the machine moved;
`bench compare` reports ratios relative to it as well as raw."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from bench.backends.base import Backend, LoadSpec

CONTROL_TARGET = "bench.control:ControlWorkload"
CONTROL_ID = "control/control/numpy+python"
ELEMENTS = 1 << 15
PY_ITERATIONS = 1500


class ControlWorkload(Backend):
    """About 100 µs of elementwise numpy work and interpreter work per call."""

    name: ClassVar[str] = "control"
    device: ClassVar[str] = "cpu"
    consumes: ClassVar[str] = "none"

    @classmethod
    def check_available(cls) -> None:
        return None

    def load(self, spec: LoadSpec) -> None:
        rng = np.random.default_rng(0)
        self.a = rng.standard_normal(ELEMENTS)
        self.b = rng.standard_normal(ELEMENTS)
        self.out = np.empty_like(self.a)
        self.total = 0

    def bind(self, inputs: Mapping[str, np.ndarray]) -> None:
        return None

    def run(self) -> None:
        np.multiply(self.a, self.b, out=self.out)
        np.add(self.out, self.a, out=self.out)
        total = 0
        for i in range(PY_ITERATIONS):
            total += i * i
        self.total = total

    def outputs(self) -> dict[str, np.ndarray]:
        return {}

    def describe(self) -> dict[str, str]:
        return {"workload": f"numpy multiply+add of {ELEMENTS} float64, {PY_ITERATIONS} "
                            "pure-Python iterations"}  # fmt: skip


def control_id(target: str | None = None) -> str:
    """The control record's cell id; one per `--target` (each target's nodes are measured)."""
    return f"{CONTROL_ID}/on-{target}" if target else CONTROL_ID


def control_ids(targets: tuple[str, ...] = ()) -> set[str]:
    """Every control cell id a run with these targets may record."""
    return {control_id(t) for t in targets} or {CONTROL_ID}
