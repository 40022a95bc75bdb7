"""The run's configuration: a frozen value, built and validated before any work starts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from bench.models.spec import Tolerance
from bench.timing import TimingPolicy

DEFAULT_OPSETS = (13, 17, 18)
DEFAULT_BATCH_SIZES = (1, 8, 32)
DEFAULT_BACKENDS = ("ort-cpu", "ort-cuda", "openvino", "torch")


@dataclass(frozen=True)
class RunConfig:
    """One sweep: what to run, how long to time it, where to write."""

    models: tuple[str, ...] = ("simple_cnn",)
    backends: tuple[str, ...] = DEFAULT_BACKENDS
    exporter: str = "auto"
    opsets: tuple[int, ...] = DEFAULT_OPSETS
    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES
    dims: tuple[tuple[str, tuple[int, ...]], ...] = ()  # --dims seq=16,128: swept like batch
    #: Sizes of ONNX-file models' dynamic dimensions (from --shape and --dims).
    file_dims: tuple[tuple[str, int], ...] = ()
    #: (input name, low, high) from --int-range: integer inputs draw from [low, high).
    int_ranges: tuple[tuple[str, int, int], ...] = ()
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
    #: (model or "*", rtol or None, atol or None), applied in order over the model's own.
    tolerance_overrides: tuple[tuple[str, float | None, float | None], ...] = ()
    seed: int = 0  # the order in which trials are interleaved
    cpus: str | None = None  # "0,1": pin workers to these cores (sched_setaffinity)
    allocator: str = "steady"  # workers' malloc policy (bench.allocator): "steady" or "system"
    control: bool = True  # measure the control workload beside the cells
    control_workload: str = "matmul"  # bench.control.WORKLOADS; old runs: "numpy+python"
    explain_cells: tuple[str, ...] = ()  # --explain-cell: first divergence even when they pass
    executor: str = "local"  # "local": worker processes here; "ray": bench.rayexec
    ray_address: str | None = None  # --ray-address; None: a local Ray instance on 127.0.0.1
    #: --target KEY=VALUE (Ray node labels): every cell is measured once per target.
    targets: tuple[str, ...] = ()
    profile_runs: int = 0  # --profile: inferences of each cell's profiled pass (0: off)
    #: --shard I/N: (I, N), this run measures the I-th of N cost-balanced parts (bench.shard).
    shard: tuple[int, int] | None = None

    @property
    def times_end_to_end(self) -> bool:
        """Whether each trial also times end-to-end latency (latency mode only)."""
        return self.end_to_end and self.mode == "latency"

    def options_for(self, backend: str) -> dict[str, str]:
        return {key: value for name, key, value in self.backend_options if name == backend}

    def int_range_map(self) -> dict[str, tuple[int, int]]:
        """--int-range as {input name: (low, high)}."""
        return {name: (low, high) for name, low, high in self.int_ranges}

    def to_record(self) -> dict:
        return asdict(self)

    @classmethod
    def from_record(cls, data: dict) -> RunConfig:
        """Rebuild a config saved by `to_record` (lists back to tuples)."""
        values = {k: v for k, v in data.items() if k in {f.name for f in fields(cls)}}
        timing_fields = {f.name for f in fields(TimingPolicy)}
        values["timing"] = TimingPolicy(
            **{k: v for k, v in values["timing"].items() if k in timing_fields}
        )
        for key in ("models", "backends", "opsets", "batch_sizes", "precisions", "parity_seeds"):
            values[key] = tuple(values[key])
        values["explain_cells"] = tuple(values.get("explain_cells", ()))
        # A run from before the policy existed was measured with the C library's own one;
        # resuming it keeps that, so one run never mixes the two.
        values.setdefault("allocator", "system")
        values.setdefault("control_workload", "numpy+python")  # likewise its control workload
        values["targets"] = tuple(values.get("targets", ()))
        shard = values.get("shard")
        values["shard"] = tuple(shard) if shard is not None else None
        values["backend_options"] = tuple(tuple(o) for o in values["backend_options"])
        values["int_ranges"] = tuple(tuple(r) for r in values.get("int_ranges", ()))
        values["tolerance_overrides"] = tuple(
            tuple(o) for o in values.get("tolerance_overrides", ())
        )
        return cls(**values)

    def tolerance_for(self, model: str, base: Tolerance) -> Tolerance:
        """The model's tolerance with the command line's and config file's overrides applied."""
        rtol, atol = base.rtol, base.atol
        for name, new_rtol, new_atol in self.tolerance_overrides:
            if name in ("*", model):
                rtol = rtol if new_rtol is None else new_rtol
                atol = atol if new_atol is None else new_atol
        return Tolerance(rtol=rtol, atol=atol)


def default_cache_dir() -> Path:
    """Where exports are cached: $BENCH_CACHE_DIR, else ~/.cache/bench/exports."""
    import os

    env = os.environ.get("BENCH_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "bench" / "exports"
