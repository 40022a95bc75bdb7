"""`--profile`: a cell's profiled pass, after its timed trials, in a worker of its own."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from bench.diskio import WriteFailed, write_atomic
from bench.jobs import Failure, LoadJob, ProfileJob, ProfileOutcome, UnloadJob
from bench.pool import Worker, WorkerLost
from bench.profiles import failed_block, safe_name, summarise, trace_document

#: Where a run folder keeps its profiles: <cell>.json (every node) and <cell>.trace.json.
PROFILES_DIR = "profiles"


class _Planned(Protocol):
    cell_id: str
    job: LoadJob
    profile_runs: int
    fresh_worker: bool
    backend: str


def profile_cell(
    planned: _Planned,
    worker_for: Callable[[str, str], Worker],
    forget: Callable[[str], None],
    timeout: float,
    progress: Callable[[str], None],
) -> ProfileOutcome | Failure:
    """Load the cell again in a `profile-<backend>` worker that never times anything, run
    the runtime's profiler over `planned.profile_runs` inferences and close it. A crash or
    a hang there costs the profile only (the cell's timing stands), and the timed worker's
    memory high-water mark never includes the profiled twin session."""
    key = f"profile-{planned.cell_id if planned.fresh_worker else planned.backend}"
    load = dataclasses.replace(planned.job, inputs=planned.job.inputs[:1], mode="latency")
    progress(f"  profiling {planned.cell_id} ({planned.profile_runs} inferences)")
    try:
        worker = worker_for(key, key)
        reply = worker.execute(load, timeout)
        if isinstance(reply, Failure):
            return reply
        outcome = worker.execute(ProfileJob(planned.cell_id, planned.profile_runs), timeout)
        worker.execute(UnloadJob(planned.cell_id), timeout)
        if planned.fresh_worker:
            forget(key)
    except WorkerLost as lost:
        forget(key)
        return Failure(lost.status, f"profiling: {lost}")
    if isinstance(outcome, ProfileOutcome | Failure):
        return outcome
    return Failure("failed", f"profiling: unexpected reply {type(outcome).__name__}")


def profile_block(
    outcome: ProfileOutcome | Failure | None,
    cell_id: str,
    precision: str,
    device: str,
    unprofiled_us: float | None,
    run_dir: Path,
) -> dict[str, Any]:
    """The record's `profile` block; the full profile and its trace are written to
    `profiles/` in the run folder. A failed pass or write is the block's `error`."""
    if outcome is None or isinstance(outcome, Failure):
        return failed_block(outcome.reason if outcome else "the profiled pass did not run")
    if outcome.raw is None:
        return failed_block("this backend has no profiler in bench (Backend.profile)")
    block, full = summarise(outcome.raw, precision, unprofiled_us, device)
    block["wall_s"] = outcome.wall_s
    if not outcome.raw.nodes:
        block["error"] = "the runtime's profiler reported no node"
    name = safe_name(cell_id)
    files = {
        Path(PROFILES_DIR) / f"{name}.json": {"cell_id": cell_id, **full},
        Path(PROFILES_DIR) / f"{name}.trace.json": trace_document(outcome.raw, cell_id),
    }
    try:
        (run_dir / PROFILES_DIR).mkdir(exist_ok=True)
        write_atomic({run_dir / path: json.dumps(data, allow_nan=False, default=str).encode()
                      for path, data in files.items()})  # fmt: skip
    except (OSError, WriteFailed, ValueError) as exc:
        block["error"] = f"profile files not written: {exc}"
        return block
    block["file"], block["trace_file"] = (str(path) for path in files)
    return block
