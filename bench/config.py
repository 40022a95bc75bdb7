"""The run's configuration: a frozen value, built and validated before any work starts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.timing import TimingPolicy

DEFAULT_OPSETS = (13, 17, 18)
DEFAULT_BATCH_SIZES = (1, 8, 32)
DEFAULT_BACKENDS = ("ort-cpu", "ort-cuda", "openvino", "torch")
BASELINE_BACKEND = "torch"


@dataclass(frozen=True)
class RunConfig:
    """One sweep: what to run, how long to time it, where to write."""

    models: tuple[str, ...] = ("simple_cnn",)
    backends: tuple[str, ...] = DEFAULT_BACKENDS
    exporter: str = "auto"
    opsets: tuple[int, ...] = DEFAULT_OPSETS
    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES
    precisions: tuple[str, ...] = ("fp32",)
    timing: TimingPolicy = field(default_factory=TimingPolicy)
    parity_seeds: tuple[int, ...] = (0, 1)
    threads: int | None = None
    backend_options: tuple[tuple[str, str, str], ...] = ()  # (backend, key, value)
    end_to_end: bool = True
    mode: str = "latency"  # "latency": one request at a time; "throughput": many in flight
    requests: int | None = None  # throughput mode: requests in flight (None: runtime's choice)
    cell_timeout: float = 600.0
    out_dir: str = ""
    cache_dir: str = ""

    def options_for(self, backend: str) -> dict[str, str]:
        return {key: value for name, key, value in self.backend_options if name == backend}

    def to_record(self) -> dict:
        return asdict(self)

    @classmethod
    def from_record(cls, data: dict) -> RunConfig:
        """Rebuild a config saved by `to_record` (lists back to tuples)."""
        values = dict(data)
        values["timing"] = TimingPolicy(**values["timing"])
        for key in ("models", "backends", "opsets", "batch_sizes", "precisions", "parity_seeds"):
            values[key] = tuple(values[key])
        values["backend_options"] = tuple(tuple(o) for o in values["backend_options"])
        return cls(**values)


def default_cache_dir() -> Path:
    """Where exports are cached: $BENCH_CACHE_DIR, else ~/.cache/bench/exports."""
    import os

    env = os.environ.get("BENCH_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "bench" / "exports"
