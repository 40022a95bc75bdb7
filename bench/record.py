"""The cell record: one typed definition that builds, validates and serialises every line of
results.jsonl. `results/README.md` documents each field; a test keeps the two in step."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from bench import SCHEMA_VERSION
from bench.errors import BenchError

#: Every status a cell record can carry. Only "ok" and "skipped" are clean.
STATUSES = ("ok", "parity_failed", "skipped", "export_failed", "failed", "crashed", "timeout")
CLEAN_STATUSES = ("ok", "skipped")
KINDS = ("cell", "control")
#: The backend every run adds as reference and speed baseline (unless --no-baseline).
BASELINE_BACKEND = "torch"


@dataclass
class CellRecord:
    """One cell of the grid (or the run's control workload), whatever happened to it."""

    run_id: str
    cell_id: str
    model: str
    backend: str
    device: str
    status: str
    kind: str = "cell"
    model_source: str | None = None
    exporter: str | None = None
    opset_requested: int | None = None
    batch_size: int = 1
    dims: dict[str, int] = field(default_factory=dict)
    precision: str = "fp32"
    mode: str = "latency"
    twin: str | None = None
    reason: str | None = None
    traceback: str | None = None
    reference: str | None = None
    tolerance: dict[str, float] | None = None
    export: dict[str, Any] | None = None
    exporter_used: str | None = None
    opset_actual: int | None = None
    settings: dict[str, str] = field(default_factory=dict)
    cold_start: dict[str, float | None] | None = None
    memory: dict[str, float | None] | None = None
    worker_imported_torch: bool | None = None
    latency: dict[str, dict[str, Any] | None] | None = None
    throughput: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    parity: dict[str, Any] | None = None
    trial_group: int | None = None
    host: str | None = None  # the machine that measured it; set as the record is written
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r}; valid: {', '.join(STATUSES)}")
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r}; valid: {', '.join(KINDS)}")

    def timed(self) -> dict[str, Any] | None:
        """The block a comparison uses: inference latency, or throughput rounds."""
        return (self.latency or {}).get("inference") or self.throughput

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: non-finite floats become null or "inf"."""
        return jsonable(asdict(self))

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_json(cls, data: Any, where: str = "record") -> CellRecord:
        """Validate a parsed line; a `BenchError` naming the problem when it is not a record."""
        if not isinstance(data, dict):
            raise BenchError(f"{where}: not a JSON object")
        names = set(cls.field_names())
        values = {k: v for k, v in data.items() if k in names}
        for key in ("run_id", "cell_id", "model", "backend", "status"):
            if not isinstance(values.get(key), str):
                raise BenchError(f"{where}: field {key!r} missing or not a string")
        values.setdefault("device", "cpu")
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise BenchError(f"{where}: {exc}") from None


def jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def model_hashes(base: dict | None, other: dict | None) -> tuple[str | None, str | None]:
    """The `sha256` of two records' export blocks, made comparable: a record without `files`
    predates hashing the external data too, and its sha256 is of the graph file alone, so
    against such a record the other's graph file (`model.onnx` in `files`) counts."""
    blocks = (base or {}, other or {})
    if ("files" in blocks[0]) == ("files" in blocks[1]):
        return blocks[0].get("sha256"), blocks[1].get("sha256")
    own = [
        next((f.get("sha256") for f in b["files"] or () if f.get("name") == "model.onnx"), None)
        if "files" in b
        else b.get("sha256")
        for b in blocks
    ]
    return own[0], own[1]
