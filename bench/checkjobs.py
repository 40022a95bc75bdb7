"""Messages of the parity checks that need a runtime (bench.checks sends them, bench.checkworker
answers them in a worker process): a module of its own so both sides unpickle them.

`OutputsJob` loads a backend afresh and returns its outputs on some inputs (items run alone,
for the batch-consistency check; a cell's parity inputs again, for `bench explain`).
`DivergenceJob` searches the first node of the ONNX graph where the backend leaves the
unoptimised reference (bench.diverge). `EvaluatorJob` runs a file in onnx's ReferenceEvaluator,
the second opinion on an `export` attribution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.backends.base import LoadSpec


@dataclass(frozen=True)
class OutputsJob:
    """Load `backend_target` with `load`, run every batch of `inputs`, close."""

    backend_target: str
    load: LoadSpec
    inputs: list[dict[str, np.ndarray]]


@dataclass
class OutputsOutcome:
    outputs: list[dict[str, np.ndarray]] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DivergenceJob:
    """Run the graph of `load.source` with every intermediate exposed, in the reference and in
    the backend, on one input batch; find the first node beyond `threshold`."""

    backend_target: str
    load: LoadSpec
    inputs: dict[str, np.ndarray]
    threshold: float
    deadline_s: float = 120.0
    budget_mb: float = 256.0
    max_probes: int = 1024


@dataclass
class DivergenceOutcome:
    result: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvaluatorJob:
    """Outputs of an ONNX file under onnx.reference.ReferenceEvaluator (numpy, no runtime)."""

    path: str
    inputs: list[dict[str, np.ndarray]]


CheckJob = OutputsJob | DivergenceJob | EvaluatorJob
CheckReply = OutputsOutcome | DivergenceOutcome
