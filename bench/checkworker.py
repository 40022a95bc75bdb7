"""Worker side of the parity checks: answers `OutputsJob` and `DivergenceJob` (bench.checkjobs)
inside a worker process, where loading a runtime can crash nothing but that worker.

The reference that does not optimise is ONNX Runtime on the CPU with every graph optimisation
off (ORT_DISABLE_ALL): each node runs as its own kernel, in the file's precision, with any
tensor available as an output, fast enough for every cell. onnx's ReferenceEvaluator is the
more literal reading of the specification, but it runs convolutions and matrix products in
Python (minutes for a ResNet block at batch 32) and cannot bound its time per node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from bench.backends import load_backend_class
from bench.checkjobs import (
    CheckJob,
    CheckReply,
    DivergenceJob,
    DivergenceOutcome,
    OutputsJob,
    OutputsOutcome,
)

REFERENCE_NAME = "onnxruntime CPU, graph optimizations disabled"


def unoptimised_outputs(path: str, names: list[str] | None, inputs: Mapping[str, np.ndarray]
                        ) -> dict[str, np.ndarray]:  # fmt: skip
    """Every graph output (or `names`) of `path` under ONNX Runtime, optimisations off."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    wanted = [o.name for o in session.get_outputs()]
    return dict(zip(wanted, session.run(wanted, dict(inputs)), strict=True))


def _backend(target: str) -> Any:
    backend_cls = load_backend_class(target)
    backend_cls.check_available()
    return backend_cls()


def run_outputs(job: OutputsJob) -> OutputsOutcome:
    backend = _backend(job.backend_target)
    try:
        backend.load(job.load)
        outcome = OutputsOutcome(settings=backend.describe())
        for batch in job.inputs:
            backend.bind(batch)
            backend.run()
            outcome.outputs.append(backend.outputs())
        return outcome
    finally:
        backend.close()


def run_divergence(job: DivergenceJob) -> DivergenceOutcome:
    from bench.diverge import search

    def on_backend(path: str, names: list[str], inputs: Mapping[str, np.ndarray]
                   ) -> dict[str, np.ndarray]:  # fmt: skip
        backend = _backend(job.backend_target)
        try:
            spec = replace(job.load, source=path,
                           output_names=(*job.load.output_names, *names))  # fmt: skip
            backend.load(spec)
            backend.bind(inputs)
            backend.run()
            return backend.outputs()
        finally:
            backend.close()

    result = search(job.load.source, job.inputs, job.threshold, unoptimised_outputs, on_backend,
                    job.deadline_s, job.max_probes, job.budget_mb)  # fmt: skip
    return DivergenceOutcome({**result, "reference": REFERENCE_NAME})


def run_check(job: CheckJob) -> CheckReply:
    """Answer one check job (exceptions are the caller's to turn into a `Failure`)."""
    if isinstance(job, OutputsJob):
        return run_outputs(job)
    return run_divergence(job)
