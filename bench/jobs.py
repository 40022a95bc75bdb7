"""Messages between the parent and a worker (a module of its own so both sides unpickle them)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bench.backends.base import LoadSpec
from bench.timing import Measurement, TimingPolicy


@dataclass(frozen=True)
class CellJob:
    """Everything a worker needs for one cell. `inputs[0]` is the timed batch."""

    backend_target: str
    load: LoadSpec
    inputs: list[dict[str, np.ndarray]]
    policy: TimingPolicy
    end_to_end: bool = True
    mode: str = "latency"  # "latency" | "throughput"
    requests: int | None = None  # throughput mode: requests in flight (None: runtime's choice)


@dataclass
class CellOutcome:
    """What a worker sends back for one cell."""

    status: str  # "ok" | "skipped" | "failed"
    reason: str | None = None
    error_type: str | None = None
    traceback: str | None = None
    load_s: float | None = None
    first_run_ms: float | None = None
    measurement: Measurement | None = None
    end_to_end: Measurement | None = None
    throughput: Measurement | None = None
    requests: int | None = None
    inferences_per_round: int | None = None
    outputs: list[dict[str, np.ndarray]] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)
    peak_rss_mb: float | None = None
    gpu_memory_mb: float | None = None
    torch_imported: bool = False
