"""Messages between the parent and a worker (a module of its own so both sides unpickle them).

A worker holds loaded cells between messages: `LoadJob` loads and binds a cell and returns
its outputs for parity; `TrialJob` runs one trial of a loaded cell; `UnloadJob` closes it.
`ReferenceJob` computes reference outputs (of an ONNX file, or of a PyTorch module), so a
native crash or a hang in the user's model costs that model's cells, never the sweep.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bench.backends.base import LoadSpec, RawProfile
from bench.checkjobs import CheckJob, CheckReply
from bench.prepjobs import PrepJob, PrepReply
from bench.timing import Measurement, TimingPolicy


@dataclass(frozen=True)
class LoadJob:
    """Load one cell: create the session, bind `inputs[0]` (the timed batch), run every
    input batch once for parity, keep the session for the trials."""

    cell_id: str
    backend_target: str
    load: LoadSpec
    inputs: list[dict[str, np.ndarray]]
    mode: str = "latency"  # "latency" | "throughput"
    requests: int | None = None  # throughput mode: requests in flight (None: runtime's choice)


@dataclass(frozen=True)
class TrialJob:
    """One trial of a loaded cell: warm-up and timed loop (and the end-to-end loop)."""

    cell_id: str
    policy: TimingPolicy
    end_to_end: bool = True


@dataclass(frozen=True)
class ProfileJob:
    """`--profile`: after a loaded cell's last trial, `runs` inferences under the runtime's
    own profiler, in a profiled twin of the session where profiling is a load-time setting.
    Never mixed into the timed samples."""

    cell_id: str
    runs: int


@dataclass(frozen=True)
class UnloadJob:
    """Close a loaded cell's session."""

    cell_id: str


#: A `ReferenceJob` of a PyTorch model with no inputs imports torch and builds the module
#: before the first forward: it gets `--cell-timeout` plus this many seconds.
PREPARE_ALLOWANCE_S = 60.0


@dataclass(frozen=True)
class ReferenceJob:
    """Reference outputs of each input batch: of an ONNX file at `path` (ONNX Runtime on the
    CPU, optimisations off), or, when `model` is set, of that model's PyTorch module (eager,
    fp32), its flattened outputs named `output_names`. In a worker, so that a crash or a
    forward slower than `--cell-timeout` costs that model's cells, never the sweep."""

    path: str
    inputs: list[dict[str, np.ndarray]]
    model: str | None = None
    input_names: tuple[str, ...] = ()
    output_names: tuple[str, ...] = ()


@dataclass
class Failure:
    """A job that raised inside the worker (the worker lives on)."""

    status: str  # "failed" | "skipped"
    reason: str
    error_type: str | None = None
    traceback: str | None = None


@dataclass
class LoadOutcome:
    """What loading a cell found: timings of the cold start, settings, parity outputs."""

    load_s: float
    first_run_ms: float
    settings: dict[str, str]
    outputs: list[dict[str, np.ndarray]]
    rss_delta_mb: float | None = None
    requests: int | None = None
    inferences_per_round: int | None = None


@dataclass
class TrialOutcome:
    """One trial's raw measurements (throughput mode fills `throughput` only)."""

    inference: Measurement | None = None
    end_to_end: Measurement | None = None
    throughput: Measurement | None = None


@dataclass
class ProfileOutcome:
    """A profiled pass: the runtime's node times (None: the backend cannot profile) and the
    pass's wall seconds, twin session included (the cost of `--profile`)."""

    raw: RawProfile | None
    wall_s: float


@dataclass
class UnloadOutcome:
    """What the worker can tell once the cell is closed."""

    peak_rss_mb: float | None = None
    gpu_memory_mb: float | None = None
    torch_imported: bool = False


@dataclass
class ReferenceOutcome:
    outputs: list[dict[str, np.ndarray]] = field(default_factory=list)


Job = (
    LoadJob | TrialJob | ProfileJob | UnloadJob | ReferenceJob | CheckJob | PrepJob
)  # parity checks: bench.checkjobs; exports and oracles: bench.prepjobs
Reply = (LoadOutcome | TrialOutcome | ProfileOutcome | UnloadOutcome | ReferenceOutcome | Failure
         | CheckReply | PrepReply)  # fmt: skip
