"""Worker side of the parity checks: answers the jobs of bench.checkjobs inside a worker
process, where loading a runtime can crash nothing but that worker.

The reference that does not optimise is ONNX Runtime on the CPU with every graph optimisation
off (ORT_DISABLE_ALL): each node runs as its own kernel in the file's precision, any tensor can
be an output, its kernels are multithreaded and scale to large models, and it is the reference
bench already uses for models given as ONNX files. onnx's ReferenceEvaluator (numpy) was as
close to fp64 on the zoo but 5 to 40 times slower at batch 32 (simple_cnn 0.66 s against
0.016 s), and it runs single-threaded Python around numpy, so it is only the second opinion:
ONNX Runtime's unoptimised CPU kernels are also ort-cpu's, and an `export` verdict is checked
against ReferenceEvaluator before it stands (bench.attribution.second_opinion).
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
    EvaluatorJob,
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


def run_evaluator(job: EvaluatorJob) -> OutputsOutcome:
    from onnx.reference import ReferenceEvaluator

    evaluator = ReferenceEvaluator(job.path)
    names = list(evaluator.output_names)
    outputs = [dict(zip(names, evaluator.run(None, dict(b)), strict=True)) for b in job.inputs]
    return OutputsOutcome(outputs, {"reference": "onnx.reference.ReferenceEvaluator"})


def run_check(job: CheckJob) -> CheckReply:
    """Answer one check job (exceptions are the caller's to turn into a `Failure`)."""
    if isinstance(job, OutputsJob):
        return run_outputs(job)
    if isinstance(job, EvaluatorJob):
        return run_evaluator(job)
    return run_divergence(job)
