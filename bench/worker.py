"""Worker process: loads cells and runs their trials for the parent, over a socket.

Started as `python -m bench.worker FD [CPUS [ALLOCATOR]]`. It imports a backend's runtime but never
torch, unless the backend itself is a torch backend. A crash here costs the job in flight;
the parent restarts the worker and reloads the cells it held.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import traceback
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Any

from bench._shadow import leave_shadowing_folder

leave_shadowing_folder()

from bench.allocator import DEFAULT_POLICY, AllocatorState  # noqa: E402 - after the path repair
from bench.allocator import apply as apply_allocator  # noqa: E402
from bench.backends import load_backend_class  # noqa: E402
from bench.backends.base import Backend  # noqa: E402
from bench.checkjobs import DivergenceJob, EvaluatorJob, OutputsJob  # noqa: E402
from bench.checkworker import run_check  # noqa: E402
from bench.errors import BackendUnavailable, PrecisionMismatch  # noqa: E402
from bench.gpu import process_gpu_memory_mb  # noqa: E402
from bench.jobs import (  # noqa: E402
    Failure,
    Job,
    LoadJob,
    LoadOutcome,
    ProfileJob,
    ProfileOutcome,
    ReferenceJob,
    ReferenceOutcome,
    Reply,
    TrialJob,
    TrialOutcome,
    UnloadJob,
    UnloadOutcome,
)
from bench.lifeline import die_with_parent  # noqa: E402
from bench.models.checks import ModelProblem  # noqa: E402
from bench.prepjobs import ExportJob, OracleJob  # noqa: E402
from bench.prepworker import module_of, run_prep  # noqa: E402
from bench.timing import CpuLoad, measure, seconds  # noqa: E402


def _rss_mb(field: str = "VmRSS:") -> float | None:
    """The current (VmRSS) or peak (VmHWM) resident memory of this process, MiB (Linux)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def with_trial_load(outcome: TrialOutcome, fraction: float | None) -> TrialOutcome:
    """`outcome` with the trial's share of CPU used by other processes in each loop whose
    own window was too short to read (`CpuLoad.MIN_WINDOW_S`: /proc/stat counts 10 ms ticks)."""
    for name in ("inference", "end_to_end", "throughput"):
        loop = getattr(outcome, name)
        if loop is not None and loop.other_cpu_fraction is None:
            setattr(outcome, name, replace(loop, other_cpu_fraction=fraction))
    return outcome


class CellHost:
    """The cells loaded in this worker, by cell id."""

    def __init__(self, allocator: AllocatorState | None = None) -> None:
        self.allocator = allocator  # this process's malloc policy, stated in every record
        self.loaded: dict[str, tuple[Backend, LoadJob]] = {}
        self.trialled: set[str] = set()  # cells that had their first (fully warmed) trial

    def load(self, job: LoadJob) -> LoadOutcome | Failure:
        backend_cls = load_backend_class(job.backend_target)
        try:
            backend_cls.check_available()
        except BackendUnavailable as exc:
            return Failure("skipped", str(exc))
        before = _rss_mb()
        backend = backend_cls()
        try:
            _, load_s = seconds(lambda: backend.load(job.load))
            settings = backend.describe()
            if self.allocator is not None:
                settings["allocator"] = self.allocator.setting()
            backend.bind(job.inputs[0])
            _, first = seconds(backend.run)
            outputs = [backend.outputs()]
            for batch in job.inputs[1:]:
                backend.bind(batch)
                backend.run()
                outputs.append(backend.outputs())
            backend.bind(job.inputs[0])
            outcome = LoadOutcome(load_s, first * 1e3, settings, outputs)
            if job.mode == "throughput":
                outcome.requests = backend.prepare_concurrent(job.requests)
                outcome.inferences_per_round = outcome.requests * backend.ROUND_DEPTH
        except BaseException:
            backend.close()
            raise
        after = _rss_mb()
        outcome.rss_delta_mb = after - before if after is not None and before else None
        self.loaded[job.cell_id] = (backend, job)
        return outcome

    def trial(self, job: TrialJob) -> TrialOutcome:
        backend, load = self.loaded[job.cell_id]
        policy = job.policy.later_trial() if job.cell_id in self.trialled else job.policy
        self.trialled.add(job.cell_id)
        cpu = CpuLoad()  # the whole trial: its loops alone can be too short to read
        if load.mode == "throughput":
            outcome = TrialOutcome(throughput=measure(backend.run_concurrent, policy))
        else:
            outcome = TrialOutcome(inference=measure(backend.run, policy))
            if job.end_to_end:
                first_inputs = load.inputs[0]
                outcome.end_to_end = measure(lambda: backend.infer(first_inputs), policy)
                backend.bind(first_inputs)  # infer() rebinds; the next trial times run() again
        return with_trial_load(outcome, cpu.other_fraction())

    def profile(self, job: ProfileJob) -> ProfileOutcome:
        """The runtime's own profiler over the timed batch, after the cell's trials."""
        backend, load = self.loaded[job.cell_id]
        backend.bind(load.inputs[0])
        raw, wall_s = seconds(lambda: backend.profile(job.runs))
        return ProfileOutcome(raw, wall_s)

    def unload(self, job: UnloadJob) -> UnloadOutcome:
        backend, _ = self.loaded.pop(job.cell_id)
        self.trialled.discard(job.cell_id)
        backend.close()
        outcome = UnloadOutcome(_rss_mb("VmHWM:"), torch_imported="torch" in sys.modules)
        if backend.device == "cuda":
            # Read after the session closed (caching allocators keep their pools): what the
            # driver attributes to this worker, an upper bound of what the cell needed.
            outcome.gpu_memory_mb = process_gpu_memory_mb(os.getpid())
        return outcome


def reference_outputs(job: ReferenceJob) -> ReferenceOutcome:
    """ONNX Runtime on the CPU with every graph optimisation off: the most literal reading
    of the graph available, for models with no PyTorch source."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3  # errors only; they reach the worker log, not the terminal
    session = ort.InferenceSession(job.path, options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return ReferenceOutcome(
        [dict(zip(names, session.run(names, inputs), strict=True)) for inputs in job.inputs]
    )


def torch_reference(job: ReferenceJob) -> ReferenceOutcome:
    """PyTorch eager fp32 outputs of `job.model` on each input batch, flattened and named
    like the spec's outputs; a forward whose result bench cannot name is a `ModelProblem`."""
    import torch

    from bench.models.checks import ModelProblem, named_outputs

    assert job.model is not None
    module = module_of(job.model)  # the module the model's exports and oracle also use
    found = []
    for batch in job.inputs:
        args = [torch.from_numpy(batch[name]) for name in job.input_names]
        with torch.inference_mode():
            result = module(*args)
        try:
            pairs = named_outputs(result, list(job.output_names))
        except ModelProblem as problem:
            raise ModelProblem(f"{job.model}: {problem}") from None
        found.append({name: (t.detach().float() if t.is_floating_point() else t.detach()).numpy()
                      for name, t in pairs})  # fmt: skip
    return ReferenceOutcome(found)


def handle(host: CellHost, job: Job) -> Reply:
    """Answer one job; an exception becomes a `Failure` (the worker lives on)."""
    try:
        if isinstance(job, LoadJob):
            return host.load(job)
        if isinstance(job, TrialJob):
            return host.trial(job)
        if isinstance(job, UnloadJob):
            return host.unload(job)
        if isinstance(job, ProfileJob):
            return host.profile(job)
        if isinstance(job, OutputsJob | DivergenceJob | EvaluatorJob):
            return run_check(job)
        if isinstance(job, ExportJob | OracleJob):
            return run_prep(job)
        return torch_reference(job) if job.model else reference_outputs(job)
    except ModelProblem as exc:  # the model as given cannot be measured: say what to change
        return Failure("failed", str(exc), "ModelProblem")
    except BackendUnavailable as exc:
        return Failure("skipped", str(exc))
    except PrecisionMismatch as exc:
        return Failure("failed", str(exc), "PrecisionMismatch")
    except Exception as exc:
        return Failure(
            "failed", f"{type(exc).__name__}: {exc}", type(exc).__name__, traceback.format_exc()
        )


def serve(conn: Connection, allocator: AllocatorState | None = None) -> None:
    """Answer jobs until the parent sends None or goes away."""
    conn.send({"pid": os.getpid()})
    host = CellHost(allocator)
    while True:
        try:
            job: Any = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            for backend, _ in host.loaded.values():  # cells left loaded by a stopped run
                with contextlib.suppress(Exception):
                    backend.close()
            return
        conn.send(handle(host, job))


def main(argv: list[str]) -> int:
    # The parent decides what Ctrl-C means; the worker finishes its job or is killed.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()
    if len(argv) > 1 and argv[1]:
        os.sched_setaffinity(0, {int(c) for c in argv[1].split(",")})
    allocator = apply_allocator(argv[2] if len(argv) > 2 else DEFAULT_POLICY)
    serve(Connection(int(argv[0])), allocator)
    # Every session was closed by its UnloadJob: skip the interpreter's teardown of torch and
    # the runtimes (up to a second per worker at the end of every run), keeping the log whole.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
