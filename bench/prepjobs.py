"""Messages that prepare a PyTorch model in the reference worker instead of the parent: its
export (torch.onnx.export) and its float64 oracle. Both run the user's module, which can
crash, hang or exhaust memory like any runtime; in a worker under `--cell-timeout` that costs
the cells of that export or that oracle, never the sweep (and the parent never imports torch
for them). bench.artifacts sends them, bench.prepworker answers them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ExportJob:
    """Export `model` (a model reference) for (`exporter`, `opset`) into the cache at
    `cache_dir`, or find it there; sizes and integer ranges as the parent resolved them."""

    model: str
    exporter: str
    opset: int
    cache_dir: str
    sizes: tuple[tuple[str, int], ...] = ()
    int_ranges: tuple[tuple[str, int, int], ...] = ()


@dataclass
class ExportOutcome:
    """The export's result (`ExportResult.to_record()`) and the lines it said on the way."""

    result: dict[str, Any]
    lines: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class OracleJob:
    """The float64 copy of `model`'s module on each input batch (bench.oracle)."""

    model: str
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    inputs: list[dict[str, np.ndarray]]


@dataclass
class OracleOutcome:
    """bench.oracle.Oracle's fields."""

    status: str
    outputs: list[dict[str, np.ndarray]] = field(default_factory=list)
    reason: str | None = None


PrepJob = ExportJob | OracleJob
PrepReply = ExportOutcome | OracleOutcome
