"""One Ray task, on the node that measures: a cell and the control workload, loaded into
bench's own workers (bench.pool) and measured in interleaved trials (bench.schedule), exactly
as a local run measures them. The driver ships the model's files (no shared filesystem is
assumed) and judges parity itself; this module imports no Ray, so it is tested without it."""

from __future__ import annotations

import shutil
import socket
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench.allocator import DEFAULT_POLICY
from bench.jobs import TrialOutcome
from bench.schedule import Measured, Planned, Scheduler
from bench.timing import TimingPolicy

LOG_TAIL_CHARS = 20_000


@dataclass(frozen=True)
class NodeSettings:
    """How every task of a run measures (the run's settings a local Scheduler takes)."""

    policy: TimingPolicy
    seed: int
    cell_timeout: float
    end_to_end: bool
    allocator: str = DEFAULT_POLICY


@dataclass
class NodeResult:
    """What a task sends back: the measured cells (inputs stripped), trials, logs."""

    host: str
    node_id: str
    measured: list[Measured] = field(default_factory=list)
    trials: list[tuple[str, int, TrialOutcome]] = field(default_factory=list)
    log: str = ""


def model_files(source: str) -> dict[str, bytes] | None:
    """The files a node needs to load `source`: an export cache entry's model files, or an
    ONNX file and the external data its initializers name; None when `source` is no file
    (a backend that consumes the PyTorch module builds it from the model's reference)."""
    path = Path(source)
    if not (path.suffix == ".onnx" and path.is_file()):
        return None
    if (path.parent / "export.json").is_file():  # a cache entry: its files, not the manifest
        return {f.name: f.read_bytes() for f in sorted(path.parent.iterdir())
                if f.is_file() and f.name != "export.json"}  # fmt: skip
    import onnx

    names = {path.name}
    for tensor in onnx.load(str(path), load_external_data=False).graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                names.add(entry.value)
    return {name: (path.parent / name).read_bytes() for name in sorted(names)}


def _unpack(planned: Planned, files: dict[str, bytes] | None, folder: Path) -> Planned:
    """`planned` with its model written into `folder` and its load spec pointing there."""
    if not files:
        return planned
    for name, data in files.items():
        target = (folder / name).resolve()
        if folder.resolve() not in target.parents:  # a name like ../x: never outside
            raise ValueError(f"model file name {name!r} leaves its folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    source = str(folder / Path(planned.job.load.source).name)
    job = replace(planned.job, load=replace(planned.job.load, source=source))
    return replace(planned, job=job)


def _light(measured: Measured) -> Measured:
    """`measured` without its parity inputs (the driver holds them)."""
    planned = measured.planned
    return replace(measured, planned=replace(planned, job=replace(planned.job, inputs=[])))


def _logs(folder: Path) -> str:
    parts = [f"== {p.name}\n{p.read_text(errors='replace')}" for p in sorted(folder.glob("*.log"))]
    return "\n".join(parts)[-LOG_TAIL_CHARS:]


def measure_on_node(
    cell: Planned,
    control: Planned | None,
    files: dict[str, bytes] | None,
    settings: NodeSettings,
    node_id: str = "",
) -> NodeResult:
    """Measure `cell` (and the control beside it) here; the temporary folder is removed."""
    result = NodeResult(socket.gethostname(), node_id)
    folder = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    scheduler = Scheduler(folder / "logs", settings.policy, settings.seed,
                          settings.cell_timeout, settings.end_to_end,
                          progress=lambda line: None,
                          allocator=settings.allocator)  # fmt: skip
    try:
        planned = [_unpack(cell, files, folder / "model")] + ([control] if control else [])
        scheduler.measure(planned, lambda m: result.measured.append(_light(m)),
                          lambda: False, lambda *trial: result.trials.append(trial))  # fmt: skip
    finally:
        scheduler.close()
        result.log = _logs(folder / "logs")
        shutil.rmtree(folder, ignore_errors=True)
    return result


def ray_task(
    cell: Planned, control: Planned | None, files: dict[str, bytes] | None, settings: NodeSettings
) -> NodeResult:
    """The function Ray runs (bench.rayexec): `measure_on_node` with this node's id."""
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    return measure_on_node(cell, control, files, settings, node_id)
