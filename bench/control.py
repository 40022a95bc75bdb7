"""The control workload: a small fixed job that uses no runtime under test, measured as one more
cell whose trials interleave with everyone else's. When it moves between two runs, the machine
moved; `bench compare` reports ratios relative to it as well as raw.

The default workload (`matmul`) is a float32 matrix product on every core the workers may use
(numpy's BLAS, its thread count set with threadpoolctl), the runtimes' own kind of work: what
moves multithreaded inference between runs on a shared machine is mostly how much of all its
cores it gets, which a single-threaded job does not see. It runs CONTROL_SHARE times as many
trials as a cell, each that much shorter (the same measuring time), so its own estimate is
precise: its noise enters every ratio judged relative to it. The workloads themselves are in
bench.controlworkload (this module stays free of numpy and the backends: compare reads it).

Runs from before it (run.json without `control_workload`) measured `numpy+python`, a
single-threaded numpy and interpreter job with a cell's trial count; a resumed old run keeps
it, and `bench compare` divides only by controls of the same workload and thread count.
"""

from __future__ import annotations

from typing import Any

MATMUL = "matmul"
LEGACY = "numpy+python"
DEFAULT_WORKLOAD = MATMUL
WORKLOADS = (MATMUL, LEGACY)
CONTROL_PREFIX = "control/control/"
#: Trials of the matmul control per round of the cells' trials, each this much shorter.
CONTROL_SHARE = 4
TARGETS = {MATMUL: "bench.controlworkload:MatmulControl",
           LEGACY: "bench.controlworkload:ControlWorkload"}  # fmt: skip
SHARES = {MATMUL: CONTROL_SHARE, LEGACY: 1}
#: OpenBLAS's spin before its idle threads sleep: 2**N cycles (4 is its minimum; default 28).
#: bench's workers start with the minimum (unless set), so the control's threads do not spin
#: into the next cell's trial in another worker.
BLAS_TIMEOUT_ENV = "OPENBLAS_THREAD_TIMEOUT"
QUIET_BLAS_TIMEOUT = "4"


def control_id(target: str | None = None, workload: str = DEFAULT_WORKLOAD) -> str:
    """The control record's cell id; one per `--target` (each target's nodes are measured)."""
    base = CONTROL_PREFIX + workload
    return f"{base}/on-{target}" if target else base


def control_ids(targets: tuple[str, ...] = (), workload: str = DEFAULT_WORKLOAD) -> set[str]:
    """Every control cell id a run with these targets may record."""
    return {control_id(t, workload) for t in targets} or {control_id(None, workload)}


def same_workload(base: dict[str, Any], other: dict[str, Any]) -> str | None:
    """Why two control records cannot be divided by each other (None when they can)."""
    s0, s1 = base.get("settings") or {}, other.get("settings") or {}
    for key in ("workload", "threads"):
        if s0.get(key) != s1.get(key):
            return f"the control workloads differ ({key}: {s0.get(key)} vs {s1.get(key)})"
    return None
