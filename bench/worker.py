"""Worker process: runs backend cells for the parent, one at a time, over a socket.

Started as `python -m bench.worker FD`. It imports a backend's runtime but never torch,
unless the backend itself is a torch backend. A crash here costs the cell in flight only.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from multiprocessing.connection import Connection
from typing import Any

from bench._shadow import leave_shadowing_folder

leave_shadowing_folder()

from bench.backends import load_backend_class  # noqa: E402 - after the path repair
from bench.errors import BackendUnavailable, PrecisionMismatch  # noqa: E402
from bench.gpu import process_gpu_memory_mb  # noqa: E402
from bench.jobs import CellJob, CellOutcome  # noqa: E402
from bench.timing import measure, seconds  # noqa: E402


def _reset_peak_rss() -> None:
    """Reset the kernel's high-water mark of resident memory (Linux); ignore elsewhere."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def _peak_rss_mb() -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def run_cell(job: CellJob) -> CellOutcome:
    """Load, bind, time, and collect outputs for every input batch."""
    _reset_peak_rss()
    backend_cls = load_backend_class(job.backend_target)
    try:
        backend_cls.check_available()
    except BackendUnavailable as exc:
        return CellOutcome("skipped", reason=str(exc))
    backend = backend_cls()
    outcome = CellOutcome("ok")
    try:
        try:
            _, outcome.load_s = seconds(lambda: backend.load(job.load))
        except BackendUnavailable as exc:
            return CellOutcome("skipped", reason=str(exc))
        outcome.settings = backend.describe()
        backend.bind(job.inputs[0])
        _, first = seconds(backend.run)
        outcome.first_run_ms = first * 1e3
        if job.mode == "throughput":
            outcome.requests = backend.prepare_concurrent(job.requests)
            outcome.inferences_per_round = outcome.requests * backend.ROUND_DEPTH
            outcome.throughput = measure(backend.run_concurrent, job.policy)
            backend.bind(job.inputs[0])  # the concurrent requests had their own bindings
            backend.run()
        else:
            outcome.measurement = measure(backend.run, job.policy)  # its last run is kept
        outcome.outputs.append(backend.outputs())
        for batch in job.inputs[1:]:
            backend.bind(batch)
            backend.run()
            outcome.outputs.append(backend.outputs())
        if job.end_to_end and job.mode == "latency":
            first_inputs = job.inputs[0]
            outcome.end_to_end = measure(lambda: backend.infer(first_inputs), job.policy)
    finally:
        backend.close()
    outcome.peak_rss_mb = _peak_rss_mb()
    if backend_cls.device == "cuda":
        # Read after the cell (sessions closed, caching allocators keep their pools): what
        # the driver attributes to this worker, an upper bound of what the cell needed.
        outcome.gpu_memory_mb = process_gpu_memory_mb(os.getpid())
    outcome.torch_imported = "torch" in sys.modules
    return outcome


def _safe_run(job: CellJob) -> CellOutcome:
    try:
        return run_cell(job)
    except PrecisionMismatch as exc:
        return CellOutcome("failed", reason=str(exc), error_type="PrecisionMismatch")
    except Exception as exc:
        return CellOutcome(
            "failed",
            reason=f"{type(exc).__name__}: {exc}",
            error_type=type(exc).__name__,
            traceback=traceback.format_exc(),
        )


def serve(conn: Connection) -> None:
    """Answer jobs until the parent sends None or goes away."""
    conn.send({"pid": os.getpid()})
    while True:
        try:
            job: Any = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        conn.send(_safe_run(job))


def main(argv: list[str]) -> int:
    # The parent decides what Ctrl-C means; the worker finishes or is killed.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve(Connection(int(argv[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
